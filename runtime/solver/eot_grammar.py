"""Equation-of-thought grammar: untrusted text -> a small JSON-able tree. Nothing is evaluated.

    system    := line*
    line      := blank | comment | equation
    comment   := '%' ... | '#' ...            (a '%' right after a number or ')' is a percent sign)
    equation  := expr '=' expr
    expr      := term (('+' | '-') term)*
    term      := unary (('*' | '/') unary)*   (also implicit: `2x`, `3(a + b)`, `(a)(b)`)
    unary     := ('-' | '+') unary | power
    power     := atom (('^' | '**') unary)?   (right-associative; the exponent must be a constant)
    atom      := number | name | function '(' expr (',' expr)* ')' | '(' expr ')'
    number    := 12 | 1,000 | 3.5 | .5, optionally followed by % (divides by 100); '$' is ignored
    function  := floor | ceil | round | abs | sqrt | gcd | lcm | min | max | mod

Tree nodes: ["num", "p/q"], ["var", name], [op, a, b] for add/sub/mul/div/pow, ["neg", a],
["call", function, [args]]. Numbers stay exact (fractions). Limits keep a hostile text small and
fast: size, lines, names, nesting depth, literal length, and exponents (a constant of at most
MAX_EXPONENT, with constant powers capped in size), so `9**9**9` is refused, not computed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

MAX_TEXT_CHARS = 10_000
MAX_EQUATIONS = 64
MAX_NAMES = 64
MAX_NAME_CHARS = 64
MAX_DEPTH = 60
MAX_NODES = 5_000
MAX_LITERAL_CHARS = 30
MAX_EXPONENT = 100
MAX_CONSTANT_BITS = 4_000

FUNCTIONS: dict[str, tuple[int, int]] = {  # name -> (min args, max args)
    "floor": (1, 1), "ceil": (1, 1), "round": (1, 1), "abs": (1, 1), "sqrt": (1, 1),
    "gcd": (2, 8), "lcm": (2, 8), "min": (2, 8), "max": (2, 8), "mod": (2, 2),
}

_NUMBER_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?(?![0-9,])|[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_NUMBER_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = {"**": "**", "^": "^", "+": "+", "-": "-", "*": "*", "/": "/", "(": "(", ")": ")",
              ",": ",", "=": "=", "\u00d7": "*", "\u00f7": "/", "\u2212": "-"}


class EquationError(Exception):
    """The text is not a valid system; `kind` is a SolverResult error kind."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Equation:
    lhs: list
    rhs: list
    line: int
    text: str


@dataclass
class System:
    equations: list[Equation]
    names: list[str] = field(default_factory=list)  # in order of first appearance

    def to_request(self) -> dict:
        return {
            "equations": [[eq.lhs, eq.rhs, eq.text] for eq in self.equations],
            "names": self.names,
        }


@dataclass
class _Token:
    kind: str  # num, name, func, op, pct
    value: object
    column: int


def parse_system(text: str) -> System:
    if not isinstance(text, str):
        raise EquationError("syntax", "the equations are not text")
    if len(text) > MAX_TEXT_CHARS:
        raise EquationError("too_complex", f"text longer than {MAX_TEXT_CHARS} characters")
    if "\x00" in text:
        raise EquationError("syntax", "text contains a NUL character")
    equations: list[Equation] = []
    names: list[str] = []
    nodes = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = _tokenize(raw, number)
        if not tokens:
            continue
        if len(equations) >= MAX_EQUATIONS:
            raise EquationError("too_complex", f"more than {MAX_EQUATIONS} equations")
        parser = _Parser(tokens, number)
        lhs, rhs = parser.equation()
        nodes += parser.nodes
        if nodes > MAX_NODES:
            raise EquationError("too_complex", "the equations are too large")
        for side in (lhs, rhs):
            _check_powers(side, number)
            for name in names_in(side):
                if name not in names:
                    names.append(name)
        if len(names) > MAX_NAMES:
            raise EquationError("too_complex", f"more than {MAX_NAMES} names")
        equations.append(Equation(lhs, rhs, number, raw.strip()[:200]))
    if not equations:
        raise EquationError("no_answer", "no equations found")
    if "ans" not in names:
        raise EquationError("no_answer", "no `ans = ...` line")
    return System(equations, names)


