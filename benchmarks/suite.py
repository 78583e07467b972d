"""`benchmarks run`: every target measured in its own child process, resumable, then the reports.

    results/NAME/
      run.json                 the run's settings, problem list hash and device profile
      records/LABEL.jsonl      one line per (mode, problem): each thought, its answer, right or not;
                               gzipped to LABEL.jsonl.gz once the target's records are complete
      latency/LABEL.jsonl      one line per single-question solve: end-to-end timings
      targets/LABEL.json       load time, size on disk, peak RSS (from the parent, via wait4)
      results.json, results.md, *.png   written by `report.write_reports`

Accuracy comes from batch mode (questions grouped `--batch-size` at a time, the engine batches
where it can), which also gives throughput; latency from `--latency-sample` questions solved one
at a time, the way a user asks. A rerun with the same settings skips finished lines.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from runtime.files import RunFolderError, claim_run_folder, file_lines, write_bytes_atomic, write_text_atomic
from runtime.student import MODES
from runtime.thoughts import FORMAT_VERSION

from .device import profile
from .targets import Target, weights_identity

# 2: etd latency is timed the way `runtime solve` runs it (lazily); 3: generations end at a loop
RUN_VERSION = 3


class RunError(Exception):
    """The run cannot start or continue: one line for the user."""


@dataclass
class RunConfig:
    targets: list[dict]
    datasets: list[str]          # "gsm8k/test", ...
    modes: list[str]
    limit: int | None            # per dataset, unless `limits` names one
    threads: int | None
    memory_cap: int | None
    batch_size: int = 8
    latency_sample: int = 20
    max_tokens: int = 320
    limits: dict = field(default_factory=dict)
    derive_modes: bool = True    # pot/eot/cot/vote accuracy from the etd generations (one sample)
    paths: int = 0               # sampled paths per etd question for the confidence (0: none)
    path_temperature: float | None = None   # their temperature (None: the student's calibration's)
    data_dir: str | None = None
    problems_sha256: str = ""
    format_version: str = FORMAT_VERSION
    run_version: int = RUN_VERSION
    device: dict = field(default_factory=dict)
    etd_rule: int = 1            # runtime.solver.ETD_RULE that chose the etd answers; 1 where not stored


def parse_datasets(text: str) -> tuple[list[str], dict[str, int]]:
    """`gsm8k=200,multiarith` -> (["gsm8k/test", "multiarith/test"], {"gsm8k/test": 200})."""
    from distill.problems import SPLITS

    chosen, limits = [], {}
    for entry in (part.strip().lower() for part in text.split(",")):
        if not entry:
            continue
        entry, _, count = entry.partition("=")
        name, _, split = entry.partition(":")
        if name not in SPLITS:
            raise RunError(f"unknown dataset {name!r} (choose from {', '.join(SPLITS)})")
        split = split or ("test" if "test" in SPLITS[name] else SPLITS[name][0])
        if split not in SPLITS[name]:
            raise RunError(f"{name} has no split {split!r}")
        chosen.append(f"{name}/{split}")
        if count:
            if not count.isdigit() or int(count) < 1:
                raise RunError(f"{entry}={count}: the count after = must be a positive number")
            limits[f"{name}/{split}"] = int(count)
    if not chosen:
        raise RunError("no datasets given")
    return list(dict.fromkeys(chosen)), limits


def parse_modes(text: str) -> list[str]:
    modes = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise RunError(f"unknown mode {', '.join(unknown) or '(none)'} (choose from {', '.join(MODES)})")
    return list(dict.fromkeys(modes))


def load_plan_problems(config: RunConfig) -> list[tuple[str, object]]:
    """(dataset, Problem) pairs: the first --limit of each dataset, in file order."""
    from distill.problems import DataError, load_problems

    chosen = []
    for dataset in config.datasets:
        name, split = dataset.split("/")
        try:
            problems = load_problems(name, split, config.data_dir, limit=config.limits.get(dataset, config.limit)).problems
        except DataError as exc:
            raise RunError(str(exc)) from None
        chosen += [(dataset, p) for p in problems]
    return chosen


def problems_hash(problems: list[tuple[str, object]]) -> str:
    digest = hashlib.sha256()
    for dataset, problem in problems:
        digest.update(f"{dataset}\t{problem.id}\t{problem.question}\t{problem.answer}\n".encode())
    return digest.hexdigest()


def latency_problems(problems: list[tuple[str, object]], datasets: list[str], sample: int) -> list[tuple[str, object]]:
    """The first problems of each dataset, `sample` in all, spread evenly over the datasets."""
    per = math.ceil(sample / max(1, len(datasets))) if sample else 0
    chosen = []
    for dataset in datasets:
        chosen += [item for item in problems if item[0] == dataset][:per]
    return chosen[:sample]


def read_jsonl(path: Path) -> list[dict]:
    """Complete lines only: a line cut by a kill is dropped (and redone on resume). Reads PATH.gz
    where the plain file is not there (a finished target's records)."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
    elif gzipped(path).exists():
        text = gzip.decompress(gzipped(path).read_bytes()).decode("utf-8")
    else:
        return []
    rows = []
    for line in file_lines(text):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def gzipped(path: Path) -> Path:
    return path.with_name(path.name + ".gz")


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    """ROWS -> PATH.gz, then PATH goes: a full run's records are tens of MB of JSON. The .gz is
    complete before the plain file goes, so a kill in between leaves both (the plain one wins)."""
    data = "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
    write_bytes_atomic(gzipped(path), gzip.compress(data, mtime=0))
    path.unlink(missing_ok=True)


def expand_jsonl(path: Path) -> None:
    """PATH.gz -> PATH, so that more lines can be appended; a plain file already there is the newer."""
    packed = gzipped(path)
    if packed.exists():
        if not path.exists():
            write_bytes_atomic(path, gzip.decompress(packed.read_bytes()))
        packed.unlink()


def trim_partial_line(path: Path) -> None:
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            write_bytes_atomic(path, data[:data.rfind(b"\n") + 1])  # a kill here must not cost the whole file


def prepare(out: Path, config: RunConfig) -> RunConfig:
    """Write run.json, or check that an existing one describes the same run (then it resumes)."""
    problems = load_plan_problems(config)
    if not problems:
        raise RunError("no problems to run (check --datasets and --limit)")
    config.problems_sha256 = problems_hash(problems)
    config.device = profile(threads=config.threads, memory_cap=config.memory_cap)
    try:
        stored_rule = load_config(out).etd_rule if (out / "run.json").is_file() else config.etd_rule
    except (TypeError, ValueError):
        stored_rule = config.etd_rule  # not a run folder: claim_run_folder says so
    if stored_rule != config.etd_rule:
        raise RunError(f"{out} holds etd answers chosen by an earlier rule ({stored_rule}); "
                       f"`benchmarks report {out} --reselect` applies the current one to its records, "
                       "then the same command resumes")
    try:
        claim_run_folder(out, "run.json", asdict(config), ignore=("device", "data_dir", "threads", "memory_cap"),
                         what="benchmark run")
    except RunFolderError as exc:
        raise RunError(str(exc)) from None
    for folder in ("records", "latency", "targets"):
        (out / folder).mkdir(exist_ok=True)
    return config


def claim_weights(out: Path, targets: list[Target]) -> None:
    """Record which weights each target's records come from, or refuse a folder whose records came
    from other weights under the same label (a rebuilt bundle, another adapter)."""
    for target in targets:
        path = out / "targets" / f"{target.label}.json"
        summary = json.loads(path.read_text()) if path.exists() else {"target": target.to_dict()}
        identity = weights_identity(target)
        stored = summary.get("weights_sha256")
        if stored and identity and stored != identity:
            raise RunError(f"{out} holds records of {target.label} from other weights (sha256 {stored[:12]}…, "
                           f"now {identity[:12]}…); choose another --out")
        if identity and not stored:
            summary["weights_sha256"] = identity
            write_text_atomic(path, json.dumps(summary, indent=2) + "\n")


def load_config(out: Path) -> RunConfig:
    path = out / "run.json"
    if not path.is_file():
        raise RunError(f"{out} is not a benchmark run (no run.json)")
    return RunConfig(**json.loads(path.read_text()))


# --- the parent: one child per target, memory from the OS ---------------------------------------

Progress = Callable[[str, int, int], None]   # (target label, done, total)


def run_target(out: Path, target: Target, *, progress: Progress | None = None) -> dict:
    """Measure one target in a child process; its peak RSS comes from wait4 (the kernel's count)."""
    command = [sys.executable, "-m", "benchmarks.worker", str(out), target.label]
    started = time.perf_counter()
    # stderr to a file: a chatty library must not fill a pipe nobody reads while we read stdout.
    with tempfile.TemporaryFile(mode="w+") as errors:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        for line in child.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if progress and "done" in message:
                progress(target.label, message["done"], message["total"])
        _, status, usage = os.wait4(child.pid, 0)
        errors.seek(0)
        stderr = errors.read()
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    summary_path = out / "targets" / f"{target.label}.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"target": target.to_dict()}
    peak = usage.ru_maxrss * 1024  # kilobytes on Linux
    summary["peak_rss_bytes"] = max(peak, summary.get("peak_rss_bytes") or 0)
    summary["wall_s"] = round(summary.get("wall_s", 0) + wall, 3)
    if child.returncode < 0:  # a native crash: say which signal, the likely cause and the fix
        from runtime.doctor import crash_message

        summary["error"] = crash_message(child.returncode)
    elif child.returncode != 0:
        lines = [l for l in stderr.strip().splitlines() if l.strip()]
        summary["error"] = lines[-1] if lines else f"exit code {child.returncode}"
    else:
        summary.pop("error", None)
    write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    return summary
