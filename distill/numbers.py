"""Numbers written in text, read one way wherever distill compares them (questions, solutions,
rationales). A number may end a sentence (`costs $15.`), start with its point (`1-.4`) or carry its
unit (`30mph`, `5th`), not follow letters (`v2`); a comma between digit groups (`1,500`) is a
thousands separator."""

from __future__ import annotations

import re

NUMBER = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)?|\.\d+)(?![\d_])(?!\.\d)")

# Words a question states a number with: a teacher reading "four siblings" and writing `4` copies nothing.
_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "dozen": 12, "half": 2, "twice": 2, "double": 2, "triple": 3, "quarter": 4, "third": 3, "fifth": 5,
    "eighth": 8, "ninth": 9, "twelfth": 12,
}
# Conversions a question's words call for: a program for "10 meters a minute ... for an hour" writes 60
# whether or not the worked solution happened to calculate 1 x 60 = 60 too.
_UNITS = {
    2: ("pair", "half", "twice", "double"), 3: ("feet", "foot", "yard"), 4: ("quarter", "gallon"),
    5: ("nickel",), 7: ("week",), 10: ("dime",), 12: ("dozen", "month", "year", "inch", "feet", "foot"),
    16: ("ounce", "pound"), 24: ("hour", "day"), 25: ("quarter",), 30: ("month",), 52: ("week", "year"),
    60: ("second", "minute", "hour"), 100: ("%", "percent", "cent", "dollar", "meter", "metre"),
    365: ("year",), 1000: ("thousand", "kilo", "gram", "liter", "litre", "meter", "metre"),
}
# whole words (longest first: "sixteen" is not "six"), plural or ordinal ("dozens", "fourths")
_WORD = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")(?:s|th|ths)?\b", re.I)
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?|\.\d+)\s*(?:%|percent)", re.I)
_FRACTION = re.compile(r"(?<![\w.])(\d+)\s*/\s*(\d+)(?![\w.]|\.\d)")


def numbers(text: str) -> set[float]:
    """The numbers written with digits."""
    return {float(n) for n in NUMBER.findall(_ungroup(text))}


def stated_values(question: str) -> set[float]:
    """What a question states, in digits or words, with the forms one reads them in without
    calculating: a percentage as a share (40% -> 0.4), a fraction as its value (3/4 -> 0.75),
    `half` as 2 and 0.5, and the unit conversions its words call for (60 where it speaks of minutes)."""
    values = numbers(question)
    values |= {float(n) / 100 for n in _PERCENT.findall(_ungroup(question))}
    for word in _WORD.findall(question):
        value = _WORDS[word.lower()]
        values |= {float(value), 1 / value}
    lowered = question.lower()
    values |= {float(value) for value, words in _UNITS.items() if any(word in lowered for word in words)}
    for top, bottom in _FRACTION.findall(_ungroup(question)):
        if float(bottom):
            values.add(float(top) / float(bottom))
    return values


def _ungroup(text: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
