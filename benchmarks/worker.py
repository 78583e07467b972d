"""The measured child process of `benchmarks run`: one target, limits applied before anything loads.

    python -m benchmarks.worker RESULTS_DIR TARGET_LABEL

Prints progress as JSON lines on stdout; appends records as it goes, so a kill loses at most the
batch in flight, and gzips them once they are all there. Exit 1 with one line on stderr when the
target cannot be loaded.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from runtime.files import write_text_atomic
from runtime.solver import SolverResult, answers_match, select_vote
from runtime.student import QuestionError, Solution

from .device import apply_limits
from .suite import (expand_jsonl, latency_problems, load_config, load_plan_problems, read_jsonl,
                    trim_partial_line, write_jsonl_gz)
from .targets import Target, size_on_disk


def open_target(target: Target, threads: int | None):
    if target.reference:
        from .reference import open_reference

        return open_reference(target.bundle, threads=threads)
    from runtime.student import Student

    return Student.open(target.bundle, engine=target.engine, quantization=target.quantization, threads=threads)


def thought_rows(runs: list, gold: float | None) -> list[dict]:
    return [{"thought": run.thought, "sample": run.sample, "text": run.text, "answer": run.result["answer"],
             "correct": answers_match(run.result["answer"], gold), "error": run.result["error"],
             "error_kind": run.result["error_kind"], "tokens": run.tokens, "prompt_tokens": run.prompt_tokens,
             "seconds": run.seconds, "first_token_s": run.first_token_s, "solver_s": run.result["seconds"]}
            for run in runs]


def record(dataset: str, problem, mode: str, solution: Solution | None, error: str | None = None) -> dict:
    # The question's id, never its text: results are committed, the datasets stay in the data folder.
    row = {"dataset": dataset, "id": problem.id, "mode": mode, "gold": problem.answer}
    if solution is None:
        return row | {"answer": None, "correct": False, "thought": None, "reason": error, "thoughts": []}
    row |= {"answer": solution.answer, "correct": answers_match(solution.answer, problem.answer),
            "thought": solution.thought, "reason": solution.reason,
            "thoughts": thought_rows(solution.thoughts, problem.answer)}
    if solution.verdict is not None:  # etd with confidence: the sampled paths, their features, the verdict
        detail = solution.confidence_detail or {}
        row |= {"confidence": solution.confidence, "verdict": solution.verdict,
                "calibrated": detail.get("calibrated"), "features": detail.get("features"),
                "samples": thought_rows(solution.samples, problem.answer)}
    return row


CONFIDENT = "etd+confidence"  # latency rows of etd with its sampled paths, beside plain etd's


def latency_modes(config, target: Target) -> list[str]:
    """The modes timed one question at a time: each mode, and etd with confidence where the run samples paths."""
    extra = [CONFIDENT] if config.paths and "etd" in config.modes and not target.reference else []
    return list(config.modes) + extra


def derived_modes(config) -> list[str]:
    """Modes answered from the etd records instead of generating again: with one greedy sample, a
    thought's text is the same whether asked alone or within etd, and vote is a rule over them."""
    if not config.derive_modes or "etd" not in config.modes:
        return []
    return [m for m in config.modes if m in ("pot", "eot", "cot", "vote")]


def derive(etd_row: dict, mode: str) -> dict:
    thoughts = [t for t in etd_row["thoughts"] if mode == "vote" or t["thought"] == mode]
    results = [SolverResult.from_dict(t) for t in thoughts]
    selection = select_vote(results)  # what Student.solve does for every mode but etd
    return etd_row | {"mode": mode, "answer": selection.answer, "correct": answers_match(selection.answer, etd_row["gold"]),
                      "thought": selection.thought.value if selection.thought else None, "reason": selection.reason,
                      "thoughts": thoughts, "derived_from": "etd", "batch_size": None, "batch_share_s": None}


def append(handle, row: dict) -> None:
    handle.write(json.dumps(row) + "\n")
    handle.flush()


