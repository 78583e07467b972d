"""Gold equations of SVAMP, MultiArith and ASDiv -> EoT and PoT rationales.

Pure text rewriting (nothing is evaluated here; the solver checks every result):

- SVAMP `( 76.0 - 25.0 )` and MultiArith `X=((32.0+42.0)-35.0)` -> `ans = (76 - 25)`;
- ASDiv formulas:
  - `x:The number; 5x-17=23`        -> an EoT with the unknown (no PoT: it would need solving);
  - `LCM[7,9]=63; 63/7=9`           -> named steps, later steps refer to earlier ones by name;
  - `94/8=11 r6`                    -> floor, remainder or ceiling, read from the question's words;
  - `(7-3):10=20:50`                -> a proportion with the last term unknown;
  - `GCD(12,18)=6`, `LCM[4,6]=12`   -> gcd()/lcm() (math.gcd/math.lcm in PoT);
  - `1, 3, 9, 27, 81`               -> the sequence's last term.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DECIMAL_ZERO = re.compile(r"(?<![\d.])(\d+)\.0+(?![\d])")
_UNIT = re.compile(r"\s*\((?:[A-Za-z][A-Za-z .'-]*)(?:/[A-Za-z][A-Za-z .'-]*)?\)")  # `(cent/dime)`
_UNKNOWN_DEF = re.compile(r"^\s*([A-Za-z])\s*:\s*([^=]*)$")
_REMAINDER = re.compile(r"^(?P<a>.+?)\s*/\s*(?P<b>[\d.]+)\s*=\s*(?P<q>[\d.]+)\s*r\s*(?P<r>[\d.]+)\s*$")
_SEQUENCE = re.compile(r"^\s*-?[\d.]+(?:\s*,\s*-?[\d.]+){2,}\s*$")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")

# Which whole-number reading of a division with remainder the question asks for, from the words
# of its last sentence: what is left (remainder), how many containers are needed (ceiling), or
# how many full groups (quotient, the default), or about how many (nearest).
_REMAINDER_WORDS = re.compile(
    r"\b(left|leftover|left over|remain\w*|extra|remainder|last (?:day|vase|page|bag|box|container)"
    r"|not (?:be )?(?:placed|packed|full|fully|on a team)|isn't full|unfilled|un\w+ed|donated)\b", re.I)
_CEILING_WORDS = re.compile(
    r"\b(need|needs|needed|trips?|be rented|to finish|to hold all|to beat|to win|to get all|to earn)\b", re.I)
_ABOUT_WORDS = re.compile(r"\b(about|approximately|estimate)\b", re.I)
_FULL_WORDS = re.compile(r"\b(full|fully|entire|whole)\b", re.I)


def _division_reading(question: str) -> str:
    sentence = re.split(r"(?<=[.!])\s+", question.strip())[-1]
    if _REMAINDER_WORDS.search(sentence):
        return "remainder"
    if _ABOUT_WORDS.search(sentence):
        return "nearest"
    if _CEILING_WORDS.search(sentence) and not _FULL_WORDS.search(sentence):
        return "ceiling"
    return "quotient"


class UnsupportedFormula(ValueError):
    """The gold equation has a form this converter does not rewrite."""


@dataclass
class EquationRationales:
    eot: str
    pot: str | None  # None where the gold equation needs an unknown


def rationales_from_equation(dataset: str, equation: str, question: str = "") -> EquationRationales:
    if not equation or not equation.strip():
        raise UnsupportedFormula("no equation")
    if dataset in ("svamp", "multiarith"):
        expression = _clean(equation.split("=", 1)[1] if dataset == "multiarith" else equation)
        return _single(expression)
    if dataset == "asdiv":
        return _asdiv(equation, question)
    raise UnsupportedFormula(f"no gold equations for {dataset}")


def _clean(expression: str) -> str:
    """`76.0` -> `76`, brackets to parentheses, LCM/GCD to lcm()/gcd(), spacing tidied."""
    text = _UNIT.sub("", _DECIMAL_ZERO.sub(r"\1", expression.strip()))
    text = re.sub(r"\b(LCM|GCD|lcm|gcd)\s*[\[(]([^\])]*)[\])]", lambda m: f"{m[1].lower()}({m[2]})", text)
    text = text.replace("[", "(").replace("]", ")")
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", text))
    return text


def _group(term: str) -> str:
    """Parenthesise a compound term, leave a number alone: `7-3` -> `(7-3)`, `20` -> `20`."""
    if _NUMBER.fullmatch(term) or _wrapped(term):
        return term
    return f"({term})"


def _wrapped(term: str) -> bool:
    """True for `(a-b)`, false for `(a)-(b)`: the first parenthesis closes at the very end."""
    if not term.startswith("("):
        return False
    depth = 0
    for index, char in enumerate(term):
        depth += char == "("
        depth -= char == ")"
        if depth == 0:
            return index == len(term) - 1
    return False


def _python(expression: str) -> str:
    text = expression.replace("^", "**")
    text = re.sub(r"\bmod\(([^,()]+),\s*([^()]+)\)", r"(\1) % (\2)", text)
    text = re.sub(r"\bround\(", "math.floor(0.5 + ", text)  # half up, as the EoT round()
    text = re.sub(r"(?<!\.)\b(gcd|lcm|ceil|floor)\(", r"math.\1(", text)
    return text


def _program(lines: list[tuple[str, str]]) -> str:
    body = "\n".join(f"{name} = {_python(expr)}" for name, expr in lines)
    return ("import math\n" + body) if "math." in body else body


def _single(expression: str) -> EquationRationales:
    if not expression:
        raise UnsupportedFormula("empty expression")
    return EquationRationales(eot=f"ans = {expression}", pot=_program([("ans", expression)]))


def _asdiv(formula: str, question: str) -> EquationRationales:
    formula = formula.strip()
    if _SEQUENCE.match(formula):
        last = _clean(formula.split(",")[-1])
        return _single(last)
    parts = [part.strip() for part in formula.split(";") if part.strip()]
    unknowns = [(m[1], m[2].strip()) for m in map(_UNKNOWN_DEF.match, parts) if m]
    steps = [part for part in parts if not _UNKNOWN_DEF.match(part)]
    if not steps:
        raise UnsupportedFormula("no equation in the formula")
    if not unknowns and len(steps) == 1 and not _REMAINDER.match(_clean(steps[0])):
        letters = _unknown_letters(_clean(steps[0]))
        if len(letters) == 1:
            unknowns = [(letters[0], "the unknown")]
    if unknowns:
        lines = [f"% {name}: {description}" for name, description in unknowns]
        equations = [_clean(step) for step in steps]
        asked = _asked_quantity(unknowns, question)
        if not _unknown_letters(equations[-1]) and "=" in equations[-1]:
            asked = equations.pop().split("=")[0].strip()  # a closing arithmetic step is the answer
        lines += equations
        lines.append(f"ans = {asked}")
        return EquationRationales(eot="\n".join(lines), pot=None)

    named: list[tuple[str, str]] = []
    values: dict[str, str] = {}  # an earlier step's stated result -> its name
    for index, step in enumerate(steps, start=1):
        name = "ans" if index == len(steps) else f"step{index}"
        expression, result = _step(step, question)
        for value, earlier in values.items():
            expression = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w.])", earlier, expression, count=1)
        named.append((name, expression))
        if result is not None:
            values[result] = name
    eot = "\n".join(f"{name} = {expression}" for name, expression in named)
    return EquationRationales(eot=eot, pot=_program(named))


def _asked_quantity(unknowns: list[tuple[str, str]], question: str) -> str:
    """What the question asks of the declared unknowns: a two-digit number from its digits, a
    fraction from its parts, else the unknown whose description shares most words with the
    question's last sentence (the first one on a tie)."""
    by_role: dict[str, str] = {}
    for name, description in unknowns:
        text = description.lower()
        for role in ("tens", "unit", "numerator", "denominator"):
            if role in text:
                by_role.setdefault(role, name)
    if "tens" in by_role and "unit" in by_role:
        return f"10 * {by_role['tens']} + {by_role['unit']}"
    if "numerator" in by_role and "denominator" in by_role and "fraction" in question.lower():
        return f"{by_role['numerator']} / {by_role['denominator']}"
    sentence = set(re.findall(r"[a-z]+", re.split(r"(?<=[.!])\s+", question.strip())[-1].lower()))
    overlap = [len(sentence & set(re.findall(r"[a-z]+", d.lower())) - {"the", "of", "a"}) for _, d in unknowns]
    return unknowns[overlap.index(max(overlap))][0]


