"""A teacher transcript: a labelling rebuilt on a fresh machine without asking the teacher again."""

import gzip
import subprocess
import sys

import pytest

from distill.build import build
from distill.problems import load_problems
from distill.teachers.base import Candidate, TeacherError
from distill.teachers.gold import GoldTeacher
from distill.teachers.transcript import SHARD_SIZE, Transcript, TranscriptError
from runtime.thoughts import Thought

THOUGHTS = [Thought.POT, Thought.EOT]
IDENTITY = {"teacher": "fake", "dataset": "gsm8k", "split": "train", "thoughts": ["pot", "eot"]}
SETTINGS = {"paths": 2}


class BatchTeacher:
    """A batching teacher: the gold PoT/EoT and a second, wrong PoT path; with `flaky`, an error on every 7th problem."""
    name = "fake"
    concurrency = 1
    problems_per_call = 8

    def __init__(self, flaky=False):
        self.gold, self.flaky = GoldTeacher(), flaky
        self.asked: list[str] = []

    def generate_many(self, problems, thoughts):
        out = []
        for problem in problems:
            self.asked.append(problem.id)
            if self.flaky and int(problem.id.rsplit("-", 1)[1]) % 7 == 3:
                out.append(TeacherError("context full"))
                continue
            candidates = self.gold.generate(problem, thoughts)
            candidates.append(Candidate(Thought.POT, "ans = 1234567", path=1))
            out.append(candidates)
        return out


class NoTeacher(BatchTeacher):
    def generate_many(self, problems, thoughts):
        raise AssertionError(f"the teacher was asked about {[p.id for p in problems]}")


def test_a_transcript_rebuilds_the_same_dataset_without_the_teacher(data_dir, tmp_path):
    problems = load_problems("gsm8k", "train", data_dir).problems[:30]
    folder = tmp_path / "transcript"
    def labelled(teacher, out):
        transcript = Transcript(folder, IDENTITY, SETTINGS)
        try:
            return build(problems, teacher, THOUGHTS, tmp_path / out, transcript=transcript)
        finally:
            transcript.close()

    first = labelled(BatchTeacher(flaky=True), "a.jsonl")
    assert first.replayed == 0
    assert first.teacher_errors  # failures are counted, not stored: a rerun asks again
    failed = [p for p in problems if int(p.id.rsplit("-", 1)[1]) % 7 == 3]

    # A fresh machine: no run folder, only the transcript. Only the failed problems go to the teacher.
    again = BatchTeacher()
    second = labelled(again, "b.jsonl")
    assert second.replayed == len(problems) - len(failed)
    assert again.asked == [p.id for p in failed]
    assert second.by_thought["pot"].to_dict() != first.by_thought["pot"].to_dict()  # the retried ones now count
    # Once everything is in, rebuilding asks nobody and gives the same bytes, funnel and teacher time.
    third = labelled(NoTeacher(), "c.jsonl")
    assert (tmp_path / "c.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "c.jsonl.progress").read_bytes() == (tmp_path / "b.jsonl.progress").read_bytes()
    assert third.teacher_seconds == pytest.approx(second.teacher_seconds)
    assert third.by_thought["pot"].failures["wrong answer"] == len(problems)  # failed paths are replayed too
    two_pot_paths = sum(any(c.thought == Thought.POT for c in GoldTeacher().generate(p, THOUGHTS)) for p in problems)
    assert (third.by_thought["pot"].several, third.by_thought["eot"].several) == (two_pot_paths, 0)  # gold's + a wrong one

    # Only the teacher's own text is stored: never a question or a worked solution of the dataset.
    stored = "".join(gzip.decompress(p.read_bytes()).decode() for p in folder.glob("part-*.jsonl.gz"))
    assert not any(p.question in stored or p.solution.splitlines()[0] in stored for p in problems)


def test_full_shards_never_change(tmp_path):
    transcript = Transcript(tmp_path, IDENTITY, SETTINGS)
    transcript.add([(f"p{i}", [Candidate(Thought.POT, f"ans = {i}")], 1.0) for i in range(SHARD_SIZE)])
    full = (tmp_path / "part-0000.jsonl.gz").read_bytes()
    transcript.add([("last", [Candidate(Thought.EOT, "x = 1\nans = x", path=1)], 2.5)])
    assert (tmp_path / "part-0000.jsonl.gz").read_bytes() == full
    transcript.close()
    reread = Transcript(tmp_path, IDENTITY, {"paths": 3})
    assert len(reread) == SHARD_SIZE + 1
    candidates, seconds = reread.get("last")
    assert (candidates[0].thought, candidates[0].text, candidates[0].path, seconds) == (Thought.EOT, "x = 1\nans = x", 1, 2.5)
    history = __import__("json").loads((tmp_path / "transcript.json").read_text())["history"]
    assert [h["from_problem"] for h in history] == [0, SHARD_SIZE + 1]  # the settings change is logged


def test_a_teachers_text_with_a_line_separator_is_read_back_whole(tmp_path):
    # the shards are JSON written with ensure_ascii=False: U+2028 stays raw and must not end a line
    transcript = Transcript(tmp_path, IDENTITY, SETTINGS)
    text = "% Assume x balls:\u2028\nx = 6 + 4\nans = x"
    transcript.add([("p0", [Candidate(Thought.EOT, text)], 1.0), ("p1", [Candidate(Thought.POT, "ans = 1")], 1.0)])
    transcript.close()
    reread = Transcript(tmp_path, IDENTITY, SETTINGS)
    assert len(reread) == 2 and reread.get("p0")[0][0].text == text
    reread.close()


def test_another_teachers_transcript_is_refused(data_dir, tmp_path):
    Transcript(tmp_path / "t", IDENTITY, SETTINGS).close()
    with pytest.raises(TranscriptError, match="differs in teacher"):
        Transcript(tmp_path / "t", {**IDENTITY, "teacher": "local:other"}, SETTINGS)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    proc = subprocess.run([sys.executable, "-m", "distill.cli", "data", "build", "--dataset", "gsm8k", "--limit", "1",
                           "--teacher", "openai", "--base-url", "http://127.0.0.1:9", "--model", "m",
                           "--data-dir", str(data_dir), "--out", str(tmp_path / "o.jsonl"),
                           "--transcript", str(tmp_path / "mine")], capture_output=True, timeout=120, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "is not a transcript" in err and "Traceback" not in err, err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_two_builds_cannot_write_one_transcript(tmp_path):
    first = Transcript(tmp_path / "t", IDENTITY, SETTINGS)
    code = ("import sys; from distill.teachers.transcript import Transcript, TranscriptError\n"
            f"try:\n    Transcript({str(tmp_path / 't')!r}, {IDENTITY!r}, {SETTINGS!r})\n"
            "except TranscriptError as exc:\n    print(exc); sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "in use by another build" in proc.stdout
    first.close()
    Transcript(tmp_path / "t", IDENTITY, SETTINGS).close()  # free again
