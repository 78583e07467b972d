"""Sandbox worker for equation-of-thought systems. Run as `python -I eot_worker.py MEMORY`.

It receives a tree that eot_grammar.py built from the model's text (never the text itself) and
builds sympy objects node by node: no eval, no sympify, no parse_expr. Solving:

1. forward substitution: an equation with one unknown left is solved for it at once (most XoT
   systems are chains of definitions, so this settles them without a general solve);
2. whatever remains goes to sympy.solve, under the worker's CPU timer.

`ans` must come out as one real number. Where several values remain and exactly one is
non-negative (a side length from `side^2 = 16`), that one is taken and the choice is noted.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import child  # noqa: E402
import sympy  # noqa: E402
from sympy import Rational  # noqa: E402


class _Gcd(sympy.Function):
    @classmethod
    def eval(cls, *args):
        if all(a.is_Rational for a in args):
            result = args[0]
            for a in args[1:]:
                result = sympy.gcd(result, a)
            return result
        return None


class _Lcm(sympy.Function):
    @classmethod
    def eval(cls, *args):
        if all(a.is_Rational for a in args):
            result = args[0]
            for a in args[1:]:
                result = sympy.lcm(result, a)
            return result
        return None


FUNCTIONS = {
    "floor": lambda a: sympy.floor(a),
    "ceil": lambda a: sympy.ceiling(a),
    "round": lambda a: sympy.floor(a + Rational(1, 2)),  # half up, as a word problem means it
    "abs": lambda a: sympy.Abs(a),
    "sqrt": lambda a: sympy.sqrt(a),
    "gcd": lambda *a: _Gcd(*a),
    "lcm": lambda *a: _Lcm(*a),
    "min": lambda *a: sympy.Min(*a),
    "max": lambda *a: sympy.Max(*a),
    "mod": lambda a, b: sympy.Mod(a, b),
}


class _Failure(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def build(node, symbols):
    kind = node[0]
    if kind == "num":
        p, _, q = node[1].partition("/")
        return Rational(int(p), int(q or 1))
    if kind == "var":
        return symbols[node[1]]
    if kind == "neg":
        return -build(node[1], symbols)
    if kind == "call":
        return FUNCTIONS[node[1]](*(build(arg, symbols) for arg in node[2]))
    a, b = build(node[1], symbols), build(node[2], symbols)
    if kind == "add":
        return a + b
    if kind == "sub":
        return a - b
    if kind == "mul":
        return a * b
    if kind == "div":
        if b == 0:
            raise _Failure("runtime", "division by zero")
        return a / b
    if kind == "pow":
        return a ** b
    raise _Failure("syntax", f"unknown node {kind!r}")


def _is_bad(expr) -> bool:
    return expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def _real_value(expr):
    """A float for a real number, else None."""
    if expr.free_symbols:
        return None
    value = complex(expr.evalf(30))
    if abs(value.imag) > 1e-9 * max(1.0, abs(value.real)):
        return None
    return value.real


def solve(equations, names):
    symbols = {name: sympy.Symbol(name) for name in names}
    pending = []  # [expression == 0, source line]
    for lhs, rhs, text in equations:
        expr = build(lhs, symbols) - build(rhs, symbols)
        if _is_bad(expr):
            raise _Failure("runtime", f"`{text}`: division by zero")
        pending.append([expr, text])

    known: dict = {}
    defined_by: dict[str, str] = {}
    first_mention: dict[str, str] = {}
    for expr, text in pending:
        for symbol in expr.free_symbols:
            first_mention.setdefault(symbol.name, text)
    note = None
    progress = True
    while progress:
        progress = False
        still = []
        for expr, text in pending:
            expr = expr.xreplace(known)
            if _is_bad(expr):
                raise _Failure("runtime", f"`{text}`: division by zero")
            free = expr.free_symbols
            if not free:
                value = _real_value(expr)
                if value is None or abs(value) > 1e-9:
                    raise _Failure("no_solution", f"`{text}` contradicts the other equations")
                continue
            if len(free) == 1:
                (symbol,) = free
                roots = _solve_one(expr, symbol)
                if roots is None:  # not solvable on its own (e.g. floor(x) = 3): keep for later
                    still.append([expr, text])
                    continue
                if len(roots) == 1:
                    known[symbol] = roots[0]
                    defined_by[symbol.name] = text
                    progress = True
                    continue
                if not roots:
                    raise _Failure("no_solution", f"`{text}` has no real solution for {symbol.name}")
            still.append([expr, text])
        pending = still

    ans = symbols["ans"]
    if ans not in known and pending:
        exprs = [expr.xreplace(known) for expr, _ in pending]
        unknowns = sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda s: s.name)
        solutions = sympy.solve(exprs, unknowns, dict=True)
        if not solutions:
            raise _Failure("no_solution", "the equations have no solution")
        values = []
        for solution in solutions:
            value = ans.xreplace(known).xreplace(solution)
            real = _real_value(value)
            if real is not None and all(abs(real - v) > 1e-9 for v, _ in values):
                values.append((real, solution))
        if not values:
            raise _Failure("many_solutions", "`ans` is not determined by the equations")
        if len(values) > 1:
            non_negative = [(v, s) for v, s in values if v >= 0]
            if len(non_negative) != 1:
                shown = ", ".join(f"{v:g}" for v, _ in values[:4])
                raise _Failure("many_solutions", f"several values for ans: {shown}")
            note = f"took the non-negative value of {len(values)} solutions"
            values = non_negative
        for symbol, value in values[0][1].items():
            if _real_value(value) is not None:
                known[symbol] = value
                defined_by.setdefault(symbol.name, first_mention.get(symbol.name))
    if ans not in known:
        raise _Failure("many_solutions", "`ans` is not determined by the equations")
    answer = _real_value(known[ans])
    if answer is None:
        raise _Failure("non_numeric", "`ans` is not a real number")
    steps = []
    for name in names:
        symbol = symbols[name]
        if symbol in known and name != "ans":
            value = _real_value(known[symbol])
            if value is not None:
                steps.append([name, value, defined_by.get(name)])
    return answer, steps, note


def _solve_one(expr, symbol) -> list | None:
    """Real roots of expr == 0 in one unknown (linear ones without a general solve), or None."""
    if expr.is_polynomial(symbol):
        poly = sympy.Poly(expr, symbol)
        if poly.degree() == 1:
            a, b = poly.all_coeffs()
            return [-b / a]
    try:
        roots = sympy.solve(expr, symbol)
    except NotImplementedError:
        return None
    real = []
    for root in roots:
        value = _real_value(root)
        if value is not None and all(abs(value - _real_value(r)) > 1e-9 for r in real):
            real.append(root)
    return real


def handle(request: dict) -> dict:
    try:
        answer, steps, note = solve(request["equations"], request["names"])
    except _Failure as exc:
        return {"answer": None, "error": str(exc), "kind": exc.kind, "steps": []}
    except (OverflowError, ValueError, TypeError, ZeroDivisionError, NotImplementedError) as exc:
        return {"answer": None, "error": f"cannot solve: {type(exc).__name__}: {str(exc)[:200]}",
                "kind": "no_solution", "steps": []}
    if answer != answer or answer in (float("inf"), float("-inf")):
        return {"answer": None, "error": "`ans` is not a finite number", "kind": "too_large", "steps": []}
    return {"answer": answer, "error": None, "kind": None, "steps": steps, "note": note}


def _n(value):
    return ["num", str(value)]


def _v(name):
    return ["var", name]


# Systems that walk sympy's main paths once before confinement: sympy imports submodules lazily,
# and a confined worker can open no files.
_WARM_UP = [
    [[_v("a"), ["mul", _n(8), _v("x")], ""], [["add", _v("a"), _v("x")], _n(27), ""], [_v("ans"), _v("x"), ""]],
    [[["pow", _v("s"), _n(2)], _n(16), ""], [_v("ans"), _v("s"), ""]],
    [[["add", _v("a"), _v("b")], _n(10), ""], [["mul", _v("a"), _v("b")], _n(21), ""], [_v("ans"), _v("a"), ""]],
    [[["add", _v("x"), _v("y")], _n(5), ""], [["sub", _v("x"), _v("y")], _n(1), ""], [_v("ans"), _v("x"), ""]],
    [[["call", "floor", [_v("x")]], _n(3), ""], [_v("x"), _n("7/2"), ""], [_v("ans"), _v("x"), ""]],
    [[_v("ans"), ["add", ["call", "gcd", [_n(12), _n(18)]], ["call", "lcm", [_n(4), _n(6)]]], ""]],
    [[_v("ans"), ["add", ["call", "ceil", [_n("5/2")]], ["call", "round", [_n("5/2")]]], ""]],
    [[_v("ans"), ["add", ["call", "sqrt", [_n(2)]], ["call", "mod", [_n(7), _n(3)]]], ""]],
    [[_v("ans"), ["add", ["call", "min", [_n(1), _v("z")]], ["call", "max", [_n(1), _n(2)]]], ""], [_v("z"), _n(4), ""]],
    [[["sub", ["pow", _v("x"), _n(3)], ["mul", _n(2), _v("x")]], _n(4), ""], [_v("ans"), _v("x"), ""]],
    [[["call", "abs", [_v("x")]], _n(3), ""], [_v("ans"), _v("x"), ""]],
]


def _tree_names(equations) -> list[str]:
    names: list[str] = []
    stack = [side for lhs, rhs, _ in equations for side in (rhs, lhs)]
    while stack:
        item = stack.pop()
        if item[0] == "var":
            if item[1] not in names:
                names.append(item[1])
        elif item[0] == "call":
            stack.extend(item[2])
        elif item[0] != "num":
            stack.extend(item[1:])
    return names


def warm_up() -> None:
    import sympy.physics  # noqa: F401  (imported lazily by some solvers)
    import sympy.tensor  # noqa: F401

    for equations in _WARM_UP:
        handle({"equations": equations, "names": _tree_names(equations)})


if __name__ == "__main__":
    warm_up()
    child.serve(handle, int(sys.argv[1]), runs_model_code=False)
