"""Simple problems on purpose: one-step and two-step sub-questions of a worked GSM8K problem.

A GSM8K solution's calculations are its steps (`parse_steps`). A step computed from numbers the
question states is one step deep; one that uses a one-step result is two deep. For a problem's
first one-step value and its first two-step value (never its final answer, never a number the
question states) the teacher writes, in one generation, a shorter question in the problem's own
words whose answer is that value, then the question's program and its equations. The builder keeps
a sub-question only when every thought executes to that gold intermediate value (so they agree),
the question uses no number the problem does not state, and it does not give its answer away.

Pure text work: nothing here runs model output; the solver verifies what comes out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.solver import answers_match
from runtime.thoughts import PROMPTS, Thought, format_example, format_number

from .problems import Problem
from .teachers.gold_gsm8k import NoSteps, parse_steps, strip_marks
from .teachers.prompts import finished as thought_finished

ORDER = (Thought.POT, Thought.EOT, Thought.COT)
SOURCE_SUFFIX = "+sub"
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


@dataclass(frozen=True)
class Target:
    suffix: str      # "~s1" (one step) or "~s2" (two steps): the sub-question's id after its parent's
    depth: int       # 1 or 2
    value: float     # the gold solution's intermediate value: the sub-question's answer
    solution: str    # the worked solution up to the sentence that states the value, without marks


def targets(problem: Problem) -> list[Target]:
    """The problem's first one-step and first two-step intermediate values (0, 1 or 2 targets)."""
    if not problem.solution:
        return []
    try:
        steps = parse_steps(problem.question, problem.solution)
    except NoSteps:
        return []
    stated = _numbers(problem.question)
    lines = re.sub(r"\n?####.*$", "", problem.solution, flags=re.S).split("\n")
    depth: dict[str, int] = {}
    chosen: dict[int, Target] = {}
    for step in steps:
        used = [depth[name] for name in _NAME.findall(step.expression) if name in depth]
        depth[step.name] = 1 + max(used, default=0)
        try:
            value = float(step.result)
        except ValueError:
            continue
        level = depth[step.name]
        if level > 2 or level in chosen or value <= 0 or answers_match(value, problem.answer) \
                or any(answers_match(value, n) for n in stated):
            continue
        solution = " ".join(strip_marks(line).strip() for line in lines[:step.line + 1] if strip_marks(line).strip())
        chosen[level] = Target(suffix=f"~s{level}", depth=level, value=value, solution=solution)
    return [chosen[level] for level in sorted(chosen)]


# Worked examples (checked by the solver in the tests): a parent problem, its solution up to the
# asked step, the new final question, and the new problem's rationales in the runtime's formats.
EXAMPLES: list[tuple[str, str, float, str, dict[Thought, str]]] = [
    (
        "A baker made 60 muffins. He sold 3/4 of them in the morning and 8 in the afternoon. How many muffins were left?",
        "He sold 60*3/4 = 45 muffins in the morning.",
        45,
        "How many muffins did he sell in the morning?",
        {
            Thought.POT: "muffins = 60\nsold_morning = muffins * 3 / 4\nans = sold_morning",
            Thought.EOT: "% Assume he sold x muffins in the morning:\nx = 60 * 3 / 4\nans = x",
            Thought.COT: "He sold 60 * 3 / 4 = 45 muffins in the morning.\nThe answer is 45.",
        },
    ),
    (
        "Tom buys 3 boxes of pencils with 12 pencils in each box. He gives 10 pencils to his sister and shares the "
        "rest equally between his 2 friends. How many pencils does each friend get?",
        "Tom has 3*12 = 36 pencils. After giving 10 to his sister he has 36-10 = 26 pencils.",
        26,
        "How many pencils does he have left after giving some to his sister?",
        {
            Thought.POT: "boxes = 3\npencils_per_box = 12\npencils = boxes * pencils_per_box\n"
                         "pencils_left = pencils - 10\nans = pencils_left",
            Thought.EOT: "% Assume he has x pencils left:\npencils = 3 * 12\nx + 10 = pencils\nans = x",
            Thought.COT: "Tom has 3 * 12 = 36 pencils.\nAfter giving 10 away he has 36 - 10 = 26 pencils.\nThe answer is 26.",
        },
    ),
    (
        "Maria had some stickers. She gave 15 stickers to her brother and now has 27 stickers. Her aunt gave her twice "
        "as many stickers as she gave her brother. How many stickers does Maria have now?",
        "Maria had 15+27 = 42 stickers at first.",
        42,
        "How many stickers did Maria have at first?",
        {
            Thought.POT: "given_away = 15\nstickers_left = 27\nstickers_first = given_away + stickers_left\nans = stickers_first",
            Thought.EOT: "% Assume Maria had x stickers at first:\nx - 15 = 27\nans = x",
            Thought.COT: "She gave away 15 and kept 27, so she had 15 + 27 = 42 stickers.\nThe answer is 42.",
        },
    ),
]


