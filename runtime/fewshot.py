"""Worked examples in the student format, for models not trained on it (the untuned base).

The classic chain-of-thought exemplar questions (Wei et al.), not GSM8K items, with rationales
written for this project in the formats of thoughts.py. The tests run every one through the
solver. LLM teachers use the same examples (distill/teachers/prompts.py).
"""

from __future__ import annotations

from .thoughts import Thought, format_example, format_prompt

EXAMPLES: list[tuple[str, dict[Thought, str]]] = [
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        {
            Thought.COT: "Five bagels at $3 each cost 5 * 3 = $15.\nShe has 23 - 15 = $8 left.\nThe answer is 8.",
            Thought.POT: "money_initial = 23\nbagels = 5\nbagel_cost = 3\nmoney_spent = bagels * bagel_cost\n"
                         "money_left = money_initial - money_spent\nans = money_left",
            Thought.EOT: "% Assume Olivia has x dollars left:\nmoney_spent = 5 * 3\nx + money_spent = 23\nans = x",
        },
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. "
        "How many golf balls did he have at the end of wednesday?",
        {
            Thought.COT: "After losing 23 on Tuesday he had 58 - 23 = 35 golf balls.\n"
                         "After losing 2 more on Wednesday he had 35 - 2 = 33 golf balls.\nThe answer is 33.",
            Thought.POT: "golf_balls_initial = 58\nlost_tuesday = 23\nlost_wednesday = 2\n"
                         "golf_balls_left = golf_balls_initial - lost_tuesday - lost_wednesday\nans = golf_balls_left",
            Thought.EOT: "% Assume Michael had x golf balls at the end of wednesday:\nx + 23 + 2 = 58\nans = x",
        },
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each day, from "
        "monday to thursday. How many computers are now in the server room?",
        {
            Thought.COT: "From Monday to Thursday is 4 days.\n5 computers a day for 4 days is 5 * 4 = 20 computers.\n"
                         "Now there are 9 + 20 = 29 computers.\nThe answer is 29.",
            Thought.POT: "computers_initial = 9\ncomputers_per_day = 5\nnum_days = 4\n"
                         "computers_added = computers_per_day * num_days\ncomputers_total = computers_initial + computers_added\n"
                         "ans = computers_total",
            Thought.EOT: "% Assume there are x computers now:\ncomputers_added = 5 * 4\nx = 9 + computers_added\nans = x",
        },
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
        {
            Thought.COT: "Together they had 32 + 42 = 74 chocolates.\nAfter eating 35 they had 74 - 35 = 39 left.\n"
                         "The answer is 39.",
            Thought.POT: "chocolates_leah = 32\nchocolates_sister = 42\neaten = 35\n"
                         "chocolates_left = chocolates_leah + chocolates_sister - eaten\nans = chocolates_left",
            Thought.EOT: "% Assume they have x chocolates left:\ntotal = 32 + 42\nx + 35 = total\nans = x",
        },
    ),
]


def few_shot_text(thought: Thought) -> str:
    """The worked examples as one text block, each in the student's own format."""
    blocks = []
    for question, rationales in EXAMPLES:
        example = format_example(question, thought, rationales[thought])
        blocks.append(example.prompt + example.target)
    return "\n".join(blocks) + "\n"


def few_shot_prompt(question: str, thought: Thought) -> str:
    """Examples, then the question: what an untrained base model is given."""
    return few_shot_text(thought) + format_prompt(question, thought)
