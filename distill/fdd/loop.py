"""`distill feedback`: feedback-driven distillation, round after round (Zhu et al., arXiv 2411.14698).

    runs/fdd-NAME/
      config.json
      round-0/  data.jsonl (the input set)  student/ (trained from the base, unless config.student
                names a finished run trained on that set)  round.json
      round-1/  feedback.jsonl (each question: solved or not, easy or hard)  generated.jsonl
                transcript/ (an LLM teacher's outputs, replayed by a rerun; or config.transcripts/round-1)
                data.jsonl (round 0's + the new verified records)  student/  round.json
      ...
      report.json, report.md

Round r >= 1: the previous student answers every question of its training set (k samples per
thought); a question is easy when most of its samples' ETD answers are right. The teacher writes a
harder variant of each easy question and a similar new one for each hard question; each new
question is labelled in all three thoughts and kept only when its executed PoT and EoT answers
agree (there is no gold answer); near-duplicates of test questions are dropped. The student is
then trained again *from the base* on the enlarged set (the paper's guard against forgetting) and
measured on the test sets. A finished round (round.json) is never redone; a killed one resumes.

Round 0 can be a student trained before (`student`, e.g. the shipped v2's run), and round 1 can
classify from that student's benchmark records (`feedback_records`: `benchmarks run --model M
--datasets gsm8k:train --modes etd`, batched through the runtime and resumable) instead of decoding
every training question again with the training framework.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from runtime.files import RunFolderError, claim_run_folder, file_lines, write_text_atomic
from runtime.solver import answers_match, execute, select_etd, select_vote
from runtime.thoughts import FORMAT_VERSION, Thought

from ..problems import Problem, load_problems
from ..records import Record, read_records
from .leakage import NgramIndex, summarize
from .prompts import HARDER, SIMILAR
from .variants import harder, similar, verified

MODES = ("pot", "eot", "cot", "etd", "vote")
THOUGHTS = ("pot", "eot", "cot")


class FeedbackError(Exception):
    """The loop cannot start or continue: one line for the user."""


@dataclass
class FeedbackConfig:
    base: str
    data: str
    out: str
    teacher: str = "perturb"
    rounds: int = 2
    samples: int = 1                  # per thought, to classify a question
    variants: int = 1                 # new questions per training question and round
    feedback_limit: int | None = None # training questions evaluated per round (default all)
    test: list[str] = field(default_factory=lambda: ["gsm8k"])
    test_limit: int | None = 200
    data_dir: str | None = None
    leak_n: int = 8
    leak_threshold: float = 0.5
    max_new_tokens: int = 256
    seed: int = 0
    train: dict = field(default_factory=dict)            # TrainConfig fields: max_steps, lora_r, lr, ...
    teacher_options: dict = field(default_factory=dict)  # base_url, model, batch_size ... for openai / llamacpp / local:NAME
    transcripts: str | None = None    # where each round's teacher outputs are kept (default: in the round's folder)
    student: str | None = None        # a finished `distill train` run on `data`: round 0, not trained again
    feedback_records: str | None = None  # benchmark records of round 0's etd answers: round 1 classifies from them
    format_version: str = FORMAT_VERSION


Log = Callable[[str], None]


def run_feedback(config: FeedbackConfig, *, teacher=None, log: Log = print) -> dict:
    """Run (or resume) every round; returns the report. `teacher` overrides `config.teacher` (tests)."""
    out = Path(config.out)
    _check_config(out, config)
    tests = _test_problems(config)
    index = NgramIndex({p.id: p.question for problems in _full_tests(config).values() for p in problems}, n=config.leak_n)
    rounds = []
    for r in range(config.rounds + 1):
        folder = out / f"round-{r}"
        done = folder / "round.json"
        if done.exists():
            rounds.append(json.loads(done.read_text()))
            log(f"round {r}: finished earlier")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        summary: dict = {"round": r}
        if r == 0:
            records = list(read_records(config.data))
            _write_records(folder / "data.jsonl", records)
        else:
            previous = out / f"round-{r - 1}"
            records = list(read_records(previous / "data.jsonl"))
            feedback = _feedback(config, _student_folder(config, out, r - 1), records, folder, log,
                                 config.feedback_records if r == 1 else None)
            summary["easy"] = sum(1 for f in feedback if f["easy"])
            summary["hard"] = len(feedback) - summary["easy"]
            new, stats = _generate(config, feedback, records, r, teacher or _open_teacher(config), log)
            kept, leakage = _drop_leaks(new, index, config.leak_threshold)
            _write_records(folder / "generated.jsonl", kept)
            records = records + kept
            _write_records(folder / "data.jsonl", records)
            summary |= {"generation": stats, "leakage": leakage, "added_records": len(kept),
                        "added_questions": len({k.problem_id for k in kept})}
        summary["dataset"] = _composition(records)
        log(f"round {r}: training on {len(records)} records")
        training = _train(config, folder) if not (r == 0 and config.student) else _given_student(config)
        summary["training"] = {k: training.get(k) for k in ("steps", "tokens_seen", "wall_seconds", "method")}
        summary["dev"] = training.get("dev_accuracy")
        summary["test"] = _measure(config, _student_folder(config, out, r), tests)
        write_text_atomic(done, json.dumps(summary, indent=2) + "\n")
        rounds.append(summary)
        log(f"round {r}: test etd " + ", ".join(f"{d} {m['etd']:.1%}" for d, m in summary["test"].items()))
    report = {"config": asdict(config), "rounds": rounds}
    write_text_atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(out / "report.md", to_markdown(report))
    return report


def _check_config(out: Path, config: FeedbackConfig) -> None:
    try:  # more --rounds continues a finished run
        claim_run_folder(out, "config.json", asdict(config), ignore=("rounds", "teacher_options", "data_dir", "transcripts"),
                         what="feedback run")
    except RunFolderError as exc:
        raise FeedbackError(str(exc)) from None


def _full_tests(config: FeedbackConfig) -> dict[str, list[Problem]]:
    return {name: load_problems(name, "test", config.data_dir).problems for name in config.test}


def _test_problems(config: FeedbackConfig) -> dict[str, list[Problem]]:
    return {name: problems[:config.test_limit] for name, problems in _full_tests(config).items()}


def _write_records(path: Path, records: list[Record]) -> None:
    write_text_atomic(path, "".join(r.to_json() + "\n" for r in records))


def _composition(records: list[Record]) -> dict:
    by_origin = Counter(r.source for r in records)
    questions = Counter(r.source for r in {r.problem_id: r for r in records}.values())
    return {"records": len(records), "questions": sum(questions.values()),
            "records_by_origin": dict(sorted(by_origin.items())), "questions_by_origin": dict(sorted(questions.items()))}


# --- training and measuring -----------------------------------------------------------------------

def _train(config: FeedbackConfig, folder: Path) -> dict:
    from ..train.loop import TrainConfig, train

    student = folder / "student"
    if (student / "training.json").exists():
        return json.loads((student / "training.json").read_text())
    resume = (student / "checkpoint").exists() or (student / "checkpoint.old").exists()
    if student.exists() and not resume:
        shutil.rmtree(student)   # a run killed before its first checkpoint: start it again
    options = {"dev_size": 0, "save_every": 200} | config.train
    return train(TrainConfig(data=str(folder / "data.jsonl"), out=str(student), base=config.base, resume=resume,
                             seed=config.seed, **options))


def _student_folder(config: FeedbackConfig, out: Path, r: int) -> Path:
    return Path(config.student) if r == 0 and config.student else out / f"round-{r}" / "student"


def _given_student(config: FeedbackConfig) -> dict:
    """The training summary of round 0's given student, which must have been trained on `data`."""
    from runtime.files import sha256_file

    path = Path(config.student) / "training.json"
    try:
        training = json.loads(path.read_text())
    except (OSError, ValueError):
        raise FeedbackError(f"{config.student} is not a finished `distill train` run (no readable training.json)") from None
    if training.get("data_sha256") != sha256_file(config.data):
        raise FeedbackError(f"{config.student} was trained on other data than {config.data}: round 0 is the student "
                            "of the given set")
    return training


