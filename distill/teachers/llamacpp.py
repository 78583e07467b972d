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

`extra_paths="until-verified"` spends fewer tokens: the greedy path first, then, as a path ends and fails
the builder's check (`distill.verify`), the next sampled path in the same decoder slot, its prompt's cells
kept (one engine call; nothing is read twice). A question and thought still gets a verified path
whenever one of up to K does, as with `always` (the default), but about one each: `always` decodes all
K, for several diverse verified paths per question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime.engines.base import EngineError
from runtime.thoughts import STOP_SEQUENCES, Thought, is_looping

from ..problems import Problem
from ..verify import check_rationale
from .base import EXTRA_PATHS, Candidate, TeacherError
from .prompts import MODES, clean_output, finished, teacher_prompt

DEFAULT_TEMPERATURE = 0.7  # sampled paths when several are asked for at temperature 0


@dataclass(frozen=True)
class _Ask:
    """One question and thought to write paths for, and what the builder will check them against."""
    thought: Thought
    prompt: str
    question: str
    gold: float | None
    shown: str | None  # the worked solution the teacher was shown (rationalize), else None


class LlamaCppTeacher:
    concurrency = 1  # one model: the builder hands it `problems_per_call` problems at a time instead

    def __init__(self, model_path: str, *, paths: int | dict[Thought, int] = 1, temperature: float = 0.0,
                 modes: str | dict[Thought, str] = "solve", max_tokens: int = 384, seed: int = 0,
                 threads: int | None = None, n_ctx: int = 2048, batch_size: int = 8, name: str | None = None,
                 subquestions: bool = False, extra_paths: str = "always"):
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
        if extra_paths not in EXTRA_PATHS:
            raise TeacherError(f"unknown extra-paths policy {extra_paths!r} (choose from {', '.join(EXTRA_PATHS)})")
        self.extra_paths = extra_paths
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
        asks = []  # (problem index, ask)
        for index, problem in enumerate(problems):
            for thought in thoughts:
                shown = problem.solution if self.mode_for(thought, problem) == "rationalize" else None
                asks.append((index, _Ask(thought, self.prompt(problem, thought, thoughts), problem.question,
                                         problem.answer, shown)))
        out: list[list[Candidate]] = [[] for _ in problems]
        for (index, ask), paths in zip(asks, self._write([ask for _, ask in asks])):
            out[index] += [Candidate(ask.thought, text, path=path, shown_answer=ask.shown is not None)
                           for path, text in paths]
        return out

    def _write(self, asks: list[_Ask], groups: list[int] | None = None) -> list[list[tuple[int, str]]]:
        """(path, rationale) per ask: `paths_for(thought)` paths, the first greedy (see `extra_paths`).
        A question's thoughts and paths go to the engine next to each other, so they share the examples
        and the question in the prefix tree; one call keeps `batch_size` sequences decoding, a
        finished slot refilled at once. `groups`: asks with the same number are kept only together
        (a sub-question needs every thought verified), so with `until-verified` none gets more paths
        once one of them has used all its paths without a verified one."""
        options = dict(max_tokens=self.max_tokens, stop=list(STOP_SEQUENCES),
                       until=lambda text: finished(text) or is_looping(text))
        written: list[list[tuple[int, str]]] = [[] for _ in asks]
        if self.extra_paths == "always":
            jobs = [(number, path) for number, ask in enumerate(asks) for path in range(self.paths_for(ask.thought))]
            generations = self._decode([asks[n].prompt for n, _ in jobs], [self._temperature(p) for _, p in jobs],
                                       **options)
            for (number, path), generation in zip(jobs, generations):
                written[number].append((path, clean_output(generation.text)))
            return written
        # One call: each ask's greedy path, then, as a path ends unverified, the next sampled path in the
        # same slot (its prompt's cells kept), until one verifies or the ask has used its paths.
        tried, lost = [0] * len(asks), set()

        def again(number: int, text: str) -> float | None:
            ask = asks[number]
            tried[number] += 1
            if ask.gold is not None and \
                    not check_rationale(ask.thought, clean_output(text), ask.question, ask.gold, ask.shown)[1]:
                return None  # verified
            if tried[number] >= self.paths_for(ask.thought):
                if groups is not None:
                    lost.add(groups[number])
                return None
            if groups is not None and groups[number] in lost:
                return None
            return self._temperature(tried[number])

        for number, generations in enumerate(self._decode_paths([a.prompt for a in asks], [0.0] * len(asks), again,
                                                                **options)):
            written[number] = [(path, clean_output(g.text)) for path, g in enumerate(generations)]
        return written

    def _account(self, generations: list) -> list:
        self.tokens += sum(g.tokens for g in generations)
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
        thought, the first greedy; see `extra_paths`) with the student's worked examples
        (`subquestions.RATIONALE_EXAMPLES`): a `rationalize` thought from the solution up to the target's
        value, a `solve` thought from the new question alone. With both kinds, the solved thoughts are
        written first and the others only for questions whose solved thoughts reach the value. A refused
        question keeps empty rationales so the builder counts why."""
        from .. import subquestions

        jobs = [(index, target) for index, problem in enumerate(problems) for target in subquestions.targets(problem)]
        asked = self._decode([subquestions.question_prompt(problems[index], target) for index, target in jobs],
                             [0.0] * len(jobs), max_tokens=40, stop=["\n"])  # a question is one short line
        questions = []
        for (index, target), generation in zip(jobs, asked):
            line = subquestions.written_question(generation.text)
            questions.append(subquestions.compose(problems[index].question, line, target.uses) if line else "")
        second = []  # (job index, ask)
        for number, ((index, target), question) in enumerate(zip(jobs, questions)):
            if question and subquestions.check_question(problems[index].question, question, target.value) is None:
                for thought in thoughts:
                    # solve: the question alone, so a kept path shows the question asks for the value
                    rationalized = self.mode_for(thought, problems[index]) == "rationalize"
                    prompt = teacher_prompt(question, thought, thoughts, target.solution if rationalized else None,
                                            subquestions.RATIONALE_EXAMPLES)
                    # checked against the whole solution, as the builder checks it
                    solution = problems[index].solution if rationalized else None
                    second.append((number, _Ask(thought, prompt, question, target.value, solution)))
        solved = [(number, ask) for number, ask in second if ask.shown is None]
        shown = [(number, ask) for number, ask in second if ask.shown is not None]
        written: dict = {}
        if solved and shown:
            # The question alone first (a call of its own: the prompts share their examples with each other,
            # not with the rationalize prompts); only sub-questions whose solved thoughts reach the value get
            # the rest written, since no other could be kept.
            written.update(self._write_asks(solved))
            failed = {number for number, ask in solved
                      if not any(check_rationale(ask.thought, text, ask.question, ask.gold, None)[1] is None
                                 for _, text in written[(number, ask.thought)])}
            second = [(number, ask) for number, ask in shown if number not in failed]
        written.update(self._write_asks(second))
        asked = {number for number, _ in solved + shown}
        out: list[list[Candidate]] = [[] for _ in problems]
        for number, ((index, target), question) in enumerate(zip(jobs, questions)):
            for thought in thoughts:
                if number in asked and (number, thought) not in written:
                    continue  # not written: the question alone did not lead to the value
                for path, text in written.get((number, thought), [(0, "")]):
                    out[index].append(Candidate(thought, text, path=path,
                                                shown_answer=self.mode_for(thought, problems[index]) == "rationalize",
                                                question=question, gold=target.value, suffix=target.suffix))
        return out

    def _write_asks(self, asks: list[tuple[int, _Ask]]) -> dict:
        """(sub-question number, thought) -> its paths, the asks of one sub-question kept together."""
        paths = self._write([ask for _, ask in asks], [number for number, _ in asks])
        return {(number, ask.thought): written for (number, ask), written in zip(asks, paths)}

    def _temperature(self, path: int) -> float:
        return 0.0 if path == 0 else self.temperature or DEFAULT_TEMPERATURE

    def _decode(self, prompts: list[str], temperatures: list[float], **options) -> list:
        if not prompts:
            return []
        try:
            return self._account(self.engine.decode_together(prompts, temperatures, **options))
        except EngineError as exc:  # e.g. a prompt longer than the context
            raise TeacherError(f"llama.cpp refused the prompts: {exc}") from None

    def _decode_paths(self, prompts: list[str], temperatures: list[float], again, **options) -> list[list]:
        if not prompts:
            return []
        try:
            paths = self.engine.decode_paths(prompts, temperatures, again=again, **options)
        except EngineError as exc:
            raise TeacherError(f"llama.cpp refused the prompts: {exc}") from None
        self._account([g for generations in paths for g in generations])
        return paths

    def decode_texts(self, prompts: list[str], temperatures: list[float], *, max_tokens: int, stop: list[str]) -> list[str]:
        """Free-form completions of many prompts, decoded together (e.g. FDD's new questions)."""
        return [generation.text for generation in self._decode(prompts, temperatures, max_tokens=max_tokens, stop=stop)]

    def close(self) -> None:
        self.engine.close()