def main(out: Path, label: str) -> int:
    config = load_config(out)
    matches = [Target(**t) for t in config.targets if t["label"] == label]
    if not matches:
        print(f"no target {label!r} in {out / 'run.json'}", file=sys.stderr)
        return 2
    target = matches[0]
    apply_limits(threads=config.threads, memory_cap=config.memory_cap)
    problems = load_plan_problems(config)
    latency_set = latency_problems(problems, config.datasets, config.latency_sample)
    records_path = out / "records" / f"{label}.jsonl"
    latency_path = out / "latency" / f"{label}.jsonl"
    for path in (records_path, latency_path):
        trim_partial_line(path)
    done = {(r["mode"], r["dataset"], r["id"]) for r in read_jsonl(records_path)}
    timed = {(r["mode"], r["dataset"], r["id"]) for r in read_jsonl(latency_path)}
    total = len(config.modes) * len(problems) + len(latency_modes(config, target)) * len(latency_set)
    count = len(done) + len(timed)

    def progress() -> None:
        print(json.dumps({"done": count, "total": total}), flush=True)

    progress()
    if count >= total:
        pack_if_complete(records_path, len(config.modes) * len(problems))
        return 0
    from runtime.bundle import BundleError
    from runtime.engines import EngineError

    try:
        student = open_target(target, config.threads)
    except (BundleError, EngineError, OSError) as exc:
        print(f"{label}: {exc}", file=sys.stderr)
        return 1
    summary_path = out / "targets" / f"{label}.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary.update(target=target.to_dict(), engine=student.engine.name,
                   size_bytes=size_on_disk(target) or getattr(student.engine, "weights_bytes", None))
    summary["load_s"] = summary.get("load_s", []) + [round(student.engine.load_seconds, 4)]
    write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    derived = derived_modes(config)
    try:
        expand_jsonl(records_path)
        with records_path.open("a", encoding="utf-8") as handle:
            for mode in [m for m in config.modes if m not in derived]:
                pending = [(d, p) for d, p in problems if (mode, d, p.id) not in done]
                rate = ({"confidence": True, "paths": config.paths, "path_temperature": config.path_temperature}
                        if config.paths and mode == "etd" and not target.reference else {})
                for start in range(0, len(pending), config.batch_size):
                    batch = pending[start:start + config.batch_size]
                    started = time.perf_counter()
                    try:
                        # Derived modes read every thought, so etd cannot skip the ones it does not need.
                        solutions = student.solve_batch([p.question for _, p in batch], mode=mode,
                                                        max_tokens=config.max_tokens, lazy=not derived, **rate)
                        errors = [None] * len(batch)
                    except QuestionError:  # one bad question: solve them one by one
                        solutions, errors = [], []
                        for _, problem in batch:
                            try:
                                solutions.append(student.solve(problem.question, mode=mode, max_tokens=config.max_tokens,
                                                               lazy=not derived, **rate))
                                errors.append(None)
                            except QuestionError as exc:
                                solutions.append(None)
                                errors.append(str(exc))
                    share = (time.perf_counter() - started) / len(batch)
                    for (dataset, problem), solution, error in zip(batch, solutions, errors):
                        row = record(dataset, problem, mode, solution, error)
                        append(handle, row | {"batch_size": len(batch), "batch_share_s": round(share, 4)})
                    count += len(batch)
                    progress()
            # With one greedy sample, pot/eot/cot/vote would regenerate the texts etd already has.
            for row in read_jsonl(records_path):
                if row["mode"] != "etd":
                    continue
                for mode in derived:
                    if (mode, row["dataset"], row["id"]) not in done:
                        append(handle, derive(row, mode))
                        done.add((mode, row["dataset"], row["id"]))
                        count += 1
            progress()
        with latency_path.open("a", encoding="utf-8") as handle:
            for mode in latency_modes(config, target):
                for dataset, problem in latency_set:
                    if (mode, dataset, problem.id) in timed:
                        continue
                    try:
                        rate = ({"confidence": True, "paths": config.paths, "path_temperature": config.path_temperature}
                                if mode == CONFIDENT else {})
                        solution = student.solve(problem.question, mode=mode.split("+")[0], max_tokens=config.max_tokens,
                                                 **rate)
                    except QuestionError:
                        continue
                    runs = solution.thoughts + solution.samples
                    append(handle, {"dataset": dataset, "id": problem.id, "mode": mode,
                                    "correct": answers_match(solution.answer, problem.answer),
                                    "tokens": sum(r.tokens for r in runs),
                                    "prompt_tokens": sum(r.prompt_tokens for r in runs),
                                    "generations": [{"tokens": r.tokens, "prompt_tokens": r.prompt_tokens,
                                                     "seconds": r.seconds, "first_token_s": r.first_token_s}
                                                    for r in runs]} | solution.timings)
                    count += 1
                    progress()
    finally:
        student.close()
    summary = json.loads(summary_path.read_text())
    summary["load_s_median"] = round(statistics.median(summary["load_s"]), 4)
    write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    pack_if_complete(records_path, len(config.modes) * len(problems))
    return 0


def pack_if_complete(records_path: Path, expected: int) -> None:
    """A finished target's records are committed with the results: gzip them, each problem's rows
    side by side so that the derived modes' copies of the etd texts cost almost nothing (~17x)."""
    if not records_path.exists():
        return
    rows = read_jsonl(records_path)
    if len(rows) < expected:
        return
    first: dict[tuple, int] = {}
    for row in rows:
        first.setdefault((row["dataset"], row["id"]), len(first))
    write_jsonl_gz(records_path, sorted(rows, key=lambda row: first[(row["dataset"], row["id"])]))


if __name__ == "__main__":
    try:
        sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
    except MemoryError:
        print(f"{sys.argv[2]}: out of memory (under the run's --memory-cap, if one was set)", file=sys.stderr)
        sys.exit(1)