def _load_student(folder: Path):
    from ..train.model import load_trained

    which = folder / "best" if (folder / "best").exists() else folder / "final"
    return load_trained(which)


def _answers(config: FeedbackConfig, model, tokenizer, encoder_decoder, problems: list, samples: int) -> dict:
    from ..train.evaluate import DevProblem, solve_problems

    dev = [DevProblem(p.question, p.gold if hasattr(p, "gold") else p.answer) for p in problems]
    return solve_problems(model, tokenizer, dev, [Thought.POT, Thought.EOT, Thought.COT], encoder_decoder=encoder_decoder,
                          max_new_tokens=config.max_new_tokens, samples=samples, seed=config.seed)


def mode_answers(per_thought: dict, index: int, sample: int = 0) -> dict[str, float | None]:
    """The answer each mode gives for one problem, from its thoughts' solver results."""
    results = [per_thought[t][index][sample] for t in (Thought.POT, Thought.EOT, Thought.COT)]
    answers = {t.value: r.answer for t, r in zip((Thought.POT, Thought.EOT, Thought.COT), results)}
    answers["etd"] = select_etd(results).answer
    answers["vote"] = select_vote(results).answer
    return answers


def _measure(config: FeedbackConfig, student: Path, tests: dict[str, list[Problem]]) -> dict:
    model, tokenizer, encoder_decoder = _load_student(student)
    measured = {}
    for name, problems in tests.items():
        per_thought = _answers(config, model, tokenizer, encoder_decoder, problems, 1)
        right = Counter()
        for i, problem in enumerate(problems):
            for mode, answer in mode_answers(per_thought, i).items():
                right[mode] += answers_match(answer, problem.answer)
        total = max(1, len(problems))
        measured[name] = {"problems": len(problems)} | {m: round(right[m] / total, 4) for m in MODES}
        # Whether the solver got any answer out of a thought: it moves long before accuracy does.
        measured[name]["answered"] = {t.value: round(sum(r[0].ok for r in results) / total, 4)
                                      for t, results in per_thought.items()}
    return measured


