"""Simple problems on purpose: one-step and two-step sub-questions of a worked GSM8K problem.

A GSM8K solution's calculations are its steps (`parse_steps`). A step computed from numbers the
question states is one step deep; one that uses a one-step result is two deep. For a problem's
first one-step value and its first two-step value (never its final answer, never a number the
question states) the teacher works in two stages: it first writes a shorter question in the
problem's own words whose answer is that value (`question_prompt`), then rationalizes the new
question like any problem (`teacher_prompt`, with the solution up to that value and the student's
worked examples). The new question keeps only the statement's sentences that hold the numbers the
value is computed from (`statement`), so it is a short problem of its own. The builder keeps
a sub-question only when every thought executes to that gold intermediate value (so they agree),
the question uses no number the problem does not state, and it does not give its answer away.
(One generation holding the question and every thought kept none of 48 pilot targets on 32
problems: the 1.5B teacher re-asked or solved the parent problem in the sections. Train problems
16-31, `--paths pot:2,eot:3`: the whole statement and the teacher's EoT examples kept 9 of 24; the
trimmed statement 8; trimmed with the student's examples for the rationales 13, the EoT right on 34 of
72 attempts against 17.)

Pure text work: nothing here runs model output; the solver verifies what comes out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.fewshot import EXAMPLES as STUDENT_EXAMPLES
from runtime.solver import answers_match
from runtime.thoughts import format_number

from .numbers import numbers
from .problems import Problem
from .teachers.gold_gsm8k import NoSteps, parse_steps, strip_marks

SOURCE_SUFFIX = "+sub"
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@dataclass(frozen=True)
class Target:
    suffix: str      # "~s1" (one step) or "~s2" (two steps): the sub-question's id after its parent's
    depth: int       # 1 or 2
    value: float     # the gold solution's intermediate value: the sub-question's answer
    solution: str    # the worked solution up to the sentence that states the value, without marks
    step: str        # the solution's line that computes the value, without marks
    uses: frozenset[float]  # the stated numbers its calculations start from


def targets(problem: Problem) -> list[Target]:
    """The problem's first one-step and first two-step intermediate values (0, 1 or 2 targets)."""
    if not problem.solution:
        return []
    try:
        steps = parse_steps(problem.question, problem.solution)
    except NoSteps:
        return []
    stated = numbers(problem.question)
    lines = re.sub(r"\n?####.*$", "", problem.solution, flags=re.S).split("\n")
    depth: dict[str, int] = {}
    uses: dict[str, frozenset[float]] = {}
    chosen: dict[int, Target] = {}
    for step in steps:
        earlier = [name for name in _NAME.findall(step.expression) if name in depth]
        depth[step.name] = 1 + max((depth[name] for name in earlier), default=0)
        uses[step.name] = numbers(step.expression).union(*(uses[name] for name in earlier))
        try:
            value = float(step.result)
        except ValueError:
            continue
        level = depth[step.name]
        if level > 2 or level in chosen or value <= 0 or answers_match(value, problem.answer) \
                or any(answers_match(value, n) for n in stated):
            continue
        solution = " ".join(strip_marks(line).strip() for line in lines[:step.line + 1] if strip_marks(line).strip())
        chosen[level] = Target(suffix=f"~s{level}", depth=level, value=value, solution=solution,
                               step=strip_marks(lines[step.line]).strip(), uses=uses[step.name])
    return [chosen[level] for level in sorted(chosen)]


# Worked examples: a parent problem, its solution's line computing the asked value, the value, and
# the question whose answer it is (the tests check it passes `check_question`).
EXAMPLES: list[tuple[str, str, float, str]] = [
    (
        "A baker made 60 muffins. He sold 3/4 of them in the morning and 8 in the afternoon. How many muffins were left?",
        "He sold 60*3/4 = 45 muffins in the morning.",
        45,
        "How many muffins did he sell in the morning?",
    ),
    (
        "Tom buys 3 boxes of pencils with 12 pencils in each box. He gives 10 pencils to his sister and shares the "
        "rest equally between his 2 friends. How many pencils does each friend get?",
        "After giving 10 to his sister he has 36-10 = 26 pencils.",
        26,
        "How many pencils does he have left after giving some to his sister?",
    ),
    (
        "Maria had some stickers. She gave 15 stickers to her brother and now has 27 stickers. Her aunt gave her twice "
        "as many stickers as she gave her brother. How many stickers does Maria have now?",
        "Maria had 15+27 = 42 stickers at first.",
        42,
        "How many stickers did Maria have at first?",
    ),
]