def _tokenize(line: str, number: int) -> list[_Token]:
    tokens: list[_Token] = []
    parens: list[str] = []  # "call" or "group": a comma separates only inside a call
    i = 0
    while i < len(line):
        ch = line[i]
        if ch.isspace() or ch == "$":
            i += 1
            continue
        if ch == "#":
            break
        if ch == "%":
            if tokens and i > 0 and not line[i - 1].isspace() and (
                tokens[-1].kind == "num" or tokens[-1].value == ")"
            ):
                tokens.append(_Token("pct", "%", i))
                i += 1
                continue
            break  # a comment runs to the end of the line
        pattern = _NUMBER_PLAIN if parens and parens[-1] == "call" else _NUMBER_GROUPED
        match = pattern.match(line, i)
        if match:
            literal = match.group().replace(",", "")
            if len(literal) > MAX_LITERAL_CHARS:
                raise EquationError("too_large", f"line {number}: number {literal[:20]}... is too long")
            tokens.append(_Token("num", Fraction(literal), i))
            i = match.end()
            continue
        match = _NAME.match(line, i)
        if match:
            name = match.group()
            if len(name) > MAX_NAME_CHARS:
                raise EquationError("too_complex", f"line {number}: name too long")
            rest = line[match.end():].lstrip()
            if name in FUNCTIONS and rest.startswith("("):
                tokens.append(_Token("func", name, i))
            elif name in FUNCTIONS:
                raise EquationError("syntax", f"line {number}: {name!r} is a function, not a name")
            else:
                tokens.append(_Token("name", name, i))
            i = match.end()
            continue
        op = line[i:i + 2] if line[i:i + 2] == "**" else ch
        if op in _OPERATORS:
            value = _OPERATORS[op]
            if value == "(":
                parens.append("call" if tokens and tokens[-1].kind == "func" else "group")
            elif value == ")" and parens:
                parens.pop()
            tokens.append(_Token("op", value, i))
            i += len(op)
            continue
        raise EquationError("syntax", f"line {number}: unexpected character {ch!r}")
    return _insert_implicit_products(tokens)


def _insert_implicit_products(tokens: list[_Token]) -> list[_Token]:
    """`2x` -> `2*x`, `3(a+b)` -> `3*(a+b)`, `(a)(b)` -> `(a)*(b)`, `x(a+b)` -> `x*(a+b)`."""
    out: list[_Token] = []
    for token in tokens:
        if out:
            prev = out[-1]
            left = prev.kind in ("num", "name", "pct") or prev.value == ")"
            right = token.kind in ("name", "func") or token.value == "("
            if token.kind == "num" and (prev.value == ")" or prev.kind == "pct"):
                right = True
            if left and right and not (prev.kind == "num" and token.kind == "num"):
                out.append(_Token("op", "*", token.column))
        out.append(token)
    return out