# --- feedback and generation ----------------------------------------------------------------------

def _feedback_from_records(questions: list, path: str) -> list[dict]:
    """Feedback rows from a benchmark run's `etd` records (JSONL, or gzipped) of the same student: a
    question is easy when its etd answer was right. A record whose gold differs from the question's is
    another question under the same id, so the file is refused."""
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    etd = {}
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                if row.get("mode") == "etd":
                    etd[row["id"]] = row
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise FeedbackError(f"cannot read benchmark records {path}: {exc}") from None
    rows = []
    for q in questions:
        row = etd.get(q.id)
        if row is None:
            continue
        if not answers_match(row.get("gold"), q.gold):
            raise FeedbackError(f"{path}: {q.id} has gold {row.get('gold')} there and {q.gold} in the training "
                                "data: records of another question set")
        easy = bool(row.get("correct"))
        rows.append({"id": q.id, "question": q.question, "gold": q.gold, "solved": int(easy), "samples": 1,
                     "easy": easy, "answers": {"etd": [row.get("answer")]}, "from": "benchmark records"})
    return rows


@dataclass
class _Question:
    id: str
    question: str
    gold: float


def _feedback(config: FeedbackConfig, student: Path, records: list[Record], folder: Path, log: Log,
              benchmark_records: str | None = None) -> list[dict]:
    path = folder / "feedback.jsonl"
    if path.exists():
        return [json.loads(line) for line in file_lines(path.read_text(encoding="utf-8"))]
    questions = list({r.problem_id: _Question(r.problem_id, r.question, r.gold) for r in records}.values())
    questions = questions[:config.feedback_limit]
    if benchmark_records:
        rows = _feedback_from_records(questions, benchmark_records)
        log(f"classified {len(rows)} of {len(questions)} training questions from {benchmark_records} "
            "(the rest are not in it and get no variants)")
        write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))
        return rows
    log(f"asking the student in {student} {len(questions)} training questions ({config.samples} sample(s) per thought)")
    model, tokenizer, encoder_decoder = _load_student(student)
    per_thought = _answers(config, model, tokenizer, encoder_decoder, questions, config.samples)
    rows = []
    for i, q in enumerate(questions):
        solved = sum(answers_match(mode_answers(per_thought, i, s)["etd"], q.gold) for s in range(config.samples))
        rows.append({"id": q.id, "question": q.question, "gold": q.gold, "solved": solved, "samples": config.samples,
                     "easy": solved * 2 > config.samples,
                     "answers": {t.value: [r.answer for r in per_thought[t][i]] for t in per_thought}})
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))
    return rows