# Stage 2's worked examples: the student's (EoT as named steps), not the teacher's relations around an
# unknown, which a one- or two-step question rarely has (pilot above: EoT right 34 vs 17 of 72 times).
RATIONALE_EXAMPLES = STUDENT_EXAMPLES


def _ask_line(value: float) -> str:
    return f"The step as a question, answer {format_number(value)}:"


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def statement(question: str, uses: frozenset[float] | None = None) -> str:
    """A problem's sentences before its (last) question sentence; empty when it opens with the question.
    With `uses` (a target's starting numbers), a sentence after the first whose numbers are all
    unused is left out, so the sub-question is a short problem rather than the parent's with another
    ask, and a condition opening the question sentence ("If there are 6 jaguars, how many ...") that
    states a used number is kept, ending in its comma (`compose` puts the written question after it).
    Sentences without digits stay (they may hold "twice as many")."""
    sentences = _SENTENCE.split(question.strip())
    asks = [i for i, sentence in enumerate(sentences) if "?" in sentence]
    kept = sentences[:asks[-1]] if asks else sentences
    if uses is None:
        return " ".join(kept)
    kept = [s for i, s in enumerate(kept) if i == 0 or not numbers(s) or numbers(s) & uses]
    condition = _CONDITION.match(sentences[asks[-1]]) if asks else None
    if condition and numbers(condition.group(1)) & uses:
        kept.append(condition.group(1) + ",")
    return " ".join(kept)


# "If the water is 20% salt, how many ml ...": the condition, then the question word.
_CONDITION = re.compile(r"^(If [^,?]+),\s*(?=(?:how|what|which|who)\b)", re.I)
_QUESTION_WORD = re.compile(r"^(How|What|Which|Who)\b")


def compose(parent: str, written: str, uses: frozenset[float] | None = None) -> str:
    """The sub-question: the parent's statement (trimmed to `uses`, see `statement`), then the question
    the teacher wrote (continuing a kept condition: "If ..., how many ...?")."""
    told, written = statement(parent, uses), written.strip()
    if told.endswith(","):
        written = _QUESTION_WORD.sub(lambda m: m.group(1).lower(), written)
    return f"{told} {written}".strip()


def question_prompt(problem: Problem, target: Target) -> str:
    """Stage 1: the examples, then the problem's statement (trimmed to the target's numbers), the
    solution's line computing the value and the ask line; the model turns that line into a question.
    Shown the whole solution, or the parent's question, the 1.5B teacher asked the parent's question
    again for most of 9 pilot targets."""
    blocks = [f"{statement(parent)}\nStep: {step}\n{_ask_line(value)} {asked}\n"
              for parent, step, value, asked in EXAMPLES]
    return "\n".join(blocks) + f"\n{statement(problem.question, target.uses)}\nStep: {target.step}\n{_ask_line(target.value)}"


def written_question(text: str) -> str:
    """The question a stage-1 generation wrote: its first line, up to its question mark (an instruct
    model goes on: "... farm? Let's break down the problem ...")."""
    line = text.strip().partition("\n")[0]
    return (line.split("?", 1)[0] + "?" if "?" in line else line).strip()


def check_question(parent: str, question: str, value: float) -> str | None:
    """Why a written sub-question is refused (a failure name), or None. It must be a question, use
    only numbers its parent states, and not state its own answer."""
    if not question or "?" not in question:
        return "not a question"
    written = numbers(question)
    if any(answers_match(n, value) for n in written):
        return "answer given"
    if not written <= numbers(parent):
        return "new numbers"
    return None

