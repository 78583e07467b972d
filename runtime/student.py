"""A loaded student: prompts per thought, generation, the embedded solver, answer selection.

    student = Student.open()                       # the default bundle
    solution = student.solve("Natalia sold 48 clips ...", mode="etd")
    solution.answer, solution.reason, solution.thoughts[0].text

Modes: `pot`, `eot`, `cot` (one thought; with samples > 1, a vote over the samples), `etd` (the
papers' rule, PoT, else EoT, else CoT, where a negative or lone fractional answer counts as a
failure; by default a thought is generated only when the ones before it gave no plausible answer)
and `vote` (majority over every thought and sample).
One object serves the CLI, the tutor and the benchmarks.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .bundle import Manifest, open_bundle
from .confidence import DEFAULT_PATHS, DEFAULT_TEMPERATURE, PATH_MAX_TOKENS, Calibration, assess, load_calibration
from .engines import Engine, EngineError, open_engine
from .fewshot import few_shot_prompt, few_shot_text
from .solver import SolverResult, execute, select_etd, select_vote
from .thoughts import ETD_ORDER, LOOP_LINES, STOP_SEQUENCES, Thought, format_prompt, is_looping

MODES = ("etd", "vote", "pot", "eot", "cot")
MAX_QUESTION_CHARS = 2_000
SCHEMA_VERSION = 1


class QuestionError(ValueError):
    """The question cannot be solved as given (empty, too long)."""


@dataclass
class ThoughtRun:
    thought: str
    sample: int
    text: str
    result: dict           # SolverResult.to_dict()
    tokens: int
    seconds: float
    first_token_s: float | None
    prompt_tokens: int = 0


@dataclass
class Solution:
    question: str
    mode: str
    answer: float | None
    thought: str | None        # the thought whose answer was chosen
    reason: str
    thoughts: list[ThoughtRun]
    timings: dict              # load_s, first_token_s, generation_s, solver_s, total_s
    model: str
    engine: str
    error: str | None = None
    schema_version: int = SCHEMA_VERSION
    # etd with confidence (runtime.confidence): a calibrated probability that the answer is right, the
    # verdict it gives ("sure", "unsure", "no answer"), the sampled paths' answers with their counts,
    # how it was computed (calibrated?, paths, features), and the sampled paths themselves.
    confidence: float | None = None
    verdict: str | None = None
    distribution: list[dict] = field(default_factory=list)
    confidence_detail: dict | None = None
    samples: list[ThoughtRun] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Student:
    bundle: Path
    manifest: Manifest
    engine: Engine
    few_shot: bool = field(default=False)
    calibration: Calibration | None = None

    @classmethod
    def open(cls, model: str | None = None, *, engine: str | None = None, quantization: str | None = None,
             threads: int | None = None, seed: int = 0, log=lambda message: None,
             check_runs: bool = False) -> "Student":
        """`check_runs`: first make sure, in a child process, that these weights decode on this CPU
        (once per machine; see `runtime.doctor.ensure_runs`), so a native crash becomes a BundleError."""
        from .models import resolve_model, shipped_student

        folder = resolve_model(model, log=log)
        manifest = open_bundle(folder)
        if check_runs:
            from .doctor import ensure_runs

            ensure_runs(folder, manifest, engine=engine, quantization=quantization, log=log)
        loaded = open_engine(folder, manifest, engine=engine, quantization=quantization, threads=threads, seed=seed)
        return cls(folder, manifest, loaded, few_shot=manifest.source.get("trained") is False,
                   calibration=load_calibration(folder, manifest, shipped_student(manifest.name)))

    def prompt(self, question: str, thought: Thought) -> str:
        return few_shot_prompt(question, thought) if self.few_shot else format_prompt(question, thought)

    def solve(self, question: str, *, mode: str = "etd", samples: int = 1, max_tokens: int = 320,
              temperature: float | None = None, on_text=None, lazy: bool = True, confidence: bool = False,
              paths: int | None = None, path_temperature: float | None = None) -> Solution:
        callback = (lambda _question, thought, text: on_text(thought, text)) if on_text else None
        return self.solve_batch([question], mode=mode, samples=samples, max_tokens=max_tokens,
                                temperature=temperature, on_text=callback, lazy=lazy, confidence=confidence,
                                paths=paths, path_temperature=path_temperature)[0]

    @property
    def paths(self) -> tuple[int, float]:
        """How many sampled paths confidence draws, and at which temperature (the calibration's)."""
        if self.calibration is not None:
            return self.calibration.paths, self.calibration.temperature
        return DEFAULT_PATHS, DEFAULT_TEMPERATURE

    def sample_paths(self, questions: list[str], *, paths: int, temperature: float,
                     max_tokens: int) -> list[list[ThoughtRun]]:
        """`paths` sampled paths per question, half PoT and half EoT, in one engine call (an engine that
        batches decodes them together: a question's paths share its prompt up to the thought's
        instruction, read once), each run by the solver."""
        if paths < 2 or paths % 2:
            raise QuestionError("the number of sampled paths must be even and at least 2 (half PoT, half EoT)")
        generations = self.engine.generate(
            [self.prompt(question, thought) for question in questions for thought in (Thought.POT, Thought.EOT)],
            max_tokens=max_tokens, temperature=temperature, samples=paths // 2, stop=list(STOP_SEQUENCES),
            until=is_looping)
        runs: list[list[ThoughtRun]] = [[] for _ in questions]
        jobs = [(q, thought) for q in range(len(questions)) for thought in (Thought.POT, Thought.EOT)]
        for (q, thought), generated in zip(jobs, generations):
            for index, generation in enumerate(generated):
                result = run_rationale(thought, generation.text)
                runs[q].append(ThoughtRun(thought.value, index + 1, generation.text.strip(), result.to_dict(),
                                          generation.tokens, round(generation.seconds, 4), None,
                                          generation.prompt_tokens))
        return runs

    def solve_batch(self, questions: list[str], *, mode: str = "etd", samples: int = 1, max_tokens: int = 320,
                    temperature: float | None = None, on_text=None, lazy: bool = True, confidence: bool = False,
                    paths: int | None = None, path_temperature: float | None = None) -> list[Solution]:
        """Solve several questions with one engine call per round, prompts grouped by thought: an
        engine that batches runs them together, and llama.cpp reuses each few-shot prefix.

        `lazy` (etd only): ask for the next thought only where the earlier ones gave no plausible
        answer (`select_etd`). The rule picks the same answer, with a fraction of the decoding when
        the program runs;
        `lazy=False` generates every thought (the tutor shows them all; the benchmarks read each
        thought's accuracy from them). Timings are the batch's: `generation_s` and `total_s` cover
        every question in it."""
        questions = [check_question(q) for q in questions]
        if mode not in MODES:
            raise QuestionError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
        if samples < 1:
            raise QuestionError("samples must be at least 1")
        started = time.perf_counter()
        thoughts = [Thought(mode)] if mode in ("pot", "eot", "cot") else list(ETD_ORDER)
        if temperature is None:
            temperature = 0.0 if samples == 1 else 0.7
        runs: list[list[ThoughtRun]] = [[] for _ in questions]
        results: list[list[SolverResult]] = [[] for _ in questions]
        rounds = [[t] for t in thoughts] if mode == "etd" and lazy else [thoughts]
        pending = list(range(len(questions)))
        generation_s = solver_s = 0.0
        rate = confidence and mode == "etd"
        for round_thoughts in rounds:
            if not pending:
                break
            jobs = [(t, q) for t in round_thoughts for q in pending]
            generation_started = time.perf_counter()
            prompts = [self.prompt(questions[q], t) for t, q in jobs]
            generations = self.engine.generate(
                prompts, max_tokens=max_tokens, temperature=temperature,
                samples=samples, stop=list(STOP_SEQUENCES), until=is_looping,
                on_text=(lambda index, text, jobs=jobs: on_text(jobs[index][1], jobs[index][0], text)) if on_text else None,
                prefixes=[few_shot_text(t) if self.few_shot else "" for t, _ in jobs])
            solver_started = time.perf_counter()
            generation_s += solver_started - generation_started
            for (thought, q), samples_out in zip(jobs, generations):
                for index, generation in enumerate(samples_out):
                    result = run_rationale(thought, generation.text)
                    results[q].append(result)
                    runs[q].append(ThoughtRun(thought.value, index, generation.text.strip(), result.to_dict(),
                                              generation.tokens, round(generation.seconds, 4),
                                              None if generation.first_token_s is None else round(generation.first_token_s, 4),
                                              generation.prompt_tokens))
            solver_s += time.perf_counter() - solver_started
            # etd decides on each thought's first sample; the next thought is asked only where the
            # ones so far gave no plausible answer (select_etd's rule, so lazy and full agree).
            pending = [q for q in pending if not select_etd(first_samples(results[q], runs[q])).settled]
        total_s = time.perf_counter() - started
        solutions = []
        for question, question_runs, question_results in zip(questions, runs, results):
            if mode == "etd":
                selection = select_etd(first_samples(question_results, question_runs))
            else:
                selection = select_vote(question_results)
            firsts = [r.first_token_s for r in question_runs if r.first_token_s is not None]
            timings = {"load_s": round(self.engine.load_seconds, 4),
                       "first_token_s": round(min(firsts), 4) if firsts else None,
                       "generation_s": round(generation_s, 4), "solver_s": round(solver_s, 4),
                       "total_s": round(total_s, 4)}
            solutions.append(Solution(
                question=question, mode=mode, answer=selection.answer,
                thought=selection.thought.value if selection.thought else None, reason=selection.reason,
                thoughts=question_runs, timings=timings, model=self.manifest.name, engine=self.engine.name,
                error=None if selection.answer is not None else selection.reason,
            ))
        if rate:
            solutions = self.rate(solutions, paths=paths, path_temperature=path_temperature, max_tokens=max_tokens)
        return solutions

    def rate(self, solutions: list[Solution], *, paths: int | None = None, path_temperature: float | None = None,
             max_tokens: int = 320) -> list[Solution]:
        """The etd solutions with their confidence: sampled paths drawn for each question (one engine
        call), run by the solver and rated against the answer (`runtime.confidence`). Timings grow by
        the sampling. A caller can show the answer first and rate it after (the tutor does).

        The paths come after the greedy answer, in a call of their own: decoded in the same forward
        passes as it, the greedy answer itself could change (llama.cpp's batched sums round
        differently), and `--confidence off` must give the same answer, only faster."""
        if not solutions:
            return []
        count, stored_temperature = self.paths
        started = time.perf_counter()
        sampled = self.sample_paths([s.question for s in solutions], paths=paths or count,
                                    temperature=path_temperature or stored_temperature,
                                    max_tokens=min(max_tokens, PATH_MAX_TOKENS))
        spent = time.perf_counter() - started
        rated_solutions = []
        for solution, paths_run in zip(solutions, sampled):
            rated = assess(solution.answer, [SolverResult.from_dict(r.result) for r in paths_run], self.calibration)
            timings = dict(solution.timings, generation_s=round(solution.timings["generation_s"] + spent, 4),
                           total_s=round(solution.timings["total_s"] + spent, 4))
            rated_solutions.append(replace(
                solution, timings=timings, confidence=rated.value, verdict=rated.verdict,
                distribution=rated.distribution, samples=paths_run,
                confidence_detail={"calibrated": rated.calibrated, "paths": rated.paths, "features": rated.features}))
        return rated_solutions

    def close(self) -> None:
        self.engine.close()


def first_samples(results: list[SolverResult], runs: list[ThoughtRun]) -> list[SolverResult]:
    return [result for result, run in zip(results, runs) if run.sample == 0]


def run_rationale(thought: Thought, text: str) -> SolverResult:
    """The solver's verdict on a generation; one that ended in a loop is a failure of its own kind
    (its text stops mid-loop, so whatever the solver made of it would be an accident)."""
    if is_looping(text):
        return SolverResult.failure(thought, "repeating", f"the rationale looped (the same line, numbers "
                                    f"aside, {LOOP_LINES} times over); generation stopped there")
    return execute(thought, text)


def check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    question = " ".join(question.split())
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
    return question


__all__ = ["MODES", "EngineError", "QuestionError", "Solution", "Student", "ThoughtRun"]
