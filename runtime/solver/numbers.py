"""Reading numbers the way word problems write them, and the one answer comparison."""

from __future__ import annotations

import math
import re
from fractions import Fraction

# `1,200.50`, `1200`, `.5`, `-3`, with an optional `a/b` fraction and a mixed number `2 1/2`.
NUMBER_PATTERN = r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_NUMBER_TEXT = re.compile(
    rf"^\s*(?P<sign>-)?\s*\$?\s*(?:(?P<whole>[0-9]+)\s+(?=[0-9]+\s*/))?(?P<num>{NUMBER_PATTERN[2:]})"
    rf"(?:\s*/\s*(?P<den>{NUMBER_PATTERN[2:]}))?\s*(?P<pct>%)?\s*\.?\s*$"
)

REL_TOL = 1e-6
ABS_TOL = 1e-4


def parse_number(text: str) -> float | None:
    """`$1,200.50` -> 1200.5, `3/4` -> 0.75, `2 1/2` -> 2.5, `25%` -> 25.0; None if not a number.

    A percentage keeps its number (GSM8K's gold for "what percent" questions is 25, not 0.25).
    """
    if not isinstance(text, str) or len(text) > 100:
        return None
    match = _NUMBER_TEXT.match(text)
    if not match:
        return None
    try:
        value = Fraction(match["num"].replace(",", ""))
        if match["den"] is not None:
            denominator = Fraction(match["den"].replace(",", ""))
            if denominator == 0:
                return None
            value /= denominator
        if match["whole"] is not None:
            value += int(match["whole"])
    except (ValueError, ZeroDivisionError):
        return None
    if match["sign"]:
        value = -value
    return float(value)


def answers_match(predicted: float | None, gold: float | None) -> bool:
    """The one comparison used everywhere: relative 1e-6 or absolute 1e-4."""
    if predicted is None or gold is None:
        return False
    try:
        predicted, gold = float(predicted), float(gold)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(predicted) and math.isfinite(gold)):
        return False
    return math.isclose(predicted, gold, rel_tol=REL_TOL, abs_tol=ABS_TOL)
