"""GSM8K worked solutions -> named steps -> PoT, EoT and CoT rationales.

A GSM8K solution marks each calculation: `Natalia sold 48/2 = <<48/2=24>>24 clips in May.`
Each mark becomes a named quantity. The name comes from the words after the result (`24 clips in
May` -> `clips_may`), else from the words before the calculation; later steps refer to earlier
quantities by name instead of repeating their numbers (`48 + clips_may`). Numbers that the question
states stay literal. The EoT form writes the last step, where it is a difference or a quotient, as
an equation with the quantity unknown on the left (`clips_total - 48 = clips_may` style), which is
how such a step reads in words.

Pure text work: nothing is evaluated here; the solver verifies what comes out.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass

from runtime.solver.eot_grammar import FUNCTIONS
from runtime.thoughts import format_cot_answer

_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_FINAL = re.compile(r"\n?####\s*(.+)\s*$")
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_NUMBER_TOKEN = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?|\.\d+)(?![\w.])")

STOPWORDS = frozenset(
    """a an the of in on at to for from by with and or is are was were be been it its this that these
    those he she they we you i his her their our your them him has have had do does did will would
    can could so then there here each every per as than more less total all altogether also which who
    what how many much if but into out up down over after before about just only now still left
    s t x""".split()
)
RESERVED = frozenset({"ans", "x", "math", "solution", "print"}) | set(FUNCTIONS)


class NoSteps(ValueError):
    """The solution has no usable calculation marks."""


@dataclass
class Step:
    name: str
    expression: str      # with earlier quantities referred to by name
    result: str          # the value the solution states, as written
    line: int = 0        # the solution line (0-based) the calculation is on


@dataclass
class GoldRationales:
    steps: list[Step]
    pot: str
    eot: str
    cot: str


def rationales_from_solution(question: str, solution: str, gold: float) -> GoldRationales:
    steps = parse_steps(question, solution)
    answer_name = _answer_step(steps, gold)
    lines = [f"{step.name} = {step.expression}" for step in steps]
    pot = "\n".join(lines + [f"ans = {answer_name}"])
    eot = "\n".join(_eot_lines(steps) + [f"ans = {answer_name}"])
    return GoldRationales(steps=steps, pot=pot, eot=eot, cot=clean_cot(solution, gold))


def clean_cot(solution: str, gold: float) -> str:
    """Drop the calculator marks and end with `The answer is N.` instead of `#### N`."""
    return f"{strip_marks(solution)}\n{format_cot_answer(gold)}"


def strip_marks(solution: str) -> str:
    """The solution's prose: no calculator marks, no `#### N` line."""
    return _FINAL.sub("", _ANNOTATION.sub("", solution)).rstrip()


def solution_results(solution: str) -> set[float]:
    """Every value the solution calculates (its marks' results, arithmetic or not), its answer included."""
    values = set()
    for line in _FINAL.sub("", solution).split("\n"):
        for match in _marks(line):
            try:
                values.add(float(match.group(2).strip().replace(",", "").lstrip("$")))
            except ValueError:
                continue
    return values


def parse_steps(question: str, solution: str) -> list[Step]:
    stated = {_canonical(n) for n in _NUMBER_TOKEN.findall(question.replace(",", ""))}
    steps: list[Step] = []
    used: set[str] = set()
    by_value: dict[str, str] = {}  # canonical result -> the latest step's name
    body = _FINAL.sub("", solution)
    for number, line in enumerate(body.split("\n")):
        for match in _marks(line):
            raw_expression, raw_result = match.group(1), match.group(2)
            expression = _tidy(raw_expression)
            if not _is_arithmetic(expression):
                continue
            result = raw_result.strip().replace(",", "")
            name = _unique(_name_for(line, match), used)
            expression = _refer_back(expression, by_value, stated)
            steps.append(Step(name=name, expression=expression, result=result, line=number))
            used.add(name)
            by_value[_canonical(result)] = name
    if not steps:
        raise NoSteps("no calculation marks in the solution")
    return steps


def _marks(line: str) -> list:
    """A solution line's calculations: its calculator marks, else the calculations written out in it."""
    return list(_ANNOTATION.finditer(line)) or list(_inline_calculations(line))


_INLINE = re.compile(r"(?P<expr>[\d.(][\d.+\-*/() ]*[\d)])\s*=\s*(?P<res>-?\d+(?:\.\d+)?)")


class _Mark:
    """An unmarked calculation found in the text, shaped like an annotation match."""

    def __init__(self, expression: str, result: str, line: str, start: int, end: int):
        self._groups = (expression, result)
        self.string, self._start, self._end = line, start, end

    def group(self, index: int) -> str:
        return self._groups[index - 1]

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end


