"""The ETD dataset record (one JSON object per line) and reading it back with clear errors."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
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

    @property
    def problem_id(self) -> str:
        return self.id.rsplit(":", 2)[0]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    def dedup_key(self) -> tuple[str, str, str]:
        """Same question, same thought, same rationale up to white space: a duplicate."""
        return (self.question.strip(), self.thought, re.sub(r"\s+", " ", self.rationale).strip())


FIELDS = tuple(f.name for f in fields(Record))


def parse_record(line: str, where: str) -> Record:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{where}: malformed JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected a JSON object")
    missing = [name for name in FIELDS if name not in data]
    if missing:
        raise RecordError(f"{where}: missing field(s) {', '.join(missing)}")
    try:
        check_format_version(data["format_version"], what=where)
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    if data["thought"] not in {t.value for t in Thought}:
        raise RecordError(f"{where}: unknown thought {data['thought']!r}")
    return Record(**{name: data[name] for name in FIELDS})


def read_records(path: str | Path) -> Iterator[Record]:
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"no such dataset file: {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield parse_record(line, f"{path}:{number}")

