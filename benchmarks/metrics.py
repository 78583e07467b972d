"""Pure functions from benchmark records to figures: accuracy, failures, latency, throughput, ratios."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if values else None


def median(values: list[float]) -> float | None:
    return percentile(values, 50)


def share(correct: int, n: int) -> float | None:
    return round(100.0 * correct / n, 2) if n else None


def accuracy(records: list[dict]) -> dict:
    """mode -> {"all": {...}, "datasets": {dataset: {n, correct, accuracy, thoughts: {...}}}}.

    A thought's row counts its first sample: how that thought alone would have done; `failures`
    counts the solver's error kinds (no answer at all), `wrong` the answers that ran but missed."""
    by_mode: dict[str, dict] = {}
    for mode in dict.fromkeys(r["mode"] for r in records):
        rows = [r for r in records if r["mode"] == mode]
        datasets = {}
        for dataset in dict.fromkeys(r["dataset"] for r in rows):
            subset = [r for r in rows if r["dataset"] == dataset]
            datasets[dataset] = _accuracy_of(subset) | {"thoughts": thought_accuracy(subset)}
        by_mode[mode] = {"all": _accuracy_of(rows) | {"thoughts": thought_accuracy(rows)}, "datasets": datasets}
    return by_mode


def _accuracy_of(rows: list[dict]) -> dict:
    correct = sum(1 for r in rows if r["correct"])
    return {"n": len(rows), "correct": correct, "accuracy": share(correct, len(rows))}


def thought_accuracy(rows: list[dict]) -> dict:
    counts: dict[str, Counter] = defaultdict(Counter)
    failures: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        for run in row["thoughts"]:
            if run["sample"] != 0:
                continue
            tally = counts[run["thought"]]
            tally["n"] += 1
            if run["correct"]:
                tally["correct"] += 1
            elif run["answer"] is None:
                failures[run["thought"]][run["error_kind"] or "unknown"] += 1
            else:
                tally["wrong"] += 1
    return {thought: {"n": c["n"], "correct": c["correct"], "accuracy": share(c["correct"], c["n"]),
                      "wrong": c["wrong"], "failures": dict(sorted(failures[thought].items()))}
            for thought, c in counts.items()}


def generation_speeds(generations: list[dict]) -> tuple[list[float], list[float]]:
    """(decode tok/s, prompt tok/s) per generation. Streaming engines report the first token's
    time, which splits prompt processing from decoding; batched ones give only tokens/time."""
    decode, prompt = [], []
    for g in generations:
        first = g.get("first_token_s")
        if first is not None and g["seconds"] > first and g["tokens"] > 1:
            decode.append((g["tokens"] - 1) / (g["seconds"] - first))
            if first > 0:
                prompt.append(g["prompt_tokens"] / first)
        elif first is None and g["seconds"] > 0:
            decode.append(g["tokens"] / g["seconds"])
    return decode, prompt


def latency(rows: list[dict]) -> dict:
    """mode -> end-to-end latency percentiles and per-generation speeds of single-question solves."""
    by_mode = {}
    for mode in dict.fromkeys(r["mode"] for r in rows):
        subset = [r for r in rows if r["mode"] == mode]
        totals = [r["total_s"] for r in subset]
        firsts = [r["first_token_s"] for r in subset if r.get("first_token_s") is not None]
        decode, prompt = generation_speeds([g for r in subset for g in r["generations"]])
        by_mode[mode] = {
            "n": len(subset), "p50_s": percentile(totals, 50), "p90_s": percentile(totals, 90),
            "p99_s": percentile(totals, 99), "first_token_p50_s": median(firsts),
            "decode_tok_s": median(decode), "prompt_tok_s": median(prompt),
            "solver_p50_s": median([r["solver_s"] for r in subset]),
            "tokens_p50": median([r["tokens"] for r in subset]),
        }
    return by_mode


def throughput(records: list[dict]) -> dict:
    """mode -> problems and generated tokens per second in batch mode."""
    by_mode = {}
    for mode in dict.fromkeys(r["mode"] for r in records):
        subset = [r for r in records if r["mode"] == mode and r.get("batch_share_s") is not None]
        if not subset:  # answered from another mode's generations: nothing was timed
            continue
        seconds = sum(r["batch_share_s"] for r in subset)
        tokens = sum(t["tokens"] for r in subset for t in r["thoughts"])
        by_mode[mode] = {"problems": len(subset), "seconds": round(seconds, 3),
                         "problems_per_s": round(len(subset) / seconds, 4) if seconds else None,
                         "tokens_per_s": round(tokens / seconds, 2) if seconds else None,
                         "batch_size": max((r["batch_size"] for r in subset), default=None)}
    return by_mode


def agreement(records: list[dict], reference: list[dict]) -> dict:
    """mode -> share of problems where the final answer equals the reference's (both None counts)."""
    from runtime.solver import answers_match

    theirs = {(r["mode"], r["dataset"], r["id"]): r["answer"] for r in reference}
    by_mode: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        key = (r["mode"], r["dataset"], r["id"])
        if key not in theirs:
            continue
        other = theirs[key]
        same = (r["answer"] is None and other is None) or answers_match(r["answer"], other)
        by_mode[r["mode"]]["n"] += 1
        by_mode[r["mode"]]["same"] += same
    return {mode: {"n": c["n"], "same": c["same"], "agreement": share(c["same"], c["n"])} for mode, c in by_mode.items()}


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base in (None, 0):
        return None
    return round(value / base, 3)


