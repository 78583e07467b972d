"""Few-shot prompts for LLM teachers: the papers' prompts with the worked examples of
runtime/fewshot.py (checked by the solver in the tests, so a teacher is never shown a rationale
that does not verify)."""

from __future__ import annotations

from runtime.fewshot import EXAMPLES
from runtime.thoughts import Thought, format_prompt

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
