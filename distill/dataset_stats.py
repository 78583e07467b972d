"""What a dataset teaches, per thought: coverage, paths per problem, how many EoT systems solve for
an unknown, whether a problem's PoT and EoT are different computations or one written twice, and how
many steps the rationales take. Pure functions over records; nothing is executed.

Definitions (stated in `distill data stats --help`):
- an EoT system *solves for an unknown* when some name is never given by an assignment whose other
  side uses only known names (`x + 15 = 27`, or a relation stated before its parts are known);
- a problem's PoT and EoT *differ in structure* when the EoT solves for an unknown or its arithmetic
  operations, in order, differ from the PoT's (renaming, inlining numbers and `=` are not differences);
- a rationale's *steps* are its lines that compute (a binary arithmetic operator outside comments;
  `ans = total` names the answer and is no step, `ans = 48 + may` is one; a leading minus is a sign).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Iterable

from runtime.solver.eot_grammar import EquationError, names_in, parse_system
from runtime.thoughts import Thought

from .records import Record

STEP_BUCKETS = ("0", "1", "2", "3", "4", "5", "6", "7", "8+")
# A minus is an operation only after an operand (a name, a number, a closing bracket): `x = -3` is a sign.
_OPERATOR = re.compile(r"\*\*|//|[+*/%]|(?<=[\w)\]])\s*-")


def has_unknown(equations: str) -> bool:
    try:
        system = parse_system(equations)
    except EquationError:
        return False
    known: set[str] = set()
    pending = list(system.equations)
    changed = True
    while changed:
        changed = False
        for equation in list(pending):
            for side, other in ((equation.lhs, equation.rhs), (equation.rhs, equation.lhs)):
                if side[0] == "var" and side[1] not in known and set(names_in(other)) <= known:
                    known.add(side[1])
                    pending.remove(equation)
                    changed = True
                    break
    return bool(set(system.names) - known)


def _computing_lines(thought: str, text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        if thought == Thought.POT.value:
            line = line.split("#", 1)[0]
        elif thought == Thought.EOT.value and line.lstrip().startswith("%"):
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("The answer is"):
            continue
        if thought == Thought.COT.value:
            stripped = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", stripped)  # "two-step" is not a subtraction, "23-15" is
        if _OPERATOR.search(stripped.replace("import math", "")):
            lines.append(stripped)
    return lines


def steps(thought: str, text: str) -> int:
    return len(_computing_lines(thought, text))


def operations(thought: str, text: str) -> tuple[str, ...]:
    return tuple(op.strip() for line in _computing_lines(thought, text) for op in _OPERATOR.findall(line))


def differ_in_structure(pot: str, eot: str) -> bool:
    return has_unknown(eot) or operations(Thought.POT.value, pot) != operations(Thought.EOT.value, eot)


def dataset_stats(records: Iterable[Record]) -> dict:
    by_problem: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_problem[record.problem_id][record.thought].append(record)
    # Problems a dataset covers: a sub-question (`ID~s1`) counts for its parent problem.
    out: dict = {"problems": len(by_problem), "parents": len({pid.split("~")[0] for pid in by_problem}), "thoughts": {}}
    thoughts = sorted({t for per in by_problem.values() for t in per})
    for thought in thoughts:
        covered = [per[thought] for per in by_problem.values() if per.get(thought)]
        histogram = Counter(min(steps(thought, r.rationale), 8) for group in covered for r in group)
        entry = {
            "problems": len(covered),
            "records": sum(len(g) for g in covered),
            "paths_per_problem": round(sum(len(g) for g in covered) / len(covered), 3) if covered else 0.0,
            "steps": {bucket: histogram.get(i, 0) for i, bucket in enumerate(STEP_BUCKETS)},
        }
        if thought == Thought.EOT.value:
            systems = [r for group in covered for r in group]
            entry["with_unknown"] = round(sum(has_unknown(r.rationale) for r in systems) / len(systems), 4) if systems else 0.0
        out["thoughts"][thought] = entry
    both = [(per["pot"][0].rationale, per["eot"][0].rationale) for per in by_problem.values() if per.get("pot") and per.get("eot")]
    out["pot_and_eot"] = {"problems": len(both),
                          "differ_in_structure": round(sum(differ_in_structure(p, e) for p, e in both) / len(both), 4) if both else 0.0}
    sub = Counter(pid.rsplit("~", 1)[1] for pid in by_problem if "~s" in pid)
    if sub:
        out["subquestions"] = {"one_step": sub.get("s1", 0), "two_step": sub.get("s2", 0)}
    return out
