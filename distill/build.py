"""Build a verified ETD dataset: teacher candidates -> solver -> kept records, resumable.

Output: `OUT` (JSONL records) and `OUT.progress` (one JSON line per finished problem, with its
verification counts). A problem's records are appended in one write, then its progress line. On a
rerun, problems named in the progress file are skipped, records of any problem without a progress
line (a run killed mid-problem) are dropped, and the build goes on, so an interrupted build ends
with the same file as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from runtime.files import file_lines, write_text_atomic
from runtime.thoughts import FORMAT_VERSION, Thought

from .perturb import perturb
from .problems import Problem
from .records import Record, RecordError, parse_record
from .subquestions import SOURCE_SUFFIX, check_question
from .teachers.base import Candidate, Teacher, TeacherError
from .teachers.transcript import Transcript
from .verify import check_rationale

STAGES = ("generated", "parsed", "executed", "correct", "kept")


class BuildError(Exception):
    """The build cannot start without risking a user's file."""


@dataclass
class ThoughtStats:
    generated: int = 0
    parsed: int = 0      # accepted by the grammar / allow-list
    executed: int = 0    # produced an answer
    correct: int = 0     # matched the gold answer
    kept: int = 0        # correct and not a duplicate
    failures: Counter = field(default_factory=Counter)
    trimmed: int = 0     # correct once lines that never reach the answer were left out (`verify.check_rationale`)
    several: int = 0     # problems the teacher wrote two or more paths for (summed over problems; 0 in one's entry)

    def add(self, other: "ThoughtStats") -> None:
        for stage in STAGES:
            setattr(self, stage, getattr(self, stage) + getattr(other, stage))
        self.failures.update(other.failures)
        self.trimmed += other.trimmed
        self.several += other.several

    def to_dict(self) -> dict:
        data = {stage: getattr(self, stage) for stage in STAGES}
        data["failures"] = dict(self.failures)
        if self.trimmed:
            data["trimmed"] = self.trimmed
        if self.several:
            data["several"] = self.several
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ThoughtStats":
        return cls(**{s: data.get(s, 0) for s in STAGES}, failures=Counter(data.get("failures", {})),
                   trimmed=data.get("trimmed", 0), several=data.get("several", 0))


@dataclass
class BuildStats:
    by_thought: dict[str, ThoughtStats] = field(default_factory=dict)
    problems: int = 0
    teacher_errors: Counter = field(default_factory=Counter)
    resumed: int = 0   # problems found finished from an earlier run
    replayed: int = 0  # problems answered from a transcript instead of the teacher
    teacher_seconds: float = 0.0  # wall time the teacher spent, summed over finished problems
    subquestion_targets: int = 0  # sub-questions asked for (a --subquestions build)
    subquestions_kept: int = 0    # of them, kept with every thought verified

    def thought(self, name: str) -> ThoughtStats:
        return self.by_thought.setdefault(name, ThoughtStats())

    def add_problem(self, entry: dict) -> None:
        self.problems += 1
        for name, data in entry.get("stats", {}).items():
            self.thought(name).add(ThoughtStats.from_dict(data))
            if data.get("generated", 0) >= 2 and name != "perturbed":
                self.thought(name).several += 1
        if entry.get("teacher_error"):
            self.teacher_errors[entry["teacher_error"]] += 1
        self.teacher_seconds += float(entry.get("seconds", 0.0))
        sub = entry.get("subquestions") or {}
        self.subquestion_targets += int(sub.get("targets", 0))
        self.subquestions_kept += int(sub.get("kept", 0))


def progress_path(out: Path) -> Path:
    return out.with_name(out.name + ".progress")


