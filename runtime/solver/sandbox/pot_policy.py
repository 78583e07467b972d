"""The AST allow-list for program-of-thought rationales (untrusted model output).

Standard library only: the sandbox worker imports this file by path, before it drops its powers,
and checks every program again there. A program passes only if every node type, name, attribute
and import is on a list below; anything else is refused with the first reason found.
"""

from __future__ import annotations

import ast
import math

MAX_SOURCE_CHARS = 16_000

# Modules a program may import, and the names it may take from each. Programs get stand-in
# modules holding only these names, never the real module (fractions.sys would reach os).
MATH_NAMES = frozenset(
    name for name in dir(math) if not name.startswith("_")
)
ALLOWED_MODULES: dict[str, frozenset[str]] = {
    "math": MATH_NAMES,
    "fractions": frozenset({"Fraction"}),
}

SAFE_BUILTIN_NAMES = frozenset(
    {
        "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "int",
        "isinstance", "len", "list", "map", "max", "min", "pow", "print", "range", "reversed",
        "round", "set", "sorted", "str", "sum", "tuple", "zip", "True", "False", "None",
    }
)

# Named here only to give a precise message; anything not provided is a NameError anyway.
FORBIDDEN_NAMES = frozenset(
    {
        "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals",
        "locals", "vars", "dir", "input", "breakpoint", "help", "memoryview", "type", "object",
        "super", "classmethod", "staticmethod", "property", "exit", "quit", "id", "__import__",
        "__builtins__", "__loader__", "__spec__", "bytearray", "bytes", "callable", "iter", "next",
        "license", "credits", "copyright",
    }
)

# Attribute names a program may use: stand-in module members and plain value methods. No
# "format" (its field syntax walks attributes), no frame/code/generator attributes, no "mro".
ALLOWED_ATTRIBUTES = MATH_NAMES | frozenset(
    {
        "Fraction",
        # list / dict / set
        "append", "extend", "insert", "pop", "remove", "index", "count", "sort", "reverse",
        "copy", "clear", "keys", "values", "items", "get", "update", "setdefault", "add",
        "discard", "union", "intersection", "difference", "symmetric_difference", "issubset",
        "issuperset",
        # numbers
        "is_integer", "numerator", "denominator", "limit_denominator", "as_integer_ratio",
        "real", "imag", "conjugate", "bit_length",
        # str
        "lower", "upper", "strip", "lstrip", "rstrip", "split", "join", "replace", "startswith",
        "endswith", "isdigit", "isnumeric", "zfill", "title", "capitalize", "find", "rfind",
    }
)

ALLOWED_NODES: tuple[type, ...] = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.If, ast.For,
    ast.While, ast.Break, ast.Continue, ast.Pass, ast.FunctionDef, ast.Lambda, ast.arguments,
    ast.arg, ast.Call, ast.keyword, ast.Name, ast.Load, ast.Store, ast.Del, ast.Delete,
    ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.List, ast.Tuple,
    ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.comprehension, ast.Subscript, ast.Slice, ast.Attribute, ast.JoinedStr,
    ast.FormattedValue, ast.Import, ast.ImportFrom, ast.alias, ast.Starred, ast.Assert,
    ast.NamedExpr, ast.Global, ast.Nonlocal,
    # operators
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd,
    ast.Not, ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In,
    ast.NotIn, ast.Is, ast.IsNot, ast.BitAnd, ast.BitOr, ast.BitXor,
)


class PolicyError(Exception):
    """The program uses something outside the allow-list; the message says what and where."""


