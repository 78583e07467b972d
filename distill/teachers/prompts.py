"""Few-shot prompts for LLM teachers: the papers' prompts with the worked examples of
runtime/fewshot.py (checked by the solver in the tests, so a teacher is never shown a rationale
that does not verify), their EoT systems rewritten for the teacher as one relation around the
unknown (see `EXAMPLES`)."""

from __future__ import annotations

import re

from runtime.fewshot import EXAMPLES as STUDENT_EXAMPLES
from runtime.thoughts import COT_ANSWER_TEMPLATE, Thought, format_example, format_prompt

from .gold_gsm8k import strip_marks

MODES = ("solve", "rationalize")

# The teacher's EoT examples state the question's relation around the unknown in one line, XoT's
# way. With the student's examples (names computed first, then `x = ...` or a relation) the 1.5B
# teacher copied the solution forward: on the first 24 GSM8K train problems 3-4 of 17-20 kept
# systems had an unknown whatever the instruction line said; with these, 4 of 7 (fewer kept, the
# gold EoT fills those problems), so the teacher's systems are a second computation, not the
# program with `=` signs. The untuned base and the benchmark's teacher row keep the student's.
_EOT_RELATIONS = {
    "Olivia": "% Assume Olivia has x dollars left:\nx + 5 * 3 = 23\nans = x",
    "Michael": "% Assume Michael had x golf balls at the end of wednesday:\nx + 23 + 2 = 58\nans = x",
    "There were nine computers": "% Assume there are x computers now:\nx - 5 * 4 = 9\nans = x",
    "Leah": "% Assume they have x chocolates left:\nx + 35 = 32 + 42\nans = x",
}
EXAMPLES: list[tuple[str, dict[Thought, str]]] = [
    (question, {**rationales, Thought.EOT: next(v for k, v in _EOT_RELATIONS.items() if question.startswith(k))})
    for question, rationales in STUDENT_EXAMPLES
]

SYSTEM = {
    Thought.COT: "You solve grade-school math word problems. Reason step by step in short sentences and end with "
                 "'The answer is N.' where N is a number.",
    Thought.POT: "You solve grade-school math word problems by writing a short Python program. Use descriptive "
                 "variable names, only arithmetic (import math if needed), and assign the final result to `ans`. "
                 "Write only the program.",
    Thought.EOT: "You solve grade-school math word problems by writing a system of equations, one per line, "
                 "without simplifying. Lines starting with % are comments. Unknowns such as x are allowed. "
                 "End with `ans = name` for the asked value. Write only the equations.",
}


def chat_messages(question: str, thought: Thought) -> list[dict]:
    """For chat endpoints: a system instruction, examples as turns, then the question."""
    messages = [{"role": "system", "content": SYSTEM[thought]}]
    for example_question, rationales in EXAMPLES:
        messages.append({"role": "user", "content": format_prompt(example_question, thought)})
        messages.append({"role": "assistant", "content": rationales[thought]})
    messages.append({"role": "user", "content": format_prompt(question, thought)})
    return messages


def clean_output(text: str) -> str:
    """Take the rationale out of a model's reply: drop code fences and anything after the next question."""
    text = text.strip()
    if "```" in text:
        parts = text.split("```")
        if len(parts) >= 3:
            text = parts[1]
            first, _, rest = text.partition("\n")
            if first.strip().isalpha():  # a language tag such as ```python
                text = rest
    for marker in ("\nQuestion:", "Question:"):
        if marker in text:
            text = text.split(marker, 1)[0]
    return text.strip()


def solution_line(solution: str) -> str:
    """A worked solution as one line, without GSM8K's calculator marks and `#### N` line."""
    text = strip_marks(solution)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def teacher_prompt(question: str, thought: Thought, thoughts: list[Thought], solution: str | None = None,
                   examples: list[tuple[str, dict[Thought, str]]] | None = None) -> str:
    """A local teacher's prompt. Each worked example shows every requested thought in turn (so the
    prompts of one question's thoughts share everything up to the thought's instruction line, and a
    batch decoder reads the question once for all of them); with `solution` (*rationalize*), the
    question is followed by its worked solution on a `Solution:` line, each example's prose (without
    its answer line) serving as its solution. The output is in the runtime's format and stops at the
    next thought's instruction or `Question:`. `examples`: the worked examples (default `EXAMPLES`)."""
    order = [t for t in (Thought.POT, Thought.EOT, Thought.COT) if t in thoughts or t == thought]
    blocks = []
    for example_question, rationales in examples or EXAMPLES:
        example_solution = "\n".join(line for line in rationales[Thought.COT].splitlines()
                                     if not line.startswith(_ANSWER_LINE))
        block = _head(example_question, example_solution if solution is not None else None)
        for t in order:
            example = format_example(example_question, t, rationales[t])
            block += example.prompt.partition("\n")[2] + example.target
        blocks.append(block)
    return "\n".join(blocks) + "\n" + _head(question, solution) + format_prompt(question, thought).partition("\n")[2]


_ANSWER_LINE = COT_ANSWER_TEMPLATE.split("{")[0]


def _head(question: str, solution: str | None) -> str:
    head = format_prompt(question, Thought.COT).partition("\n")[0] + "\n"
    return head + (f"Solution: {solution_line(solution)}\n" if solution is not None else "")


def finished(text: str) -> bool:
    """A teacher's rationale is complete at its `ans = ...` line (PoT, EoT) or `The answer is N.`
    (CoT); an instruct model tends to go on (a fenced copy, an explanation), which costs decode steps."""
    last = text.rstrip("\n").rsplit("\n", 1)[-1].strip()
    return bool(re.match(r"ans\s*=", last)) or last.startswith(_ANSWER_LINE)