def build(
    problems: list[Problem],
    teacher: Teacher,
    thoughts: list[Thought],
    out: Path,
    *,
    perturb_copies: int = 0,
    seed: int = 0,
    on_problem: Callable[[BuildStats], None] | None = None,
    refuse_question: Callable[[str], str | None] | None = None,
    transcript: Transcript | None = None,
) -> BuildStats:
    """`refuse_question`: a further check of questions the teacher writes (sub-questions), giving a
    failure name (e.g. "test overlap") or None. `transcript`: the teacher's earlier outputs, replayed
    instead of asking it again; what it newly writes is added."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = BuildStats()
    done, seen = _resume(out, stats)
    stats.resumed = len(done)
    todo = [p for p in problems if p.id not in done]
    with open(out, "a", encoding="utf-8") as records_file, open(progress_path(out), "a", encoding="utf-8") as progress_file:
        for problem, outcome, seconds in teacher_outputs(todo, teacher, thoughts, transcript, stats):
            records, entry = _verify(problem, outcome, thoughts, teacher.name, seen, refuse_question)
            entry["seconds"] = round(seconds, 3)
            if perturb_copies and records:
                more, perturbed_stats = _perturbed_records(problem, records, teacher.name, perturb_copies, seed, seen)
                records += more
                entry["stats"]["perturbed"] = perturbed_stats
            if records:
                records_file.write("".join(r.to_json() + "\n" for r in records))
                records_file.flush()
            progress_file.write(json.dumps(entry) + "\n")
            progress_file.flush()
            stats.add_problem(entry)
            if on_problem:
                on_problem(stats)
        os.fsync(records_file.fileno())
        os.fsync(progress_file.fileno())
    return stats


def _resume(out: Path, stats: BuildStats) -> tuple[set[str], set]:
    """Finished problem ids and the dedup keys of their records; drop any half-written tail."""
    done: dict[str, dict] = {}
    progress = progress_path(out)
    if out.exists() and out.stat().st_size and not progress.exists():
        raise BuildError(f"{out} exists and was not written by an unfinished build (no {progress.name}); "
                         "choose another --out or remove it")
    if progress.exists():
        for line in file_lines(progress.read_text(encoding="utf-8")):
            try:
                entry = json.loads(line)
                done[entry["id"]] = entry
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a kill: that problem is redone
        write_text_atomic(progress, "".join(json.dumps(e) + "\n" for e in done.values()))
    seen: set = set()
    if out.exists():
        kept_lines = []
        for number, line in enumerate(file_lines(out.read_text(encoding="utf-8")), start=1):
            try:
                record = parse_record(line, f"{out}:{number}")
            except RecordError:
                continue  # cut short by a kill
            if record.problem_id.split("~")[0] in done:
                kept_lines.append(line + "\n")
                seen.add(record.dedup_key())
        write_text_atomic(out, "".join(kept_lines))
    elif done:
        done.clear()
        write_text_atomic(progress, "")
    for entry in done.values():
        stats.add_problem(entry)
    return set(done), seen


def teacher_outputs(problems: list[Problem], teacher: Teacher, thoughts: list[Thought], transcript: Transcript | None = None,
                    stats: BuildStats | None = None) -> Iterator[tuple[Problem, object, float]]:
    """(problem, candidates or TeacherError, teacher seconds) in problem order. With a transcript,
    problems it holds are replayed (with the seconds they cost when written) and only the others go
    to the teacher, whose outputs are added; failures are not stored, so a rerun asks again."""
    if transcript is None:
        yield from ask_teacher(problems, teacher, thoughts)
        return
    size = int(getattr(teacher, "problems_per_call", 0)) or max(1, int(getattr(teacher, "concurrency", 1))) * 4
    for start in range(0, len(problems), size):
        chunk = problems[start:start + size]
        known = {p.id: transcript.get(p.id) for p in chunk}
        fresh = {p.id: (outcome, seconds)
                 for p, outcome, seconds in ask_teacher([p for p in chunk if known[p.id] is None], teacher, thoughts)}
        transcript.add([(pid, outcome, seconds) for pid, (outcome, seconds) in fresh.items()
                        if not isinstance(outcome, TeacherError)])
        for problem in chunk:
            if known[problem.id] is not None and stats is not None:
                stats.replayed += 1
            yield (problem, *(known[problem.id] or fresh[problem.id]))


def ask_teacher(problems: list[Problem], teacher: Teacher, thoughts: list[Thought]) -> Iterator[tuple[Problem, object, float]]:
    """(problem, candidates or TeacherError, teacher seconds) in problem order: `problems_per_call` at a
    time to a batching teacher (its wall time shared equally by the problems of a call), else on
    `concurrency` threads."""

    def ask(problem: Problem):
        start = time.perf_counter()
        try:
            outcome = teacher.generate(problem, thoughts)
        except TeacherError as exc:
            outcome = exc
        return outcome, time.perf_counter() - start

    per_call = int(getattr(teacher, "problems_per_call", 0))
    if per_call > 0 and hasattr(teacher, "generate_many"):
        for start in range(0, len(problems), per_call):
            chunk = problems[start:start + per_call]
            began = time.perf_counter()
            try:
                outcomes = teacher.generate_many(chunk, thoughts)
            except TeacherError as exc:
                outcomes = [exc] * len(chunk)
            share = (time.perf_counter() - began) / len(chunk)
            for problem, outcome in zip(chunk, outcomes):
                yield problem, outcome, share
        return
    workers = max(1, int(getattr(teacher, "concurrency", 1)))
    if workers == 1:
        for problem in problems:
            yield (problem, *ask(problem))
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        window = workers * 4  # bounded look-ahead keeps memory flat and order exact
        for start in range(0, len(problems), window):
            chunk = problems[start:start + window]
            for problem, (outcome, seconds) in zip(chunk, pool.map(ask, chunk)):
                yield problem, outcome, seconds


def _verify(problem: Problem, outcome, thoughts: list[Thought], teacher: str, seen: set,
            refuse_question: Callable[[str], str | None] | None = None) -> tuple[list[Record], dict]:
    entry: dict = {"id": problem.id, "stats": {}}
    if isinstance(outcome, TeacherError):
        entry["teacher_error"] = str(outcome)[:120]
        return [], entry
    per_thought = {t.value: ThoughtStats() for t in thoughts}
    records: list[Record] = []
    derived: dict[str, list[Record]] = {}  # sub-question suffix -> its verified records
    for candidate in outcome:
        stats = per_thought.setdefault(candidate.thought.value, ThoughtStats())
        stats.generated += 1
        question = problem.question if candidate.question is None else candidate.question
        gold = problem.answer if candidate.gold is None else candidate.gold
        if candidate.suffix:
            derived.setdefault(candidate.suffix, [])
            refused = check_question(problem.question, question, gold) or (refuse_question and refuse_question(question))
            if refused:
                stats.failures[refused] += 1
                continue
        shown = (problem.solution or "") if candidate.shown_answer else None
        result, failure, rationale = check_rationale(candidate.thought, candidate.text, question, gold, shown)
        if result.error_kind not in ("syntax", "unsafe"):
            stats.parsed += 1
        if result.ok:
            stats.executed += 1
        if failure:
            stats.failures[failure] += 1
            continue
        stats.correct += 1
        stats.trimmed += rationale != candidate.text
        record = _record(problem, candidate, rationale, question, result.answer, gold, teacher,
                         sum(1 for r in records if r.problem_id == problem.id + candidate.suffix
                             and r.thought == candidate.thought.value))
        if record.dedup_key() in seen:
            stats.failures["duplicate"] += 1
            continue
        seen.add(record.dedup_key())
        stats.kept += 1
        records.append(record)
        if candidate.suffix:
            derived[candidate.suffix].append(record)
    if derived:
        # A sub-question is kept only with every thought verified: two paths that agree on the gold value.
        wanted = {t.value for t in thoughts}
        kept = 0
        for group in derived.values():
            if {r.thought for r in group} >= wanted:
                kept += 1
                continue
            for record in group:
                records.remove(record)
                seen.discard(record.dedup_key())
                per_thought[record.thought].kept -= 1
                per_thought[record.thought].failures["other thought failed"] += 1
        entry["subquestions"] = {"targets": len(derived), "kept": kept}
    entry["stats"] = {name: s.to_dict() for name, s in per_thought.items()}
    return records, entry


def _record(problem: Problem, candidate: Candidate, rationale: str, question: str, answer, gold, teacher,
            index) -> Record:
    problem_id = problem.id + candidate.suffix
    return Record(
        id=f"{problem_id}:{candidate.thought.value}:{index}",
        source=problem.source + (SOURCE_SUFFIX if candidate.suffix else ""), question=question,
        thought=candidate.thought.value, rationale=rationale.strip(), answer=answer, gold=gold,
        teacher=teacher, format_version=FORMAT_VERSION, path=candidate.path,
        parent=problem.id if candidate.suffix else "",
    )


def _perturbed_records(problem: Problem, records: list[Record], teacher: str, copies: int, seed: int, seen: set):
    rationales = {}
    for record in records:
        if record.thought in ("pot", "eot") and record.thought not in rationales:
            rationales[record.thought] = record.rationale
    stats = ThoughtStats()
    made: list[Record] = []
    if not rationales:
        return made, stats.to_dict()
    rng = random.Random(f"{seed}:{problem.id}")  # the same copies on every run and resume
    for k in range(copies):
        stats.generated += 1
        copy = perturb(problem.question, rationales, rng)
        if copy is None:
            stats.failures["not sensible"] += 1
            continue
        stats.correct += 1
        added = 0
        for thought, text in copy.rationales.items():
            record = Record(
                id=f"{problem.id}~p{k}:{thought}:0", source=f"{problem.source}+perturb", question=copy.question,
                thought=thought, rationale=text, answer=copy.answer, gold=copy.answer,
                teacher=f"{teacher}+perturb", format_version=FORMAT_VERSION,
            )
            if record.dedup_key() in seen:
                continue
            seen.add(record.dedup_key())
            made.append(record)
            added += 1
        if added:
            stats.kept += 1
        else:
            stats.failures["duplicate"] += 1
    return made, stats.to_dict()


def stats_of_files(paths: list[Path]) -> tuple[BuildStats | None, dict]:
    """(the builds' funnel from their progress files, if any; counts from the records). Several files
    are builds over the same problems (e.g. a PoT and EoT run and an EoT-only one): counts and funnels
    add up, and a problem attempted by several counts once."""
    from .records import read_records

    counts: dict = {"records": 0, "by_thought": Counter(), "by_source": Counter(), "by_teacher": Counter(),
                    "problems": set(), "format_version": Counter()}
    for path in paths:
        for record in read_records(path):
            counts["records"] += 1
            counts["by_thought"][record.thought] += 1
            counts["by_source"][record.source] += 1
            counts["by_teacher"][record.teacher] += 1
            counts["problems"].add(record.problem_id)
            counts["format_version"][record.format_version] += 1
    counts["problems"] = len(counts["problems"])
    funnel = None
    attempted: set[str] = set()
    for path in paths:
        progress = progress_path(Path(path))
        if not progress.exists():
            continue
        funnel = funnel or BuildStats()
        for line in file_lines(progress.read_text(encoding="utf-8")):
            try:
                entry = json.loads(line)
                funnel.add_problem(entry)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue
            attempted.add(str(entry.get("id")))
    if funnel:
        funnel.problems = len(attempted)
    return funnel, counts


def iter_limit(problems: Iterable[Problem], limit: int | None) -> list[Problem]:
    problems = list(problems)
    return problems if limit is None else problems[:limit]
