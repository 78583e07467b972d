import random

from distill.perturb import perturb
from runtime.solver import execute

QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
POT = "clips_may = 48 / 2\nclips_april_may = 48 + clips_may\nans = clips_april_may"
EOT = "clips_may = 48 / 2\nclips_april_may + 0 = 48 + clips_may\nans = clips_april_may"


def test_perturbation_changes_numbers_consistently():
    copy = perturb(QUESTION, {"pot": POT, "eot": EOT}, random.Random(1))
    assert copy is not None
    new_number = copy.question.split("to ")[1].split(" ")[0]
    assert new_number != "48" and new_number in copy.rationales["pot"]
    assert "48" not in copy.rationales["pot"] and "48" not in copy.question
    assert copy.answer == int(new_number) * 1.5 and float(copy.answer).is_integer()
    assert execute("eot", copy.rationales["eot"]).answer == copy.answer


def test_copies_that_break_whole_numbers_are_refused():
    # Dividing 10 people into groups of 5 gives whole groups; most new numbers would not.
    question = "There are 10 people and each car holds 5 people. How many cars are full?"
    program = "cars = 10 / 5\nans = cars"
    rng = random.Random(0)
    for _ in range(20):
        copy = perturb(question, {"pot": program}, rng, tries=1)
        if copy is not None:
            assert float(copy.answer).is_integer()


def test_no_shared_numbers_no_copy():
    assert perturb("How many legs do 3 cats have?", {"pot": "ans = 12"}, random.Random(0)) is None
