"""Sandbox worker for program-of-thought rationales. Run as `python -I -S pot_worker.py MEMORY`.

Standard library only. Each request {"src", "cpu"} is checked against the allow-list again,
compiled with guarded powers, and run with a builtins table of safe names, stand-in `math` and
`fractions` modules and a bounded `print`. The reply carries the answer (`ans`, or the value
`solution()` returns), the named numeric values in the order they were first assigned, and what
the program printed.
"""

from __future__ import annotations

import ast
import builtins
import fractions
import math
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pot_policy  # noqa: E402
import child  # noqa: E402

MAX_OUTPUT_CHARS = 8_000
MAX_STEPS = 200


class OutputLimitExceeded(Exception):
    pass


def _stand_in(name: str, allowed: frozenset[str], source) -> types.ModuleType:
    module = types.ModuleType(name)
    for attr in allowed:
        setattr(module, attr, getattr(source, attr))
    return module


STAND_INS = {
    "math": _stand_in("math", pot_policy.ALLOWED_MODULES["math"], math),
    "fractions": _stand_in("fractions", pot_policy.ALLOWED_MODULES["fractions"], fractions),
}


def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if level or name not in STAND_INS:
        raise ImportError(f"import of {name!r} is not allowed")
    return STAND_INS[name]


def _builtins(output: list[str]) -> dict:
    table = {name: getattr(builtins, name) for name in pot_policy.SAFE_BUILTIN_NAMES}
    size = [0]

    def bounded_print(*args, sep=" ", end="\n"):
        text = str(sep).join(str(a) for a in args) + str(end)
        size[0] += len(text)
        if size[0] > MAX_OUTPUT_CHARS:
            raise OutputLimitExceeded(f"output limit exceeded ({MAX_OUTPUT_CHARS} characters)")
        output.append(text)

    table["print"] = bounded_print
    table["pow"] = pot_policy.safe_pow
    table["__import__"] = _import
    return table


def _number(value):
    """A finite float for int/float/Fraction values, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, fractions.Fraction)):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _expressions(tree: ast.Module, source: str) -> dict[str, str]:
    """name -> source of its first assignment, top level and inside `solution()`."""
    found: dict[str, str] = {}
    bodies = [tree.body] + [
        node.body for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "solution"
    ]
    for body in bodies:
        for node in body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id not in found:
                    text = ast.get_source_segment(source, node.value) or ""
                    found[target.id] = text[:200]
    return found


def handle(request: dict) -> dict:
    source = request.get("src")
    try:
        tree = pot_policy.parse_program(source)
    except SyntaxError as exc:
        return {"error": f"syntax error: {exc}", "kind": "syntax"}
    except pot_policy.PolicyError as exc:
        return {"error": f"unsafe program: {exc}", "kind": "unsafe"}

    expressions = _expressions(tree, source)
    guarded = ast.fix_missing_locations(pot_policy.GuardPowers().visit(tree))
    code = compile(guarded, "<program>", "exec")
    output: list[str] = []
    namespace = {
        "__builtins__": _builtins(output),
        "__name__": "__program__",
        pot_policy.GuardPowers.HELPER: pot_policy.safe_pow,
    }
    reserved = set(namespace)

    solution_locals: dict = {}
    defines_solution = any(
        isinstance(node, ast.FunctionDef) and node.name == "solution" for node in tree.body
    )

    def tracer(frame, event, arg):  # capture solution()'s locals as it returns
        if event == "call" and frame.f_code.co_name == "solution" and frame.f_code.co_filename == "<program>":
            def local(frame, event, arg):
                if event == "return":
                    solution_locals.update(frame.f_locals)
                return local
            return local
        return None

    def run(call):
        if defines_solution:
            sys.settrace(tracer)
        try:
            return call()
        finally:
            sys.settrace(None)

    try:
        run(lambda: exec(code, namespace))
        if "ans" in namespace:
            value = namespace["ans"]
        elif defines_solution and callable(namespace.get("solution")):
            value = run(namespace["solution"])
        else:
            return _reply(None, "the program sets no `ans` and defines no `solution()`", "no_answer",
                          namespace, reserved, solution_locals, expressions, output)
    except OutputLimitExceeded as exc:
        return {"error": str(exc), "kind": "output_limit"}
    except OverflowError as exc:
        return _reply(None, f"number too large: {exc}", "too_large", namespace, reserved,
                      solution_locals, expressions, output)
    except (ImportError, NameError, AttributeError) as exc:
        return _reply(None, f"{type(exc).__name__}: {exc}", "runtime", namespace, reserved,
                      solution_locals, expressions, output)
    except ArithmeticError as exc:
        return _reply(None, f"{type(exc).__name__}: {exc}", "runtime", namespace, reserved,
                      solution_locals, expressions, output)
    except (MemoryError, RecursionError, child.CpuTimeExceeded):
        raise
    except Exception as exc:
        return _reply(None, f"{type(exc).__name__}: {str(exc)[:300]}", "runtime", namespace,
                      reserved, solution_locals, expressions, output)

    answer = _number(value)
    if answer is None:
        if isinstance(value, (int, float, fractions.Fraction)) and not isinstance(value, bool):
            error, kind = "the answer is not a finite number that fits a float", "too_large"
        else:
            error, kind = f"the answer is a {type(value).__name__}, not a number", "non_numeric"
        return _reply(None, error, kind, namespace, reserved, solution_locals, expressions, output)
    return _reply(answer, None, None, namespace, reserved, solution_locals, expressions, output)


def _reply(answer, error, kind, namespace, reserved, solution_locals, expressions, output):
    steps = []
    for scope in (namespace, solution_locals):
        for name, value in list(scope.items()):
            if name in reserved or name.startswith("__") or len(steps) >= MAX_STEPS:
                continue
            if name in pot_policy.MATH_NAMES and value == getattr(math, name, None):
                continue  # pi, e, tau brought in by `from math import *`
            number = _number(value)
            if number is not None:
                steps.append([name, number, expressions.get(name)])
    return {"answer": answer, "error": error, "kind": kind, "steps": steps,
            "output": "".join(output)[:MAX_OUTPUT_CHARS]}


if __name__ == "__main__":
    child.serve(handle, int(sys.argv[1]))