def _open_teacher(config: FeedbackConfig):
    if config.teacher == "perturb":
        return None
    options = dict(config.teacher_options)
    if config.teacher == "openai":
        from ..teachers.openai import OpenAITeacher

        return OpenAITeacher.from_options(**options)
    if config.teacher == "llamacpp" or config.teacher.startswith("local:"):
        from ..teachers.base import TeacherError
        from ..teachers.llamacpp import LlamaCppTeacher

        try:
            if config.teacher.startswith("local:"):
                options.update(model=str(local_teacher_path(config.teacher)), name=config.teacher)
            return LlamaCppTeacher(options.pop("model"), **options)
        except TeacherError as exc:
            raise FeedbackError(str(exc)) from None
    raise FeedbackError(f"unknown teacher {config.teacher!r} (perturb, openai, llamacpp or local:NAME)")


def local_teacher_path(teacher: str):
    """The GGUF of `local:NAME` (a TeacherError when it is not installed)."""
    from ..teachers.install import resolve

    return resolve(teacher.split(":", 1)[1])


def _generate(config: FeedbackConfig, feedback: list[dict], records: list[Record], r: int, teacher, log: Log):
    seen = {record.dedup_key() for record in records}
    stats = {HARDER: Counter(), SIMILAR: Counter()}
    made: list[Record] = []
    name = "perturb" if teacher is None else teacher.name
    variants = _perturbed(config, feedback, records, r) if teacher is None else _written(config, feedback, r, teacher, log)
    for row, kind, i, variant in variants:
        stats[kind]["asked"] += 1
        if isinstance(variant, str):  # why the teacher gave no candidate
            stats[kind][variant] += 1
            variant = None
        if variant is None:
            stats[kind]["not verified"] += 1
            continue
        added = 0
        for thought, text in variant.rationales.items():
            record = Record(id=f"{_variant_id(row, r, kind, i)}:{thought}:0", source=f"fdd/round-{r}/{kind}",
                            question=variant.question, thought=thought, rationale=text.strip(), answer=variant.answer,
                            gold=variant.answer, teacher=name, format_version=FORMAT_VERSION)
            if record.dedup_key() not in seen:
                seen.add(record.dedup_key())
                made.append(record)
                added += 1
        stats[kind]["kept" if added else "duplicate"] += 1
    log(f"round {r}: {sum(s['kept'] for s in stats.values())} new verified questions")
    return made, {kind: dict(sorted(counter.items())) for kind, counter in stats.items()}


def _variant_id(row: dict, r: int, kind: str, i: int) -> str:
    return f"{row['id']}~fdd{r}{kind[0]}{i}"


def _requests(config: FeedbackConfig, feedback: list[dict]):
    for row in feedback:
        for i in range(config.variants):
            yield row, HARDER if row["easy"] else SIMILAR, i


def _perturbed(config: FeedbackConfig, feedback: list[dict], records: list[Record], r: int):
    rationales: dict[str, dict[str, str]] = {}
    for record in records:
        rationales.setdefault(record.problem_id, {}).setdefault(record.thought, record.rationale)
    for row, kind, i in _requests(config, feedback):
        rng = random.Random(f"{config.seed}:{r}:{row['id']}:{i}")
        known = rationales.get(row["id"], {})
        yield row, kind, i, (harder(row["question"], known, row["gold"], rng, parent=row["id"]) if kind == HARDER
                             else similar(row["question"], known, rng, parent=row["id"]))


def _written(config: FeedbackConfig, feedback: list[dict], r: int, teacher, log: Log):
    """The teacher's variants, through the builder's batching and a transcript of round r (in the round's
    folder, or `config.transcripts`/round-r to keep it: a rerun replays it instead of asking again)."""
    from ..build import teacher_outputs
    from ..teachers.base import TeacherError
    from ..teachers.transcript import Transcript, TranscriptError
    from .writer import VariantWriter

    requests = list(_requests(config, feedback))
    plan = {_variant_id(row, r, kind, i): (kind, 0.7 if i else 0.0) for row, kind, i in requests}
    problems = [Problem(id=_variant_id(row, r, kind, i), source=f"fdd/round-{r}/{kind}", question=row["question"], answer=None)
                for row, kind, i in requests]
    folder = Path(config.transcripts) / f"round-{r}" if config.transcripts else Path(config.out) / f"round-{r}" / "transcript"
    identity = {"teacher": teacher.name, "fdd_round": r, "thoughts": list(THOUGHTS), "seed": config.seed}
    try:
        transcript = Transcript(folder, identity, {"variants": config.variants})
    except TranscriptError as exc:
        raise FeedbackError(str(exc)) from None
    if len(transcript):
        log(f"round {r}: replaying {len(transcript)} teacher outputs from {folder}")
    writer = VariantWriter(teacher, plan)
    try:
        outputs = teacher_outputs(problems, writer, [Thought(t) for t in THOUGHTS], transcript)
        for (row, kind, i), (_, outcome, _) in zip(requests, outputs):
            if isinstance(outcome, TeacherError):
                yield row, kind, i, "teacher error"
            elif not outcome:
                yield row, kind, i, "no question in reply"
            else:
                yield row, kind, i, _agreeing(outcome, kind, row["id"])
    finally:
        transcript.close()


