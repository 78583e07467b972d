"""The `llamacpp` teacher: a local GGUF model (any path, or an installed `local:NAME`) decoding
through the runtime's llama.cpp engine, so a batch of problems shares each forward pass.

With `subquestions`, the teacher instead writes each problem's one- and two-step sub-questions
(`distill.subquestions`): first the question, then its rationales with the rationalize prompt and
the student's worked examples.

Per thought, path 0 is greedy and paths 1..K-1 are sampled at `temperature`. The prompt
(`teacher_prompt`) gives the question alone (*solve*, the papers' way) or the question and its human
solution (*rationalize*). One engine call takes every path of every thought of `problems_per_call`
problems: the batch decoder reads the examples once and each question once (a prefix tree), steps
`batch_size` sequences in one forward pass, and gives a finished sequence's slot to the next prompt
(continuous batching). Generation ends at the rationale's answer line.
"""

from __future__ import annotations

from pathlib import Path

from runtime.engines.base import EngineError
from runtime.thoughts import STOP_SEQUENCES, Thought, is_looping

from ..problems import Problem
from .base import Candidate, TeacherError
from .prompts import MODES, clean_output, finished, teacher_prompt

DEFAULT_TEMPERATURE = 0.7  # sampled paths when several are asked for at temperature 0


class LlamaCppTeacher:
    concurrency = 1  # one model: the builder hands it `problems_per_call` problems at a time instead

    def __init__(self, model_path: str, *, paths: int | dict[Thought, int] = 1, temperature: float = 0.0,
                 modes: str | dict[Thought, str] = "solve", max_tokens: int = 384, seed: int = 0,
                 threads: int | None = None, n_ctx: int = 2048, batch_size: int = 8, name: str | None = None,
                 subquestions: bool = False):
        path = Path(model_path)
        if not path.is_file():
            raise TeacherError(f"no GGUF model at {path}")
        from runtime.engines.llamacpp import LlamaCppEngine

        try:
            self.engine = LlamaCppEngine(path, threads=threads, seed=seed, n_ctx=n_ctx, batch_size=batch_size)
        except EngineError as exc:
            raise TeacherError(str(exc)) from None
        self.paths, self.modes = paths, modes
        for mode in (modes.values() if isinstance(modes, dict) else [modes]):
            if mode not in MODES:
                raise TeacherError(f"unknown teacher mode {mode!r} (choose from {', '.join(MODES)})")
        self.temperature, self.max_tokens = temperature, max_tokens
        self.batch_size = batch_size
        # Problems handed to generate_many at once: enough that slots stay full; progress is saved per call.
        self.problems_per_call = 2 * batch_size
        self.tokens = 0  # generated so far
        # Summed over calls: tokens read (shared prefixes once per call, counted per sequence here),
        # tokens generated, and the calls' wall time (reading and decoding interleave).
        self.timing = {"prompt_tokens": 0, "generated": 0, "seconds": 0.0}
        self.subquestions = subquestions
        self.name = name or f"llamacpp:{path.name}"

    @property
    def llm(self):
        return self.engine.llm

    def paths_for(self, thought: Thought) -> int:
        return self.paths.get(thought, 1) if isinstance(self.paths, dict) else self.paths

    def mode_for(self, thought: Thought, problem: Problem) -> str:
        mode = self.modes.get(thought, "solve") if isinstance(self.modes, dict) else self.modes
        return mode if problem.solution else "solve"  # no worked solution to rationalize

    def prompt(self, problem: Problem, thought: Thought, thoughts: list[Thought]) -> str:
        solution = problem.solution if self.mode_for(thought, problem) == "rationalize" else None
        return teacher_prompt(problem.question, thought, thoughts, solution)

    def generate(self, problem: Problem, thoughts: list[Thought]) -> list[Candidate]:
        return self.generate_many([problem], thoughts)[0]

    def generate_many(self, problems: list[Problem], thoughts: list[Thought]) -> list[list[Candidate]]:
        """Candidates per problem, in problem order. Every path of every thought of a problem goes to
        the engine next to the others, so they share the examples and the question in the prefix tree."""
        if self.subquestions:
            return self._subquestions(problems, thoughts)
        jobs = []  # (problem index, thought, path, prompt, temperature)
        for index, problem in enumerate(problems):
            for thought in thoughts:
                prompt = self.prompt(problem, thought, thoughts)
                for path in range(self.paths_for(thought)):
                    jobs.append((index, thought, path, prompt, self._temperature(path)))
        # One call for all: the engine keeps `batch_size` sequences decoding, a question's thoughts and
        # paths entering together (its question read once), a finished slot refilled at once.
        generations = self._decode([job[3] for job in jobs], [job[4] for job in jobs], max_tokens=self.max_tokens,
                                   stop=list(STOP_SEQUENCES), until=lambda text: finished(text) or is_looping(text))
        out: list[list[Candidate]] = [[] for _ in problems]
        for (index, thought, path, _, _), generation in zip(jobs, generations):
            shown = self.mode_for(thought, problems[index]) == "rationalize"
            out[index].append(Candidate(thought, clean_output(generation.text), path=path, shown_answer=shown))
        self.tokens += sum(g.tokens for g in generations)
        return out

    def _account(self, generations: list) -> list:
        if generations:
            self.timing["prompt_tokens"] += sum(g.prompt_tokens for g in generations)
            self.timing["generated"] += sum(g.tokens for g in generations)
            self.timing["seconds"] += max(g.seconds for g in generations)
        return generations

    def throughput(self) -> str:
        t = self.timing
        if not t["generated"]:
            return ""
        return (f"teacher: {t['generated']} tokens generated and {t['prompt_tokens']} prompt tokens in "
                f"{t['seconds']:.0f} s: {t['generated'] / max(t['seconds'], 1e-9):.1f} generated tok/s with "
                f"{self.batch_size} sequences decoding at once (prompts are read in the same forward passes; a "
                "prefix shared by several sequences is read once)")

    def _subquestions(self, problems: list[Problem], thoughts: list[Thought]) -> list[list[Candidate]]:
        """Two stages: the teacher writes each target's question (one line, greedy), then every thought
        of each question that passes `check_question` is written like any problem's (`--paths` per
        thought, the first greedy), rationalizing the solution up to the target's value with the
        student's worked examples (`subquestions.RATIONALE_EXAMPLES`). A refused
        question keeps empty rationales so the builder counts why."""
        from .. import subquestions

        jobs = [(index, target) for index, problem in enumerate(problems) for target in subquestions.targets(problem)]
        asked = self._decode([subquestions.question_prompt(problems[index], target) for index, target in jobs],
                             [0.0] * len(jobs), max_tokens=40, stop=["\n"])  # a question is one short line
        questions = []
        for (index, target), generation in zip(jobs, asked):
            line = subquestions.written_question(generation.text)
            questions.append(subquestions.compose(problems[index].question, line, target.uses) if line else "")
        second = []  # (job index, thought, path, prompt, temperature)
        for number, ((index, target), question) in enumerate(zip(jobs, questions)):
            if question and subquestions.check_question(problems[index].question, question, target.value) is None:
                for thought in thoughts:
                    prompt = teacher_prompt(question, thought, thoughts, target.solution, subquestions.RATIONALE_EXAMPLES)
                    second += [(number, thought, path, prompt, self._temperature(path)) for path in range(self.paths_for(thought))]
        generations = self._decode([job[3] for job in second], [job[4] for job in second], max_tokens=self.max_tokens,
                                   stop=list(STOP_SEQUENCES), until=lambda text: finished(text) or is_looping(text))
        written: dict = {}
        for (number, thought, path, _, _), generation in zip(second, generations):
            written.setdefault((number, thought), []).append((path, clean_output(generation.text)))
        out: list[list[Candidate]] = [[] for _ in problems]
        for number, ((index, target), question) in enumerate(zip(jobs, questions)):
            for thought in thoughts:
                for path, text in written.get((number, thought), [(0, "")]):
                    out[index].append(Candidate(thought, text, path=path, shown_answer=True,
                                                question=question, gold=target.value, suffix=target.suffix))
        self.tokens += sum(g.tokens for g in list(asked) + list(generations))
        return out

    def _temperature(self, path: int) -> float:
        return 0.0 if path == 0 else self.temperature or DEFAULT_TEMPERATURE

    def _decode(self, prompts: list[str], temperatures: list[float], **options) -> list:
        try:
            return self._account(self.engine.decode_together(prompts, temperatures, **options))
        except EngineError as exc:  # e.g. a prompt longer than the context
            raise TeacherError(f"llama.cpp refused the prompts: {exc}") from None

    def ask(self, messages: list[dict], *, n: int = 1, temperature: float = 0.7, max_tokens: int = 256) -> list[str]:
        """Free-form replies to a chat (question generation), through the model's chat template."""
        replies = []
        for _ in range(n):
            try:
                out = self.llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=temperature)
            except ValueError as exc:
                raise TeacherError(f"llama.cpp refused the chat: {exc}") from None
            replies.append(out["choices"][0]["message"]["content"] or "")
        return replies

    def close(self) -> None:
        self.engine.close()
