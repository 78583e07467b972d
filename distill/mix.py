"""One training file from several record files: a teacher's paths, gold rationales, sub-questions.

Every record of the main files is kept once (a duplicate: the same question, thought and rationale up
to names and white space, `Record.dedup_key`); a *fill* file's records only where no main file has that
question and thought at all, so gold rationales fill what the teacher did not cover without doubling what
it did. Ids are renumbered per question and thought (`<problem>:<thought>:<k>`), as two files may both
have a `:pot:0`; each record keeps its `teacher`, `path`, `source` and `parent`, so its origin stays known.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from .records import Record


@dataclass
class MixReport:
    kept: Counter = field(default_factory=Counter)        # (teacher, thought) -> records written
    duplicates: int = 0                                   # dropped: already in the mix
    not_needed: int = 0                                   # fill records whose question and thought were covered

    def to_dict(self) -> dict:
        return {"records": sum(self.kept.values()), "duplicates": self.duplicates, "fill_not_needed": self.not_needed,
                "kept": {f"{teacher}/{thought}": n for (teacher, thought), n in sorted(self.kept.items())}}


def mix(main: list[Record], fill: list[Record] = ()) -> tuple[list[Record], MixReport]:
    """The mixed records, main files' first, and what happened to the rest."""
    report = MixReport()
    covered = {(r.problem_id, r.thought) for r in main}
    seen: set = set()
    numbers: Counter = Counter()
    out = []
    for record, is_fill in [(r, False) for r in main] + [(r, True) for r in fill]:
        if is_fill and (record.problem_id, record.thought) in covered:
            report.not_needed += 1
            continue
        key = record.dedup_key()
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        slot = (record.problem_id, record.thought)
        out.append(replace(record, id=f"{record.problem_id}:{record.thought}:{numbers[slot]}"))
        numbers[slot] += 1
        report.kept[(record.teacher, record.thought)] += 1
    return out, report