class _Parser:
    def __init__(self, tokens: list[_Token], line: int):
        self.tokens, self.line, self.pos, self.depth, self.nodes = tokens, line, 0, 0, 0

    def fail(self, message: str, kind: str = "syntax") -> EquationError:
        return EquationError(kind, f"line {self.line}: {message}")

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end of line")
        if value is not None and token.value != value:
            raise self.fail(f"expected {value!r}, found {_show(token)}")
        self.pos += 1
        return token

    def node(self, *parts) -> list:
        self.nodes += 1
        return list(parts)

    def equation(self) -> tuple[list, list]:
        if not any(t.value == "=" for t in self.tokens):
            raise self.fail("expected an equation (no '=')")
        lhs = self.expr()
        self.take("=")
        rhs = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {_show(self.peek())}")
        return lhs, rhs

    def expr(self) -> list:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail("expression nested too deeply", "too_complex")
        node = self.term()
        while (token := self.peek()) is not None and token.value in ("+", "-"):
            self.pos += 1
            node = self.node("add" if token.value == "+" else "sub", node, self.term())
        self.depth -= 1
        return node

    def term(self) -> list:
        node = self.unary()
        while (token := self.peek()) is not None and token.value in ("*", "/"):
            self.pos += 1
            node = self.node("mul" if token.value == "*" else "div", node, self.unary())
        return node

    def unary(self) -> list:
        token = self.peek()
        if token is not None and token.value in ("-", "+"):
            self.pos += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail("expression nested too deeply", "too_complex")
            operand = self.unary()
            self.depth -= 1
            return self.node("neg", operand) if token.value == "-" else operand
        return self.power()

    def power(self) -> list:
        base = self.atom()
        token = self.peek()
        if token is not None and token.value in ("^", "**"):
            self.pos += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail("expression nested too deeply", "too_complex")
            exponent = self.unary()
            self.depth -= 1
            return self.node("pow", base, exponent)
        return base

    def atom(self) -> list:
        token = self.take()
        if token.kind == "num":
            node = self.node("num", _fraction_text(token.value))
        elif token.kind == "name":
            node = self.node("var", token.value)
        elif token.kind == "func":
            self.take("(")
            args = [self.expr()]
            while self.peek() is not None and self.peek().value == ",":
                self.pos += 1
                args.append(self.expr())
            self.take(")")
            low, high = FUNCTIONS[token.value]
            if not low <= len(args) <= high:
                raise self.fail(f"{token.value}() takes {low}-{high} arguments, got {len(args)}")
            node = self.node("call", token.value, args)
        elif token.value == "(":
            node = self.expr()
            self.take(")")
        else:
            raise self.fail(f"unexpected {_show(token)}")
        if self.peek() is not None and self.peek().kind == "pct":
            self.pos += 1
            node = self.node("div", node, ["num", "100"])
        return node


def _show(token: _Token) -> str:
    return f"{token.value!r}" if token.kind != "num" else f"number {_fraction_text(token.value)}"


def _fraction_text(value: Fraction) -> str:
    return str(value)


def names_in(node: list):
    """The names a parsed expression uses, in order (with repeats)."""
    if node[0] == "var":
        yield node[1]
    elif node[0] == "call":
        for arg in node[2]:
            yield from names_in(arg)
    elif node[0] != "num":
        for child in node[1:]:
            yield from names_in(child)


def _check_powers(node: list, line: int) -> None:
    """Every exponent is a constant of modest size, and constant powers stay small."""
    if node[0] == "pow":
        exponent = _constant(node[2], line)
        if exponent is None:
            raise EquationError("syntax", f"line {line}: an exponent must be a number, not an unknown")
        if abs(exponent) > MAX_EXPONENT:
            raise EquationError("too_large", f"line {line}: exponent {float(exponent):g} is over the cap of {MAX_EXPONENT}")
        _constant(node, line)  # bound the size of a constant power
    if node[0] == "call":
        for arg in node[2]:
            _check_powers(arg, line)
    elif node[0] not in ("num", "var"):
        for child in node[1:]:
            _check_powers(child, line)


def _constant(node: list, line: int) -> Fraction | None:
    """The exact value of a constant subtree, or None if it has names or functions."""
    kind = node[0]
    if kind == "num":
        return Fraction(node[1])
    if kind in ("var", "call"):
        return None
    if kind == "neg":
        value = _constant(node[1], line)
        return None if value is None else -value
    a, b = _constant(node[1], line), _constant(node[2], line)
    if a is None or b is None:
        return None
    if kind == "add":
        return a + b
    if kind == "sub":
        return a - b
    if kind == "mul":
        return a * b
    if kind == "div":
        return None if b == 0 else a / b
    # pow
    if b.denominator != 1:
        return None  # a root: left to the solver, its size is bounded by the base
    if abs(b) > MAX_EXPONENT:
        raise EquationError("too_large", f"line {line}: exponent {float(b):g} is over the cap of {MAX_EXPONENT}")
    bits = max(a.numerator.bit_length(), a.denominator.bit_length()) * abs(b.numerator)
    if bits > MAX_CONSTANT_BITS:
        raise EquationError("too_large", f"line {line}: a power is too large")
    if a == 0 and b < 0:
        return None
    return a ** int(b)