def _inline_calculations(line: str):
    """`Nellie needs 45 − 17 = 28 more rolls` -> a mark for `45 - 17` = 28.

    Written-out calculations without calculator marks: symbols normalised, unit words after
    numbers dropped (`3 bottles - .9 bottles`), implicit products made explicit (`2(180+30)`).
    Positions refer to the normalised line, which naming reads from.
    """
    text = line.replace("\u2212", "-").replace("\u00d7", "*").replace("\u00f7", "/").replace("$", "")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = re.sub(r"(?<=[\d)])\s*x\s*(?=[\d(.])", " * ", text)
    text = re.sub(r"(?<=\d)%", "", text)
    text = re.sub(r"(\d)\s+[A-Za-z]+(?:/[A-Za-z]+)?(?=\s*[-+*/=)])", r"\1", text)
    text = re.sub(r"(\d|\))\s*\(", r"\1*(", text)
    text = re.sub(r"\)\s*(\d)", r")*\1", text)
    for match in _INLINE.finditer(text):
        expression = match.group("expr")
        if re.search(r"\d\s*[-+*/]\s*[\d(.]", expression) and expression.count("(") == expression.count(")"):
            yield _Mark(expression, match.group("res"), text, match.start(), match.end())


def _answer_step(steps: list[Step], gold: float) -> str:
    """The step whose stated result is the gold answer, preferring the last one."""
    for step in reversed(steps):
        try:
            if abs(float(step.result) - gold) < 1e-6:
                return step.name
        except ValueError:
            continue
    return steps[-1].name


def _eot_lines(steps: list[Step]) -> list[str]:
    lines = [f"{step.name} = {step.expression}" for step in steps]
    last = steps[-1]
    try:
        tree = ast.parse(last.expression, mode="eval").body
    except SyntaxError:
        return lines
    if isinstance(tree, ast.BinOp) and isinstance(tree.op, (ast.Sub, ast.Div)):
        left = ast.get_source_segment(last.expression, tree.left)
        right = ast.get_source_segment(last.expression, tree.right)
        if isinstance(tree.right, ast.BinOp):
            right = f"({right})"
        if isinstance(tree.op, ast.Sub):  # part = whole - other  ->  part + other = whole
            lines[-1] = f"{last.name} + {right} = {left}"
        else:  # share = whole / count  ->  share * count = whole
            lines[-1] = f"{last.name} * {right} = {left}"
    return lines


def _tidy(expression: str) -> str:
    text = expression.strip().replace(",", "")
    text = re.sub(r"\s*([-+*/()])\s*", r" \1 ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = text.replace("( ", "(").replace(" )", ")")
    text = re.sub(r"(^|[(*/+-] )- (\d)", r"\1-\2", text)  # unary minus stays attached
    text = text.replace("* *", "**")
    return text


def _is_arithmetic(expression: str) -> bool:
    if not expression or not re.fullmatch(r"[\d.+\-*/() ]+", expression):
        return False
    try:
        ast.parse(expression, mode="eval")
    except SyntaxError:
        return False
    return True


def _canonical(number: str) -> str:
    try:
        value = float(number)
    except ValueError:
        return number
    return str(int(value)) if value.is_integer() else repr(value)


def _refer_back(expression: str, by_value: dict[str, str], stated: set[str]) -> str:
    """Replace numbers that are earlier results (and not stated in the question) by their names."""

    def replace(match: re.Match) -> str:
        canonical = _canonical(match.group(1))
        if canonical in by_value and canonical not in stated:
            return by_value[canonical]
        return match.group(0)

    return _NUMBER_TOKEN.sub(replace, expression)


def _name_for(line: str, match: re.Match) -> str:
    after = line[match.end():]
    after = re.sub(r"^\s*[\d.,]+", "", after)  # the result number that follows the mark
    words = _content_words(re.split(r"[.;:!?]", after, maxsplit=1)[0])[:3]
    before = line[: match.start()]
    before = before.rsplit("=", 1)[0] if "=" in before else before
    before = re.split(r"[.;:!?]\s", before)[-1]  # the clause the calculation belongs to
    if len(words) < 2:  # a bare unit (`kg`) says little: add what the clause is about
        words = _content_words(before)[-2:] + words
    name = "_".join(dict.fromkeys(words)) or "value"
    if name[0].isdigit():
        name = f"n_{name}"
    return name[:40].rstrip("_")


def _content_words(text: str) -> list[str]:
    words = []
    for word in _WORD.findall(text):
        word = word.lower().replace("'", "")
        if word and word not in STOPWORDS and not keyword.iskeyword(word):
            words.append(word)
    return words


def _unique(name: str, used: set[str]) -> str:
    if name in RESERVED or keyword.iskeyword(name):
        name = f"{name}_value"
    candidate, index = name, 2
    while candidate in used:
        candidate = f"{name}_{index}"
        index += 1
    return candidate
