"""Word-problem datasets as one `Problem` record: GSM8K, SVAMP, ASDiv, MultiArith.

Local first: a data directory (`--data-dir`, else `$ETD_DATA_DIR`) holding the normalized JSONL
layout (`gsm8k/train.jsonl`, `svamp/test.jsonl`, ...). Without one, users who are online get the
Hugging Face hub through `datasets`; offline, that is a clear error naming both remedies, within
seconds (the hub client would otherwise retry each dataset for ~25 s, printing every retry).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from runtime.files import file_lines

DATA_DIR_ENV = "ETD_DATA_DIR"

# dataset -> the splits it has locally
SPLITS: dict[str, tuple[str, ...]] = {
    "gsm8k": ("train", "test", "train-perturbed", "dev"),
    "svamp": ("test",),
    "asdiv": ("test",),
    "multiarith": ("test",),
}

# Derived splits: built from another split by a function, never stored (see `heldout_variants`, `dev_problems`).
DERIVED = {("gsm8k", "train-perturbed"): "train", ("gsm8k", "dev"): "train"}

# `gsm8k:dev`: GSM8K training problems held out of every student's training from v2 on, to compare
# recipes and fit confidence maps without touching a test set. Chosen by a hash of the problem id, so
# the set does not depend on the file's order or on anything trained; from problem 100 on, so the
# first problems (the worked examples people and tests try first) stay trainable.
# The ids are stored (`gsm8k_dev.txt`), so training can leave them out without the dataset at hand.
DEV_SIZE = 300
DEV_SALT = "etd-dev-1"
GSM8K_DEV_FILE = Path(__file__).with_name("gsm8k_dev.txt")

# Hub fallback for online users: dataset -> (repo, config, split map)
HUB = {
    "gsm8k": ("openai/gsm8k", "main", {"train": "train", "test": "test"}),
    "svamp": ("ChilleD/SVAMP", None, {"test": "test"}),
    "asdiv": ("EleutherAI/asdiv", None, {"test": "validation"}),
    "multiarith": ("ChilleD/MultiArith", None, {"test": "test"}),
}


class DataError(Exception):
    """A dataset cannot be read: the message says which file or option to fix."""


@dataclass
class Problem:
    id: str
    source: str              # "gsm8k/train"
    question: str
    answer: float | None     # gold answer
    solution: str | None = None   # GSM8K's worked solution with <<a*b=c>> annotations
    equation: str | None = None   # SVAMP/ASDiv/MultiArith gold equation or formula

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadResult:
    problems: list[Problem]
    skipped: Counter = field(default_factory=Counter)  # reason -> count


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The local data directory to use, or None to use the hub."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if chosen in (None, ""):
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        origin = "--data-dir" if data_dir is not None else f"${DATA_DIR_ENV}"
        raise DataError(f"data directory {path} ({origin}) does not exist")
    return path


def load_problems(dataset: str, split: str, data_dir: str | os.PathLike | None = None, *,
                  limit: int | None = None) -> LoadResult:
    """A dataset split's problems (the first `limit` of them, where given: a derived split is only
    built that far)."""
    dataset = dataset.strip().lower()
    if dataset not in SPLITS:
        raise DataError(f"unknown dataset {dataset!r} (choose from {', '.join(SPLITS)})")
    if split not in SPLITS[dataset]:
        raise DataError(f"{dataset} has no split {split!r} (it has {', '.join(SPLITS[dataset])})")
    if (dataset, split) in DERIVED:
        base = load_problems(dataset, DERIVED[(dataset, split)], data_dir)
        if split == "dev":
            return LoadResult(problems=dev_problems(base.problems)[:limit], skipped=base.skipped)
        from .perturb import heldout_variants

        return LoadResult(problems=heldout_variants(base.problems, limit=limit), skipped=base.skipped)
    root = resolve_data_dir(data_dir)
    if root is None:
        rows = _hub_rows(dataset, split)
    else:
        rows = _local_rows(root / dataset / f"{split}.jsonl")
    result = LoadResult(problems=[])
    for index, row in enumerate(rows):
        problem = _to_problem(dataset, split, index, row, result.skipped)
        if problem is not None:
            result.problems.append(problem)
    if limit is not None:
        result.problems = result.problems[:limit]
    return result


DEV_FROM = 100


def dev_ids(ids: list[str], size: int = DEV_SIZE) -> set[str]:
    """The `size` problem ids of a training split (in its order) held out as its dev set: from the
    `DEV_FROM`-th on, those whose salted sha256 comes first."""
    return set(sorted(ids[DEV_FROM:], key=lambda i: hashlib.sha256(f"{DEV_SALT}:{i}".encode()).hexdigest())[:size])


def gsm8k_dev_ids() -> frozenset[str]:
    """The stored GSM8K dev ids (`dev_ids` of the training split, written once)."""
    lines = file_lines(GSM8K_DEV_FILE.read_text(encoding="utf-8"))
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def dev_problems(train: list[Problem]) -> list[Problem]:
    """The dev set of GSM8K's training split, in the split's order, as their own source (`gsm8k/dev`)."""
    held = gsm8k_dev_ids()
    return [Problem(**(p.to_dict() | {"source": p.source.rsplit("/", 1)[0] + "/dev"})) for p in train if p.id in held]


def _local_rows(path: Path):
    if not path.is_file():
        raise DataError(f"missing data file {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: malformed JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            yield row


def _hub_address() -> tuple[str, int]:
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return endpoint.hostname or "", endpoint.port or (443 if endpoint.scheme == "https" else 80)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host answers a TCP connection (behind a proxy: assume it does)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        socket.create_connection(_hub_address(), timeout=timeout).close()
    except OSError:
        return False
    return True


def _hub_rows(dataset: str, split: str):
    repo, config, splits = HUB[dataset]
    unreachable = not _hub_reachable()
    if unreachable:
        # Offline mode still serves a copy the hub cache already holds, and fails at once otherwise.
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import datasets  # the `train` extra; only reached when no local directory is given
    except ImportError:
        raise DataError(
            f"no local data directory (pass --data-dir or set ${DATA_DIR_ENV}) and the "
            "`datasets` package for the hub is not installed"
        ) from None
    if unreachable:  # imported earlier in this process: its settings were read then
        datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    try:
        loaded = datasets.load_dataset(repo, config, split=splits[split])
    except Exception as exc:  # offline, hub error, auth: one clear line
        why = f"{_hub_address()[0]} is unreachable (offline?)" if unreachable else type(exc).__name__
        raise DataError(
            f"no local data directory (pass --data-dir or set ${DATA_DIR_ENV}) and the hub "
            f"could not provide {repo}: {why}"
        ) from None
    for row in loaded:
        yield _from_hub(dataset, dict(row))


def _from_hub(dataset: str, row: dict) -> dict:
    """Map a hub row onto the local normalized layout."""
    if dataset == "gsm8k":
        solution = row["answer"]
        final = solution.rsplit("####", 1)[-1].strip().replace(",", "")
        return {"question": row["question"], "solution": solution, "answer": _number(final)}
    if dataset in ("svamp", "multiarith"):
        question = row.get("question_concat") or f"{row.get('Body', '')} {row.get('Question', '')}".strip() \
            or row.get("question", "")
        return {"id": row.get("ID"), "question": question, "answer": _number(row.get("Answer", row.get("final_ans"))),
                "equation": row.get("Equation")}
    # asdiv
    answer = str(row.get("answer", "")).split(" (")[0]
    return {"question": f"{row.get('body', '')} {row.get('question', '')}".strip(), "answer": _number(answer),
            "equation": row.get("formula"), "numeric": _number(answer) is not None}


def _number(value) -> float | None:
    if value is None:
        return None
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return None


def _to_problem(dataset: str, split: str, index: int, row: dict, skipped: Counter) -> Problem | None:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        skipped["no question"] += 1
        return None
    if dataset == "asdiv" and row.get("numeric") is False:
        skipped["non-numeric answer"] += 1
        return None
    answer = _number(row.get("answer"))
    if answer is None:
        skipped["no numeric answer"] += 1
        return None
    return Problem(
        id=str(row.get("id") or f"{dataset}-{split}-{index}"),
        source=f"{dataset}/{split}",
        question=question.strip(),
        answer=answer,
        solution=row.get("solution"),
        equation=row.get("equation"),
    )
