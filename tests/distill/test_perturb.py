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


def test_heldout_variants_are_new_numbers_never_the_training_copies(data_dir):
    """`gsm8k:train-perturbed`: a copy of each training problem with numbers the student never saw."""
    import random

    from distill.perturb import TRAINING_COPIES, TRAINING_SEED, heldout_variants, perturb
    from distill.problems import load_problems
    from distill.teachers.gold_gsm8k import rationales_from_solution
    from runtime.solver import answers_match

    originals = load_problems("gsm8k", "train", data_dir).problems[:12]
    variants = heldout_variants(originals)
    assert variants == heldout_variants(originals)          # deterministic
    assert variants[:3] == heldout_variants(originals, limit=3)
    assert 6 <= len(variants) <= 12
    by_id = {p.id: p for p in originals}
    for variant in variants:
        original = by_id[variant.id.split("~")[0]]
        assert variant.source == "gsm8k/train-perturbed" and variant.question != original.question
        gold = rationales_from_solution(original.question, original.solution, original.answer)
        rng = random.Random(f"{TRAINING_SEED}:{original.id}")
        trained = [perturb(original.question, {"pot": gold.pot, "eot": gold.eot}, rng) for _ in range(TRAINING_COPIES)]
        assert variant.question not in {copy.question for copy in trained if copy}
    # Loadable as a split, built only as far as asked; every answer moved with the numbers.
    assert load_problems("gsm8k", "train-perturbed", data_dir, limit=4).problems == variants[:4]
    assert not any(answers_match(v.answer, by_id[v.id.split("~")[0]].answer) for v in variants)
