import pytest

from runtime.solver import SolverResult, answers_match, execute, parse_number, select_etd, select_vote
from runtime.thoughts import Thought


@pytest.mark.parametrize(
    "text, value",
    [("$1,200.50", 1200.5), ("3/4", 0.75), ("25%", 25.0), ("2 1/2", 2.5), ("-7", -7.0), (".5", 0.5),
     ("12.", 12.0), ("1,080", 1080.0), ("abc", None), ("1,2", None), ("1/0", None), ("", None)],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text, value",
    [
        ("She sold 48 + 24 = 72 clips. The answer is 72.", 72.0),
        ("It costs $1,080 in all. The answer is $1,080.", 1080.0),
        ("Natalia sold 48/2 = 24 clips.\n#### 72", 72.0),
        ("The answer is 25%.", 25.0),
        ("The answer is 3/4.", 0.75),
        ("The answer is: 12", 12.0),
        ("She has 3 apples and then 5 apples.", 5.0),
        ("The answer is 10. Wait, the answer is 12.", 12.0),
    ],
)
def test_cot_extraction(text, value):
    assert execute("cot", text).answer == value


@pytest.mark.parametrize("text", ["", "   ", "no numbers at all", "x" * 30_000])
def test_cot_without_answer(text):
    result = execute("cot", text)
    assert result.answer is None and result.error


def test_answers_match_tolerance():
    assert answers_match(72.0, 72)
    assert answers_match(1 / 3, 0.3333333)
    assert answers_match(1_000_000.0, 1_000_000.5)  # relative 1e-6
    assert not answers_match(72.0, 72.01)
    assert not answers_match(None, 1.0)
    assert not answers_match(float("nan"), float("nan"))


def _r(thought, answer):
    return SolverResult(thought=Thought(thought), answer=answer,
                        error=None if answer is not None else "failed", error_kind=None if answer is not None else "runtime")


def test_etd_prefers_pot_then_eot_then_cot():
    assert select_etd([_r("cot", 1.0), _r("eot", 2.0), _r("pot", 3.0)]).answer == 3.0
    chosen = select_etd([_r("cot", 1.0), _r("eot", 2.0), _r("pot", None)])
    assert chosen.answer == 2.0 and chosen.thought is Thought.EOT and "POT failed" in chosen.reason
    assert chosen.settled
    assert select_etd([_r("cot", 1.0), _r("eot", None), _r("pot", None)]).answer == 1.0
    none = select_etd([_r("cot", None), _r("pot", None)])
    assert none.answer is None and "no thought gave an answer" in none.reason


def test_etd_passes_over_implausible_answers():
    # A negative or fractional program answer sends etd on to the equations, then to the prose.
    chosen = select_etd([_r("pot", -4.0), _r("eot", 12.0), _r("cot", 9.0)])
    assert (chosen.answer, chosen.thought, chosen.settled) == (12.0, Thought.EOT, True)
    assert "POT gave -4, negative" in chosen.reason
    chosen = select_etd([_r("pot", 18.666666), _r("eot", None), _r("cot", 20.0)])
    assert chosen.answer == 20.0 and "not a whole number" in chosen.reason and "EOT failed" in chosen.reason
    # A fraction that a later thought reaches on its own is kept, credited to the first that gave it.
    chosen = select_etd([_r("cot", 4.0), _r("eot", 3.5), _r("pot", 3.5)])
    assert (chosen.answer, chosen.thought, chosen.settled) == (3.5, Thought.POT, True)
    assert select_etd([_r("pot", 3.5), _r("eot", 3.5000000001)]).agreement == [0, 1]
    # Agreement on a negative number is not evidence enough; a whole count later on wins.
    assert select_etd([_r("pot", -2.0), _r("eot", -2.0), _r("cot", 2.0)]).answer == 2.0
    # Nothing plausible: the first answer in PoT, EoT, CoT order stands, marked unsettled.
    chosen = select_etd([_r("cot", -1.0), _r("eot", 0.25), _r("pot", None)])
    assert (chosen.answer, chosen.thought, chosen.settled) == (0.25, Thought.EOT, False)
    assert "the first answer stands" in chosen.reason
    # Whole within the one tolerance (a float program's 7.000000001), zero, and huge values are fine.
    assert select_etd([_r("pot", 7.000000001), _r("eot", 8.0)]).answer == 7.000000001
    assert select_etd([_r("pot", 0.0), _r("eot", 8.0)]).answer == 0.0
    assert select_etd([_r("pot", float("inf")), _r("eot", 8.0)]).answer == 8.0


def test_etd_decides_each_thought_from_the_ones_before_it():
    """What lets the runtime generate thoughts one at a time: the answer chosen from the first k
    thoughts, when they settle it, is the answer chosen from all three."""
    values = [None, -3.0, 0.0, 2.5, 4.0]
    for pot in values:
        for eot in values:
            for cot in values:
                full = select_etd([_r("pot", pot), _r("eot", eot), _r("cot", cot)])
                for k in (1, 2):
                    prefix = select_etd([_r("pot", pot), _r("eot", eot)][:k])
                    if prefix.settled:
                        assert (prefix.answer, prefix.thought) == (full.answer, full.thought)
                        break


def test_vote_majority_and_tie_break():
    chosen = select_vote([_r("pot", 5.0), _r("eot", 7.0), _r("cot", 7.0), _r("cot", 5.0000001), _r("pot", 7.0)])
    assert chosen.answer == 7.0 and chosen.agreement == [1, 2, 4] and "3 of 5" in chosen.reason
    tie = select_vote([_r("cot", 1.0), _r("eot", 2.0)])
    assert tie.answer == 2.0 and "tie" in tie.reason  # EoT outranks CoT
    assert select_vote([_r("pot", None)]).answer is None
