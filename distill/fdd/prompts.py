"""Prompts that ask an LLM teacher for new questions (FDD's question-generation stage).

Easy questions (the student solved them) get a more complex variant: one or two more reasoning
steps. Hard ones get a new question of similar difficulty: same kind of reasoning, other story and
numbers. Each prompt shows a worked example of the transformation: as chat turns for a chat endpoint
(`question_messages`), as a completion for a local model (`variant_prompt`), which a batch of
requests decodes together.
"""

from __future__ import annotations

import re

HARDER, SIMILAR = "harder", "similar"

SYSTEM = ("You write grade-school math word problems. Reply with the new problem only: one paragraph "
          "that ends with a single question, with every number it needs, and no solution.")

INSTRUCTION = {
    HARDER: "Write a more complex version of this problem: keep its story, and add one or two reasoning steps "
            "(a further quantity, a follow-up operation, a comparison) so that solving it takes more steps.",
    SIMILAR: "Write a new problem of the same difficulty that needs the same kind of reasoning, with a different "
             "story and different numbers.",
}

EXAMPLES = {
    HARDER: ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
             "How many clips did Natalia sell altogether in April and May?",
             "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. In June "
             "she sold 10 more clips than in May. Each clip costs $2. How much money did Natalia make from April "
             "to June?"),
    SIMILAR: ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
              "How many clips did Natalia sell altogether in April and May?",
              "A bakery baked 60 muffins on Monday and a third as many on Tuesday. How many muffins did the "
              "bakery bake on the two days?"),
}


def question_messages(question: str, kind: str) -> list[dict]:
    example_in, example_out = EXAMPLES[kind]
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{INSTRUCTION[kind]}\n\nProblem: {example_in}"},
        {"role": "assistant", "content": example_out},
        {"role": "user", "content": f"{INSTRUCTION[kind]}\n\nProblem: {question.strip()}"},
    ]


def variant_prompt(question: str, kind: str) -> str:
    """The same request as a completion: the new problem is the line after "New problem:"."""
    example_in, example_out = EXAMPLES[kind]
    return (f"{SYSTEM}\n{INSTRUCTION[kind]}\n\nProblem: {example_in}\nNew problem: {example_out}\n\n"
            f"Problem: {' '.join(question.split())}\nNew problem:")


_LEAD = re.compile(r"^\s*(?:new\s+|more complex\s+)?(?:problem|question|version)\s*(?:\d+)?\s*:\s*", re.IGNORECASE)


def parse_question(text: str, *, max_chars: int = 1200) -> str | None:
    """The problem from a reply: leading labels and any solution dropped; None unless it asks something."""
    text = text.strip().strip("`").strip()
    text = _LEAD.sub("", text)
    paragraph = re.split(r"\n\s*\n|\n(?:solution|answer|step 1)\b", text, maxsplit=1, flags=re.IGNORECASE)[0]
    # A small model goes on with more problems on the same line ("... a week? New problem: A teacher ...").
    paragraph = re.split(r"\b(?:new|another|next) (?:problem|question)\s*:", paragraph, maxsplit=1, flags=re.IGNORECASE)[0]
    paragraph = " ".join(paragraph.split())
    if "?" not in paragraph or len(paragraph) > max_chars or not re.search(r"\d", paragraph):
        return None
    return paragraph[: paragraph.rindex("?") + 1]
