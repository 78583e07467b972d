"""How fast the embedded solver runs rationales, and what the sandbox costs over a bare exec.

Representative GSM8K-style programs and equation systems are run N times each through
`runtime.solver.execute` (warm workers, the way the runtime and the data builder use it), and the
same programs through a bare in-process `exec` for comparison. Medians, not means: shared machines
are noisy.
"""

from __future__ import annotations

import platform
import statistics
import time

PROGRAMS = [
    "clips_april = 48\nclips_may = clips_april / 2\nans = clips_april + clips_may",
    "rate_per_minute = 12 / 60\nans = rate_per_minute * 50",
    "wallet_cost = 100\nsaved = wallet_cost / 2\nparents = 15\ngrandparents = parents * 2\n"
    "ans = wallet_cost - saved - parents - grandparents",
    "def solution():\n    money_initial = 23\n    bagels = 5\n    bagel_cost = 3\n"
    "    money_spent = bagels * bagel_cost\n    return money_initial - money_spent\n",
    "total = 0\nfor day in range(1, 8):\n    total += day * 3\nans = total",
    "import math\nboxes = math.ceil(105 / 6)\nans = boxes",
    "eggs = 16 - 3 - 4\nans = eggs * 2",
    "from fractions import Fraction\nshare = Fraction(3, 4) * 120\nans = share - 10",
]

SYSTEMS = [
    "% Assume Angela delivers x meals:\nmeals = x\npackages = 8 * meals\npackages + meals = 27\nans = meals",
    "clips_may = 48 / 2\nans = 48 + clips_may",
    "a + b = 10\na - b = 2\nans = a * b",
    "eggs_sold = 16 - 3 - 4\nans = eggs_sold * 2",
    "2x + 3 = 11\nans = x",
    "price = 80\ndiscount = 25% * price\nans = price - discount",
]


def _time_calls(function, items, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        for item in items:
            started = time.perf_counter()
            function(item)
            times.append(time.perf_counter() - started)
    return times


def _bare_exec(source: str) -> None:
    namespace: dict = {}
    exec(compile(source, "<bench>", "exec"), namespace)  # trusted benchmark text, never model output
    if "ans" not in namespace and "solution" in namespace:
        namespace["solution"]()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(repeats: int = 50) -> dict:
    from runtime.solver import execute, warm_up

    started = time.perf_counter()
    warm_up()
    warm_seconds = time.perf_counter() - started

    for program in PROGRAMS:  # correctness first: a benchmark of failures would mean nothing
        assert execute("pot", program).ok, program
    for system in SYSTEMS:
        assert execute("eot", system).ok, system

    pot = _time_calls(lambda s: execute("pot", s), PROGRAMS, repeats)
    eot = _time_calls(lambda s: execute("eot", s), SYSTEMS, repeats)
    bare = _time_calls(_bare_exec, PROGRAMS, repeats)
    cot = _time_calls(lambda s: execute("cot", s), ["so 48 + 24 = 72. The answer is 72."], repeats * 8)

    def summary(times: list[float]) -> dict:
        median = statistics.median(times)
        return {
            "calls": len(times),
            "median_ms": round(median * 1e3, 4),
            "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))] * 1e3, 4),
            "per_second_at_median": round(1 / median, 1),
        }

    result = {
        "machine": {"python": platform.python_version(), "processor": cpu_model()},
        "worker_start_seconds": round(warm_seconds, 3),
        "pot": summary(pot),
        "eot": summary(eot),
        "cot": summary(cot),
        "bare_exec": summary(bare),
    }
    result["pot_overhead_vs_bare_exec"] = {
        "extra_ms_per_call": round((statistics.median(pot) - statistics.median(bare)) * 1e3, 4),
        "ratio": round(statistics.median(pot) / statistics.median(bare), 1),
    }
    return result


def to_markdown(result: dict) -> str:
    lines = [
        "# Embedded solver throughput",
        "",
        f"Python {result['machine']['python']}, {result['machine']['processor']}; warm workers started in "
        f"{result['worker_start_seconds']} s (PoT + EoT, sympy import included).",
        "",
        "| path | calls | median ms | p90 ms | per second (at median) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, label in (("pot", "PoT program, sandboxed"), ("eot", "EoT system, sympy worker"),
                       ("cot", "CoT answer extraction"), ("bare_exec", "bare in-process exec (reference)")):
        row = result[key]
        lines.append(f"| {label} | {row['calls']} | {row['median_ms']} | {row['p90_ms']} | {row['per_second_at_median']} |")
    overhead = result["pot_overhead_vs_bare_exec"]
    lines += ["", f"Sandbox overhead per PoT call: {overhead['extra_ms_per_call']} ms over a bare `exec` "
              f"({overhead['ratio']}x), the price of the allow-list check, a process boundary and the limits.", ""]
    return "\n".join(lines)
