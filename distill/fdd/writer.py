"""An LLM teacher writing FDD's new questions, shaped as a teacher `distill.build` can batch and transcribe.

`VariantWriter.generate_many` takes the parent questions (each `Problem` a request: its id names the
new question, `plan` gives the kind and temperature) and returns, per request, the teacher's
rationales for the new question it wrote, each `Candidate` carrying that question. So the rounds
of `distill feedback` go through `build.teacher_outputs`: a local teacher decodes a call's questions
together, then their rationales together (instead of one chat at a time), and a transcript makes a
killed round resume where it stopped, or a committed one replay on another machine.

Returns `[]` for a request whose reply held no usable question, and a `TeacherError` for one the
teacher failed on (not transcribed, so a rerun asks again).
"""

from __future__ import annotations

from dataclasses import replace

from runtime.thoughts import Thought

from ..build import ask_teacher
from ..problems import Problem
from ..teachers.base import Candidate, TeacherError
from .prompts import parse_question, question_messages, variant_prompt

QUESTION_TOKENS = 160  # a new problem is one paragraph


class VariantWriter:
    def __init__(self, teacher, plan: dict[str, tuple[str, float]]):
        """`plan`: request id -> (kind, temperature of its question: 0 for the first variant, then sampled)."""
        self.teacher, self.plan = teacher, plan
        self.name = teacher.name
        self.concurrency = max(1, int(getattr(teacher, "concurrency", 1)))
        self.problems_per_call = int(getattr(teacher, "problems_per_call", 0))

    def generate(self, problem: Problem, thoughts: list[Thought]) -> list[Candidate]:
        outcome = self.generate_many([problem], thoughts)[0]
        if isinstance(outcome, TeacherError):
            raise outcome
        return outcome

    def generate_many(self, problems: list[Problem], thoughts: list[Thought]) -> list:
        questions = self._questions(problems)
        new = [Problem(id=p.id, source=p.source, question=q, answer=None)
               for p, q in zip(problems, questions) if isinstance(q, str)]
        written = iter(self._rationales(new, thoughts))
        out: list = []
        for question in questions:
            if not isinstance(question, str):
                out.append(question if isinstance(question, TeacherError) else [])
                continue
            outcome = next(written)
            out.append(outcome if isinstance(outcome, TeacherError) else [replace(c, question=question) for c in outcome])
        return out

    def _questions(self, problems: list[Problem]) -> list:
        """Per request: the new question, None (no usable question in the reply) or a TeacherError."""
        kinds = [self.plan[p.id] for p in problems]
        if hasattr(self.teacher, "decode_texts"):  # a local model: every request of the call decoded together
            try:
                replies = self.teacher.decode_texts([variant_prompt(p.question, kind) for p, (kind, _) in zip(problems, kinds)],
                                                    [temperature for _, temperature in kinds], max_tokens=QUESTION_TOKENS,
                                                    stop=["\n\n", "\nProblem:", "New problem:"])
            except TeacherError as exc:
                return [exc] * len(problems)
            return [parse_question(reply) for reply in replies]

        # Another teacher gets one request a call: the builder asks on `concurrency` threads.
        out: list = []
        for problem, (kind, temperature) in zip(problems, kinds):
            try:
                replies = self.teacher.ask(question_messages(problem.question, kind), n=1, temperature=temperature)
            except TeacherError as exc:
                out.append(exc)
                continue
            out.append(parse_question(replies[0]) if replies else None)
        return out

    def _rationales(self, problems: list[Problem], thoughts: list[Thought]) -> list:
        return [outcome for _, outcome, _ in ask_teacher(problems, self.teacher, thoughts)]