def _unknown_letters(equation: str) -> list[str]:
    """Names in a gold equation such as `3L=54` or `2(6+w)=20` (function names excluded)."""
    if "=" not in equation:
        return []
    names = re.findall(r"(?<![A-Za-z])[A-Za-z](?![A-Za-z(])", equation)
    return list(dict.fromkeys(names))


def _step(step: str, question: str) -> tuple[str, str | None]:
    """One `lhs = result` step -> (expression, its stated result)."""
    remainder = _REMAINDER.match(_clean(step))
    if remainder:
        a, b = remainder["a"], remainder["b"]
        reading = _division_reading(question)
        if reading == "remainder":
            return f"mod({a}, {b})", None
        if reading == "ceiling":
            return f"ceil({a} / {b})", None
        if reading == "nearest":
            return f"round({a} / {b})", None
        return f"floor({a} / {b})", None
    if step.count("=") == 1 and ":" in step:  # a proportion a:b = c:d
        left, right = step.split("=")
        a, b = (_clean(t) for t in left.split(":", 1))
        c, d = (_clean(t) for t in right.split(":", 1))
        stated = set(re.findall(r"\d+(?:\.\d+)?", question.replace(",", "")))
        # The asked term is the one the question does not state; the last by default.
        if c not in stated and d in stated:
            return f"{_group(a)} * {_group(d)} / {_group(b)}", None
        return f"{_group(c)} * {_group(b)} / {_group(a)}", None
    if "=" not in step:
        return _clean(step), None
    lhs, _, rhs = step.partition("=")
    result = _clean(rhs)
    return _clean(lhs), (result if _NUMBER.fullmatch(result) else None)
