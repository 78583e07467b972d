"""What the tutor says about the student's steps, from the solver's own result (no model needed)."""

from runtime.solver import execute
from runtime.student import Solution, ThoughtRun
from tui.explain import check_answer, explain_steps, winning_steps

# Regular pay for one 8-hour shift; the program also works out an overtime rate the answer never uses.
PROGRAM = ("hourly_wage = 18\nhours = 8\novertime_wage = hourly_wage + hourly_wage / 2\n"
           "overtime_pay = hours * overtime_wage\ntotal = hours * hourly_wage\nans = total")


def solution_of(program: str, verdict: str = "sure") -> Solution:
    result = execute("pot", program)
    run = ThoughtRun("pot", 0, program, result.to_dict(), tokens=40, seconds=0.1, first_token_s=0.01)
    return Solution(question="How much does Tina make per 8-hour shift?", mode="etd", answer=result.answer,
                    thought="pot", reason="pot", thoughts=[run], timings={}, model="m", engine="llama.cpp",
                    confidence=0.9 if verdict == "sure" else 0.3, verdict=verdict)


def test_steps_the_answer_never_uses_are_set_apart():
    solution = solution_of(PROGRAM)
    assert [s["name"] for s in winning_steps(solution)] == ["hourly_wage", "hours", "total"]
    shown = explain_steps(solution)
    assert "3. total = 144" in shown and "overtime" not in shown.split("So the answer is 144.")[0]
    assert shown.endswith("It also worked out overtime wage = 27, overtime pay = 216, which the answer does not need.")


def test_a_learner_who_stops_early_is_told_the_steps_that_remain_not_the_unneeded_ones():
    said = check_answer(solution_of(PROGRAM), 8)  # the hours: step 2 of the 3 that matter
    assert "step 2 (hours)" in said and "needs 2 more step(s)" in said
    # 216 is a value the answer does not use: it is no step of the student's, and the sure student asks.
    assert "Let's compare step 1" in check_answer(solution_of(PROGRAM), 216)
