"""Few-shot prompts for LLM teachers: the papers' prompts with worked examples per thought.

The examples are the classic chain-of-thought exemplar questions (Wei et al.), not GSM8K items,
with rationales written for this project in the formats of runtime/thoughts.py. Every example is
checked by the solver in the tests, so a teacher is never shown a rationale that does not verify.
"""

from __future__ import annotations

from runtime.thoughts import Thought, format_example, format_prompt

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


def few_shot_text(thought: Thought) -> str:
    """The worked examples as one text block, each in the student's own format."""
    blocks = []
    for question, rationales in EXAMPLES:
        example = format_example(question, thought, rationales[thought])
        blocks.append(example.prompt + example.target)
    return "\n".join(blocks) + "\n"


def completion_prompt(question: str, thought: Thought) -> str:
    """For completion models (llama.cpp): examples then the question, in the student format."""
    return few_shot_text(thought) + format_prompt(question, thought)


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