def _agreeing(candidates: list, kind: str, parent: str):
    """A variant when the teacher's first PoT and EoT for its question agree (there is no gold answer)."""
    texts: dict[str, str] = {}
    for candidate in candidates:
        texts.setdefault(candidate.thought.value, candidate.text)
    if "pot" not in texts or "eot" not in texts:
        return None
    question = candidates[0].question
    variant = verified(question, {"pot": texts["pot"], "eot": texts["eot"]}, kind=kind, parent=parent)
    if variant is not None and "cot" in texts and answers_match(execute(Thought.COT, texts["cot"]).answer, variant.answer):
        variant.rationales["cot"] = texts["cot"]   # the teacher's own CoT where it agrees, else the steps'
    return variant


def _drop_leaks(records: list[Record], index: NgramIndex, threshold: float) -> tuple[list[Record], dict]:
    shares = {}
    for record in records:
        if record.problem_id not in shares:
            shares[record.problem_id] = index.overlap(record.question).share
    kept = [r for r in records if shares[r.problem_id] < threshold]
    return kept, summarize(list(shares.values()), threshold)


# --- report ---------------------------------------------------------------------------------------

def to_markdown(report: dict) -> str:
    config = report["config"]
    rounds = report["rounds"]
    tests = list(rounds[0]["test"]) if rounds else []
    lines = [f"# Feedback-driven distillation: {config['out']}", "",
             f"Base `{config['base']}`, teacher `{config['teacher']}`, {config['rounds']} rounds, "
             f"{config['samples']} sample(s) per thought to classify, {config['variants']} new question(s) per "
             f"training question, leakage: word {config['leak_n']}-grams, dropped at >= {config['leak_threshold']:.0%} "
             f"overlap with {', '.join(config['test'])} test. Training: {json.dumps(config['train'])}.", "",
             "| round | records | questions | easy | hard | new questions | leak-dropped | "
             + " | ".join(f"{t} {m}" for t in tests for m in MODES) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * (len(tests) * len(MODES))]
    for row in rounds:
        cells = [f"{row['test'][t][m]:.1%}" for t in tests for m in MODES]
        lines.append(f"| {row['round']} | {row['dataset']['records']} | {row['dataset']['questions']} | {row.get('easy', '–')} "
                     f"| {row.get('hard', '–')} | {row.get('added_questions', '–')} "
                     f"| {row.get('leakage', {}).get('removed', '–')} | " + " | ".join(cells) + " |")
    if any(row.get("dev") for row in rounds):
        lines += ["", "Dev accuracy (the training run's held-out questions):", "",
                  "| round | problems | pot | eot | cot | etd |", "|---|---|---|---|---|---|"]
        for row in rounds:
            dev = row.get("dev") or {}
            lines.append(f"| {row['round']} | {dev.get('problems', '–')} | "
                         + " | ".join("–" if dev.get(m) is None else f"{dev[m]:.1%}" for m in ("pot", "eot", "cot", "etd")) + " |")
    lines += ["", "Share of test problems where each thought gave the solver something it could execute "
              "(a program that printed `ans`, equations with a solution, a final number):", "",
              "| round | " + " | ".join(f"{t} {th}" for t in tests for th in THOUGHTS) + " |",
              "|---|" + "---|" * (len(tests) * len(THOUGHTS))]
    for row in rounds:
        answered = [row["test"][t].get("answered", {}).get(th) for t in tests for th in THOUGHTS]
        lines.append(f"| {row['round']} | " + " | ".join("–" if a is None else f"{a:.0%}" for a in answered) + " |")
    lines += ["", "Dataset by origin (questions):", ""]
    for row in rounds:
        lines.append(f"- round {row['round']}: " + ", ".join(f"{k} {v}" for k, v in row["dataset"]["questions_by_origin"].items()))
    for row in rounds[1:]:
        lines.append(f"- round {row['round']} generation: {json.dumps(row['generation'])}; leakage {json.dumps(row['leakage'])}")
    return "\n".join(lines) + "\n"