# GSM8K problems by the length of their gold solution: its calculator annotations (<<48/2=24>>).
STEP_BUCKETS = (("1-2", 1, 2), ("3-4", 3, 4), ("5+", 5, None))
# SVAMP, ASDiv and MultiArith problems by the operations in their gold equation: one step, two, more.
OPERATION_BUCKETS = (("1", 1, 1), ("2", 2, 2), ("3+", 3, None))
_ANNOTATION = re.compile(r"<<[^<>]*>>")
_EQUATION_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|[-+*/()])")


def solution_steps(solution: str | None) -> int:
    return len(_ANNOTATION.findall(solution or ""))


def equation_operations(equation: str | None) -> int | None:
    """The arithmetic operations in a gold equation: SVAMP's `( 76.0 - 25.0 )`, ASDiv's `7+2=9`,
    MultiArith's `X=((32.0+42.0)-35.0)`. None when it is not one plain arithmetic expression (ASDiv's
    remainders, ratios, comparisons and formulas with units): those problems are left out of the table."""
    text = (equation or "").strip()
    if text.startswith("X="):
        text = text[2:]
    if text.count("=") == 1:
        text = text.split("=")[0]
    tokens, at = [], 0
    while at < len(text.rstrip()):
        match = _EQUATION_TOKEN.match(text, at)
        if not match:
            return None
        tokens.append(match.group(1))
        at = match.end()
    if not tokens:
        return None
    # A binary operation follows a number or a closing parenthesis (a leading minus is a sign).
    return sum(1 for before, token in zip(tokens, tokens[1:])
               if token in "+-*/" and (before == ")" or before[0].isdigit()))


def step_bucket(steps: int, buckets: tuple = STEP_BUCKETS) -> str | None:
    for name, low, high in buckets:
        if steps >= low and (high is None or steps <= high):
            return name
    return None  # a solution without annotations, an equation without an operation


def accuracy_by_steps(records: list[dict], steps: dict[str, int], buckets: tuple = STEP_BUCKETS) -> dict:
    """mode -> bucket -> {n, correct, accuracy}, over the records whose problem id has a step count."""
    out: dict[str, dict] = {}
    for mode in dict.fromkeys(r["mode"] for r in records):
        rows_of: dict[str, list[dict]] = {name: [] for name, _, _ in buckets}
        for r in records:
            bucket = step_bucket(steps[r["id"]], buckets) if r["mode"] == mode and r["id"] in steps else None
            if bucket:
                rows_of[bucket].append(r)
        if any(rows_of.values()):
            out[mode] = {name: _accuracy_of(rows) for name, rows in rows_of.items()}
    return out


def accuracy_by_operations(records: list[dict], operations: dict[str, int]) -> dict:
    """mode -> bucket (`OPERATION_BUCKETS`) -> {n, correct, accuracy, pot_longer}, over the records whose
    problem has a counted gold equation. `pot_longer`: the share (%) of those with a greedy program that
    uses more operations than the gold equation: a one-step problem answered with extra steps."""
    from distill.dataset_stats import operations as operations_in

    table = accuracy_by_steps(records, operations, OPERATION_BUCKETS)
    for mode, buckets in table.items():
        programs: dict[str, list[bool]] = {name: [] for name in buckets}
        for r in records:
            if r["mode"] != mode or r["id"] not in operations:
                continue
            bucket = step_bucket(operations[r["id"]], OPERATION_BUCKETS)
            pot = next((t for t in r.get("thoughts", []) if t["thought"] == "pot" and t.get("sample", 0) == 0), None)
            if bucket and pot is not None:
                programs[bucket].append(len(operations_in("pot", pot["text"])) > operations[r["id"]])
        for name, longer in programs.items():
            buckets[name]["pot_longer"] = share(sum(longer), len(longer))
    return table


def unused_steps(records: list[dict]) -> dict:
    """dataset -> how many greedy programs (etd's, or the first mode's) ran to an answer, the share (%)
    with steps the answer never uses (`runtime.solver.unused`: lines that compute for nothing), and the
    programs' own accuracy with and without such lines."""
    from runtime.solver.unused import unused_lines_of

    modes = list(dict.fromkeys(r["mode"] for r in records))
    mode = "etd" if "etd" in modes else (modes[0] if modes else None)
    groups: dict[str, dict[bool, list[bool]]] = {}
    for r in records:
        pot = next((t for t in r.get("thoughts", []) if t["thought"] == "pot" and t.get("sample", 0) == 0), None)
        if r["mode"] != mode or pot is None or pot.get("answer") is None:
            continue
        lines = unused_lines_of("pot", pot["text"])
        if lines is not None:
            groups.setdefault(r["dataset"], {True: [], False: []})[bool(lines)].append(bool(pot.get("correct")))
    return {dataset: {"programs": len(g[True]) + len(g[False]), "with_unused": share(len(g[True]), len(g[True]) + len(g[False])),
                      "accuracy_with": share(sum(g[True]), len(g[True])), "accuracy_without": share(sum(g[False]), len(g[False]))}
            for dataset, g in groups.items()}