def parse_program(source: str) -> ast.Module:
    """Parse and check `source`; raise SyntaxError or PolicyError with a one-line reason."""
    if not isinstance(source, str):
        raise PolicyError("program is not text")
    if len(source) > MAX_SOURCE_CHARS:
        raise PolicyError(f"program too long ({len(source)} characters, limit {MAX_SOURCE_CHARS})")
    if "\x00" in source:
        raise PolicyError("program contains a NUL character")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        raise SyntaxError(f"line {exc.lineno}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. nesting too deep
        raise SyntaxError(f"cannot parse program: {type(exc).__name__}") from None
    check_tree(tree)
    return tree


def check_tree(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if not isinstance(node, ALLOWED_NODES):
            raise PolicyError(f"{where}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Name):
            if node.id.startswith("__") or node.id in FORBIDDEN_NAMES:
                raise PolicyError(f"{where}: use of {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute):
            if node.attr not in ALLOWED_ATTRIBUTES:
                raise PolicyError(f"{where}: attribute {node.attr!r} is not allowed")
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            if isinstance(node, ast.FunctionDef):
                if node.decorator_list:
                    raise PolicyError(f"{where}: decorators are not allowed")
                if node.name.startswith("__") or node.name in FORBIDDEN_NAMES:
                    raise PolicyError(f"{where}: function name {node.name!r} is not allowed")
            for arg in ast.walk(node.args):
                if isinstance(arg, ast.arg) and arg.arg.startswith("__"):
                    raise PolicyError(f"{where}: argument name {arg.arg!r} is not allowed")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_MODULES:
                    raise PolicyError(f"{where}: import of {alias.name!r} is not allowed")
        elif isinstance(node, ast.ImportFrom):
            allowed = ALLOWED_MODULES.get(node.module or "")
            if allowed is None or node.level:
                raise PolicyError(f"{where}: import from {node.module!r} is not allowed")
            for alias in node.names:
                if alias.name != "*" and alias.name not in allowed:
                    raise PolicyError(f"{where}: {node.module}.{alias.name} is not allowed")
        elif isinstance(node, ast.alias):
            if alias_name_bad(node):
                raise PolicyError(f"{where}: alias {node.asname!r} is not allowed")
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Pow):
            if not isinstance(node.target, ast.Name):
                raise PolicyError(f"{where}: '**=' is only allowed on a plain name")
        elif isinstance(node, ast.Constant) and isinstance(node.value, (bytes, complex)):
            raise PolicyError(f"{where}: {type(node.value).__name__} constants are not allowed")


def alias_name_bad(node: ast.alias) -> bool:
    return bool(node.asname) and (node.asname.startswith("__") or node.asname in FORBIDDEN_NAMES)


class GuardPowers(ast.NodeTransformer):
    """Rewrite `a ** b` and `a **= b` into calls of a guarded power, so 10**10**10 fails fast.

    Runs after the check, so the helper's reserved name cannot come from the program itself.
    """

    HELPER = "__safe_pow__"

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow):
            call = ast.Call(ast.Name(self.HELPER, ast.Load()), [node.left, node.right], [])
            return ast.copy_location(call, node)
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow) and isinstance(node.target, ast.Name):
            load = ast.Name(node.target.id, ast.Load())
            call = ast.Call(ast.Name(self.HELPER, ast.Load()), [load, node.value], [])
            return ast.copy_location(ast.Assign([node.target], call), node)
        return node


MAX_POWER_BITS = 100_000


def safe_pow(base, exponent, modulo=None):
    """pow() that refuses integer results of more than MAX_POWER_BITS bits instead of hanging."""
    if modulo is not None:
        return pow(base, exponent, modulo)
    if isinstance(exponent, int) and not isinstance(exponent, bool) and exponent > 1:
        magnitude = abs(base)
        if isinstance(magnitude, int) and magnitude > 1:
            if magnitude.bit_length() * exponent > MAX_POWER_BITS:
                raise OverflowError("exponent too large")
        elif not isinstance(magnitude, (int, float)) and hasattr(magnitude, "numerator"):
            bits = max(magnitude.numerator.bit_length(), magnitude.denominator.bit_length())
            if bits * exponent > MAX_POWER_BITS:
                raise OverflowError("exponent too large")
    return pow(base, exponent)
