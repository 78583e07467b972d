"""The ETD dataset record (one JSON object per line) and reading it back with clear errors."""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Iterator

from runtime.thoughts import FORMAT_VERSION, Thought, check_format_version


class RecordError(ValueError):
    """A dataset file is missing, malformed, or made for another thought format."""


@dataclass
class Record:
    id: str            # "<problem id>:<thought>:<k>"
    source: str        # "gsm8k/train", "gsm8k/train+perturb"
    question: str
    thought: str       # cot | pot | eot
    rationale: str
    answer: float      # what the solver got from the rationale
    gold: float        # the gold answer it was checked against
    teacher: str
    format_version: str = FORMAT_VERSION
    path: int = 0      # which of the teacher's paths (0 greedy, 1.. sampled)
    parent: str = ""   # for a derived question (a sub-question, a variant): the problem it came from

    @property
    def problem_id(self) -> str:
        return self.id.rsplit(":", 2)[0]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    def dedup_key(self) -> tuple[str, str, str]:
        """Same question, same thought, same rationale up to white space (and, for programs and
        equations, up to the names chosen): a duplicate."""
        return (self.question.strip(), self.thought, canonical_rationale(self.thought, self.rationale))


FIELDS = tuple(f.name for f in fields(Record))
REQUIRED = tuple(f.name for f in fields(Record) if f.default is MISSING)
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_KEPT_NAMES = frozenset(keyword.kwlist) | {"ans", "math", "int", "float", "round", "abs", "min", "max", "sum", "pow"}


def canonical_rationale(thought: str, text: str) -> str:
    """White space collapsed; in PoT and EoT every name renamed v0, v1, ... in order of first use
    (comments dropped), so `clips_may = 48 / 2` and `may = 48 / 2` are one program."""
    if thought == Thought.COT.value:
        return re.sub(r"\s+", " ", text).strip()
    lines = [line.split("#")[0] if thought == Thought.POT.value else line for line in text.splitlines()]
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith("%")]
    names: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        word = match.group(0)
        if word in _KEPT_NAMES:
            return word
        return names.setdefault(word, f"v{len(names)}")

    return re.sub(r"\s+", " ", _NAME.sub(rename, "\n".join(lines))).strip()


def parse_record(line: str, where: str) -> Record:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{where}: malformed JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected a JSON object")
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise RecordError(f"{where}: missing field(s) {', '.join(missing)}")
    try:
        check_format_version(data["format_version"], what=where)
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    if data["thought"] not in {t.value for t in Thought}:
        raise RecordError(f"{where}: unknown thought {data['thought']!r}")
    return Record(**{name: data[name] for name in FIELDS if name in data})


def read_records(path: str | Path) -> Iterator[Record]:
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"no such dataset file: {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield parse_record(line, f"{path}:{number}")

