"""Equation-of-thought: our grammar, sympy solving in a worker, hostile texts."""

import time

import pytest

from runtime.solver import execute
from runtime.solver.eot_grammar import EquationError, parse_system

ANGELA = """% Assume Angela delivers x meals:
meals = x
packages = 8 * meals
packages + meals = 27
ans = meals"""


@pytest.mark.parametrize(
    "text, answer",
    [
        (ANGELA, 3.0),
        ("ans = 48 + 48 / 2", 72.0),
        ("clips_may = 48 / 2\nans = 48 + clips_may", 72.0),
        ("2x + 3 = 11\nans = x", 4.0),
        ("a + b = 10\na - b = 2\nans = a * b", 24.0),
        ("total = 1,200.50 + 99.50\nans = total", 1300.0),
        ("discount = 25% * 80\nans = 80 - discount", 60.0),
        ("ans = 3/4 + 0.25", 1.0),
        ("ans = 2^3 + 2**2", 12.0),
        ("ans = 3(2 + 4)", 18.0),
        ("ans = (1 + 2)(3 + 4)", 21.0),
        ("$5 * 4 = cost\nans = cost", 20.0),
        ("side^2 = 16\nans = side", 4.0),
        ("ans = gcd(12, 18) + lcm(4, 6)", 18.0),
        ("ans = ceil(94 / 8)", 12.0),
        ("ans = floor(94 / 8) + mod(94, 8)", 17.0),
        ("ans = round(2.5) + abs(-1) + sqrt(9) + min(1, 2) + max(1, 2)", 10.0),
        ("x = 3\ny = x + 1\nx + y = 7\nans = y", 4.0),  # redundant but consistent
        ("# a comment\n\n   \nans = 7 % a percent sign after a space starts a comment", 7.0),
    ],
)
def test_solves(text, answer):
    result = execute("eot", text)
    assert result.error is None, result.error
    assert result.answer == pytest.approx(answer)


def test_steps_follow_first_appearance():
    result = execute("eot", ANGELA)
    assert [s.name for s in result.steps] == ["meals", "x", "packages"]
    assert [s.value for s in result.steps] == [3.0, 3.0, 24.0]


def test_non_negative_root_is_chosen_and_noted():
    result = execute("eot", "side^2 = 16\nans = side")
    assert result.answer == 4.0 and "non-negative" in result.note


HOSTILE_EQUATIONS = {
    "power_tower": ("ans = 9**9**9", "too_large"),
    "caret_tower": ("ans = 9^9^9", "too_large"),
    "constant_power_blowup": ("ans = (10^100)^100", "too_large"),
    "unknown_exponent": ("ans = 2^x\nx = 3", "syntax"),
    "python_import": ("__import__('os').system('touch /tmp/x')", "syntax"),
    "python_code": ("import os", "syntax"),
    "sympify_style_string": ("ans = 'exec(1)'", "syntax"),
    "deep_nesting": ("ans = " + "(" * 500 + "1" + ")" * 500, "too_complex"),
    "long_literal": ("ans = " + "9" * 200, "too_large"),
    "oversized_text": ("ans = 1\n" + "% padding\n" * 3000, "too_complex"),
    "nul_character": ("ans = 1\x00", "syntax"),
    "too_many_equations": ("\n".join(f"x{i} = {i}" for i in range(100)) + "\nans = x1", "too_complex"),
    "too_many_unknowns": ("ans = " + " + ".join(f"v{i}" for i in range(100)), "too_complex"),
    "inconsistent": ("x = 3\nx = 4\nans = x", "no_solution"),
    "circular": ("ans = x\nx = y\ny = x + 1", "no_solution"),
    "underdetermined": ("ans = x\nx * y = 1", "many_solutions"),
    "two_answers": ("a * b = 6\na + b = 5\nans = a", "many_solutions"),
    "division_by_zero": ("ans = 1 / 0", "runtime"),
    "complex_answer": ("ans = sqrt(-1)", "non_numeric"),
    "no_ans_line": ("x = 5", "no_answer"),
    "double_equals": ("ans == 5", "syntax"),
    "two_equals": ("ans = 5 = 6", "syntax"),
    "empty": ("", "no_answer"),
    "function_as_name": ("floor = 3\nans = floor", "syntax"),
    "bad_arity": ("ans = gcd(4)", "syntax"),
    "unicode_digits": ("ans = \uff15", "syntax"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_EQUATIONS))
def test_hostile_equations(name):
    text, kind = HOSTILE_EQUATIONS[name]
    started = time.monotonic()
    result = execute("eot", text, timeout=2.0)
    assert result.answer is None
    assert result.error
    assert result.error_kind == kind, (result.error_kind, result.error)
    assert time.monotonic() - started < 4.5


def test_enough_hostile_equations():
    assert len(HOSTILE_EQUATIONS) >= 15


def test_slow_system_times_out_and_worker_recovers():
    # A dense non-linear system that sympy cannot finish quickly.
    text = "\n".join(
        [f"x{i}^3 + x{(i + 1) % 6} * x{(i + 2) % 6}^2 = {i + 2}" for i in range(6)] + ["ans = x0"]
    )
    started = time.monotonic()
    result = execute("eot", text, timeout=1.0)
    assert result.answer is None and result.error_kind in ("timeout", "no_solution", "many_solutions")
    assert time.monotonic() - started < 3.5
    assert execute("eot", ANGELA).answer == 3.0


def test_grammar_never_evaluates_names():
    system = parse_system("eval = 1\nexec = eval(2)\nans = exec")
    # `eval(2)` is implicit multiplication of a quantity named eval, nothing more.
    assert system.equations[1].rhs == ["mul", ["var", "eval"], ["num", "2"]]
    with pytest.raises(EquationError):
        parse_system("ans = os.system(1)")


def test_thousands_separator_versus_arguments():
    assert parse_system("ans = 1,000").equations[0].rhs == ["num", "1000"]
    assert parse_system("ans = gcd(12,180)").equations[0].rhs == ["call", "gcd", [["num", "12"], ["num", "180"]]]