def _ask_line(value: float) -> str:
    return f"New question whose answer is {format_number(value)}:"


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def statement(question: str) -> str:
    """A problem's sentences before its (last) question sentence; empty when it opens with the question."""
    sentences = _SENTENCE.split(question.strip())
    asks = [i for i, sentence in enumerate(sentences) if "?" in sentence]
    return " ".join(sentences[:asks[-1]]) if asks else question.strip()


def compose(parent: str, written: str) -> str:
    """The sub-question: the parent's statement, then the question the teacher wrote."""
    return f"{statement(parent)} {written.strip()}".strip()


def _sections(question: str, rationales: dict[Thought, str], thoughts: list[Thought]) -> str:
    examples = [format_example(question, t, rationales[t]) for t in thoughts]
    return "".join(e.prompt.partition("\n")[2] + e.target for e in examples)


def prompt(problem: Problem, target: Target, thoughts: list[Thought]) -> str:
    """The examples, then the solution up to the target, the ask line and the problem's statement;
    the model writes the new question after it, then each thought's section in ORDER. The original
    question is not shown: the 1.5B teacher copied it back whenever it could see it."""
    order = [t for t in ORDER if t in thoughts]
    blocks = []
    for parent, solution, value, asked, rationales in EXAMPLES:
        sub = compose(parent, asked)
        blocks.append(f"Solution: {solution}\n{_ask_line(value)} {sub}\n{_sections(sub, rationales, order)}")
    return "\n".join(blocks) + f"\nSolution: {target.solution}\n{_ask_line(target.value)} {statement(problem.question)}"


def split(text: str, thoughts: list[Thought]) -> tuple[str, dict[Thought, str]]:
    """(the question written on the first line, each thought's rationale) out of one generation;
    missing parts empty. `compose` makes the whole sub-question from the first."""
    order = [t for t in ORDER if t in thoughts]
    question, _, rest = text.strip().partition("\n")
    parts: dict[Thought, str] = {}
    for index, thought in enumerate(order):
        marker = PROMPTS[thought]
        if marker not in rest:
            parts[thought] = ""
            continue
        body = rest.split(marker, 1)[1]
        for later in order[index + 1:]:
            body = body.split(PROMPTS[later], 1)[0]
        parts[thought] = body.split("\nQuestion:", 1)[0].strip()
    return question.strip(), parts


def finished(text: str, thoughts: list[Thought]) -> bool:
    """Every section written and the last one at its answer line."""
    last = [t for t in ORDER if t in thoughts][-1]
    marker = PROMPTS[last]
    return marker in text and thought_finished(text.split(marker, 1)[1])


def check_question(parent: str, question: str, value: float) -> str | None:
    """Why a written sub-question is refused (a failure name), or None. It must be a question, use
    only numbers its parent states, and not state its own answer."""
    if not question or "?" not in question:
        return "not a question"
    numbers = _numbers(question)
    if any(answers_match(n, value) for n in numbers):
        return "answer given"
    if not numbers <= _numbers(parent):
        return "new numbers"
    return None


def _numbers(text: str) -> set[float]:
    return {float(n) for n in _NUMBER.findall(text.replace(",", ""))}
