"""Gold equations -> EoT/PoT rationales, by hand-written cases and on all the real data."""

import pytest

from distill.problems import load_problems
from distill.teachers.gold_equations import UnsupportedFormula, rationales_from_equation
from runtime.solver import answers_match, execute


@pytest.mark.parametrize(
    "dataset, equation, question, eot, pot",
    [
        ("svamp", "( 76.0 - 25.0 )", "", "ans = (76 - 25)", "ans = (76 - 25)"),
        ("multiarith", "X=((32.0+42.0)-35.0)", "", "ans = ((32+42)-35)", "ans = ((32+42)-35)"),
        ("asdiv", "7+2=9", "", "ans = 7+2", "ans = 7+2"),
        ("asdiv", "LCM[7,9]=63; 63/7=9", "", "step1 = lcm(7,9)\nans = step1/7",
         "import math\nstep1 = math.lcm(7,9)\nans = step1/7"),
        ("asdiv", "x:The number; 5x-17=23", "", "% x: The number\n5x-17=23\nans = x", None),
        ("asdiv", "3L=54", "", "% L: the unknown\n3L=54\nans = L", None),
        ("asdiv", "47/6=7 r5", "How many cookies will not be placed in a jar?", "ans = mod(47, 6)",
         "ans = (47) % (6)"),
        ("asdiv", "105/6=17 r3", "How many cars are needed to get all 105 people there?", "ans = ceil(105 / 6)",
         "import math\nans = math.ceil(105 / 6)"),
        ("asdiv", "33/4=8 r1", "If she shares this equally among her four friends, how many will each receive?",
         "ans = floor(33 / 4)", "import math\nans = math.floor(33 / 4)"),
        ("asdiv", "(7-3):10=20:50", "4 boys for every 10 girls. If there are 20 boys, how many girls?",
         "ans = 20 * 10 / (7-3)", "ans = 20 * 10 / (7-3)"),
        ("asdiv", "1, 3, 9, 27, 81", "", "ans = 81", "ans = 81"),
        ("asdiv", "1 (quarter)*25 (cent/quarter) = 25 (cent)", "", "ans = 1*25", "ans = 1*25"),
    ],
)
def test_conversion(dataset, equation, question, eot, pot):
    rationales = rationales_from_equation(dataset, equation, question)
    assert rationales.eot == eot
    assert rationales.pot == pot


def test_unsupported():
    with pytest.raises(UnsupportedFormula):
        rationales_from_equation("asdiv", "", "")
    with pytest.raises(UnsupportedFormula):
        rationales_from_equation("gsm8k", "1+1", "")


def test_real_gold_equations_solve_to_gold(data_dir):
    """SVAMP, MultiArith and ASDiv gold equations, as EoT and as PoT, reach the gold answer for at
    least 99% of the numeric problems. Failures are printed: pytest shows them when the test fails,
    or with -s."""
    totals = {"eot": [0, 0], "pot": [0, 0]}
    failures = []
    for dataset in ("svamp", "multiarith", "asdiv"):
        for problem in load_problems(dataset, "test", data_dir).problems:
            try:
                rationales = rationales_from_equation(dataset, problem.equation, problem.question)
            except UnsupportedFormula as exc:
                totals["eot"][1] += 1
                totals["pot"][1] += 1
                failures.append((problem.id, "both", problem.equation, str(exc)))
                continue
            for thought, text in (("eot", rationales.eot), ("pot", rationales.pot)):
                if text is None:
                    continue  # equations with unknowns have no direct program form
                result = execute(thought, text)
                totals[thought][1] += 1
                if answers_match(result.answer, problem.answer):
                    totals[thought][0] += 1
                else:
                    failures.append((problem.id, thought, problem.equation, result.answer, problem.answer))
    print(f"gold equations solved: {totals}; {len(failures)} failures:")
    for failure in failures:
        print("  ", *failure)
    for thought, (solved, total) in totals.items():
        assert total > 3500
        assert solved / total >= 0.99, f"{thought}: {solved}/{total}"
