"""How well a student knows when it is right: pure functions from etd records that carry sampled
paths (`benchmarks run --paths K`) to calibration figures, and the refit of a student's map.

- expected calibration error (ECE, 10 equal-width bins), AUROC of confidence for correctness,
  the reliability diagram's bins, the accuracy-vs-coverage curve;
- per verdict (`sure`, `unsure`, `no answer`): the share of problems and the accuracy;
- self-consistency: the majority over the greedy etd answer and the sampled paths, against etd
  on the same problems;
- `fit`: a logistic map and two thresholds from held-out records, for K paths (a record with more
  paths is cut to its first K/2 PoT and K/2 EoT paths, so one run compares several K).
"""

from __future__ import annotations

from runtime.confidence import FEATURES, Calibration, choose_thresholds, features, fit_logistic
from runtime.solver import SolverResult, answers_match, select_vote
from runtime.thoughts import Thought

BINS = 10


def first_paths(samples: list[dict], paths: int) -> list[dict]:
    """The first paths/2 PoT and paths/2 EoT sampled paths of a record."""
    half = paths // 2
    return ([s for s in samples if s["thought"] == "pot"][:half] + [s for s in samples if s["thought"] == "eot"][:half])


def rated(records: list[dict]) -> list[dict]:
    """etd records that carry sampled paths and a confidence."""
    return [r for r in records if r["mode"] == "etd" and r.get("samples") and r.get("confidence") is not None]


def feature_rows(records: list[dict], paths: int | None = None) -> list[dict[str, float]]:
    """Each record's confidence features, recomputed from its first `paths` sampled paths."""
    rows = []
    for record in records:
        samples = first_paths(record["samples"], paths) if paths else record["samples"]
        rows.append(features(record["answer"], [SolverResult.from_dict(s) for s in samples]))
    return rows


def ece(confidences: list[float], correct: list[bool], bins: int = BINS) -> float | None:
    """Expected calibration error: |accuracy - mean confidence| per bin, weighted by the bin's share."""
    if not confidences:
        return None
    total = 0.0
    for low, high, members in _bins(confidences, bins):
        if members:
            accuracy = sum(correct[i] for i in members) / len(members)
            mean = sum(confidences[i] for i in members) / len(members)
            total += len(members) / len(confidences) * abs(accuracy - mean)
    return round(total, 4)


def reliability(confidences: list[float], correct: list[bool], bins: int = BINS) -> list[dict]:
    return [{"low": low, "high": high, "n": len(members),
             "confidence": round(sum(confidences[i] for i in members) / len(members), 4) if members else None,
             "accuracy": round(sum(correct[i] for i in members) / len(members), 4) if members else None}
            for low, high, members in _bins(confidences, bins)]


def _bins(confidences: list[float], bins: int):
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidences) if low <= c < high or (b == bins - 1 and c == 1.0)]
        yield round(low, 2), round(high, 2), members


def auroc(confidences: list[float], correct: list[bool]) -> float | None:
    """The probability that a right answer gets a higher confidence than a wrong one (ties count half)."""
    right = [c for c, ok in zip(confidences, correct) if ok]
    wrong = [c for c, ok in zip(confidences, correct) if not ok]
    if not right or not wrong:
        return None
    order = sorted(range(len(confidences)), key=lambda i: confidences[i])
    ranks = [0.0] * len(confidences)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and confidences[order[j + 1]] == confidences[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, ok in zip(ranks, correct) if ok)
    return round((rank_sum - len(right) * (len(right) + 1) / 2) / (len(right) * len(wrong)), 4)


def coverage_curve(confidences: list[float], correct: list[bool]) -> list[dict]:
    """Answer only the most confident share of problems: accuracy at each coverage."""
    order = sorted(range(len(confidences)), key=lambda i: -confidences[i])
    curve, right = [], 0
    for count, index in enumerate(order, start=1):
        right += correct[index]
        last = count == len(order) or confidences[order[count]] != confidences[index]
        if last:
            curve.append({"coverage": round(count / len(order), 4), "accuracy": round(right / count, 4),
                          "threshold": confidences[index]})
    return curve


def self_consistency(record: dict, paths: int | None = None) -> float | None:
    """The majority answer over the greedy etd answer and the sampled paths (the greedy answer first,
    so it wins ties)."""
    samples = first_paths(record["samples"], paths) if paths else record["samples"]
    candidates = [SolverResult(Thought(record["thought"] or "pot"), record["answer"])] if record["answer"] is not None else []
    candidates += [SolverResult.from_dict(s) for s in samples]
    return select_vote(candidates).answer


def summary(records: list[dict]) -> dict | None:
    """Every calibration figure of a set of etd records with confidence, or None if there are none."""
    rows = rated(records)
    if not rows:
        return None
    confidences = [r["confidence"] for r in rows]
    correct = [bool(r["correct"]) for r in rows]
    verdicts = {}
    for verdict in ("sure", "unsure", "no answer"):
        members = [r for r in rows if r.get("verdict") == verdict]
        verdicts[verdict] = {"n": len(members), "share": round(len(members) / len(rows), 4),
                             "accuracy": round(sum(r["correct"] for r in members) / len(members), 4) if members else None}
    vote_right = sum(answers_match(self_consistency(r), r["gold"]) for r in rows)
    return {"n": len(rows), "accuracy": round(sum(correct) / len(rows), 4),
            "paths": max(len(r["samples"]) for r in rows), "calibrated": all(r.get("calibrated") for r in rows),
            "ece": ece(confidences, correct), "auroc": auroc(confidences, correct),
            "verdicts": verdicts, "reliability": reliability(confidences, correct),
            "coverage": coverage_curve(confidences, correct),
            "self_consistency_accuracy": round(vote_right / len(rows), 4)}


def fit(records: list[dict], *, paths: int, temperature: float, source: dict,
        sure_precision: float = 0.85, no_answer_accuracy: float = 0.05, min_problems: int = 100) -> Calibration:
    """A calibration for `paths` sampled paths from held-out etd records (never a test set's)."""
    rows = rated(records)
    if len(rows) < min_problems:
        raise ValueError(f"{len(rows)} held-out problems with sampled paths; at least {min_problems} are needed to fit")
    values = feature_rows(rows, paths)
    correct = [bool(r["correct"]) for r in rows]
    weights, bias = fit_logistic(values, correct)
    calibration = Calibration(weights=weights, bias=bias, sure=1.0, unsure=0.0, paths=paths, temperature=temperature)
    confidences = [calibration.confidence(v) for v in values]
    calibration.sure, calibration.unsure = choose_thresholds(confidences, correct, sure_precision=sure_precision,
                                                             no_answer_accuracy=no_answer_accuracy)
    sure = [ok for c, ok in zip(confidences, correct) if c >= calibration.sure]
    calibration.fitted_on = dict(source, problems=len(rows), accuracy=round(sum(correct) / len(rows), 4),
                                 auroc=auroc(confidences, correct), ece=ece(confidences, correct),
                                 sure_share=round(len(sure) / len(rows), 4),
                                 sure_accuracy=round(sum(sure) / len(sure), 4) if sure else None,
                                 sure_precision_target=sure_precision, no_answer_accuracy_target=no_answer_accuracy,
                                 features=list(FEATURES))
    return calibration


# --- the refit command: choose K by measurement, fit, store beside the weights ------------------

def latency_per_k(bundle: str, engine: str, quantization: str, questions: list[str], candidates: list[int],
                  temperature: float) -> dict[int, dict]:
    """etd with confidence solved one question at a time for each K: p50/p90 seconds."""
    import statistics
    import time

    from runtime.student import Student

    student = Student.open(bundle, engine=engine, quantization=quantization)
    student.calibration = None  # time the K asked for, whatever is stored
    timings: dict[int, dict] = {}
    try:
        for k in candidates:
            seconds = []
            for question in questions:
                started = time.perf_counter()
                student.solve(question, confidence=True, paths=k, path_temperature=temperature)
                seconds.append(time.perf_counter() - started)
            ordered = sorted(seconds)
            timings[k] = {"p50_s": round(statistics.median(seconds), 3),
                          "p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3)}
    finally:
        student.close()
    return timings


def compare_k(records: list[dict], candidates: list[int], temperature: float, source: dict,
              min_problems: int = 100) -> dict[int, dict]:
    """Per K, from the first K paths of each record: the fitted map's AUROC and ECE, the `sure` share and
    accuracy at its thresholds, and the self-consistency vote's accuracy, against etd's."""
    rows = rated(records)
    table = {}
    for k in candidates:
        calibration = fit(rows, paths=k, temperature=temperature, source=source, min_problems=min_problems)
        votes = sum(answers_match(self_consistency(r, k), r["gold"]) for r in rows)
        table[k] = {"auroc": calibration.fitted_on["auroc"], "ece": calibration.fitted_on["ece"],
                    "sure_share": calibration.fitted_on["sure_share"],
                    "sure_accuracy": calibration.fitted_on["sure_accuracy"],
                    "etd_accuracy": calibration.fitted_on["accuracy"],
                    "self_consistency_accuracy": round(votes / len(rows), 4), "calibration": calibration}
    return table


def choose_k(table: dict[int, dict], latency: dict[int, dict], budget_s: float, tolerance: float = 0.01) -> int:
    """The smallest K within `tolerance` of the best AUROC among those whose p50 meets the budget
    (the smallest K measured, if none does)."""
    within = [k for k in table if latency.get(k, {}).get("p50_s", 0) <= budget_s] or [min(table)]
    best = max(table[k]["auroc"] or 0 for k in within)
    return min(k for k in within if (table[k]["auroc"] or 0) >= best - tolerance)


def rerate_row(row: dict, calibration: Calibration) -> dict:
    """An etd row's confidence and verdict again, from its stored sampled paths, under `calibration`
    (its first calibration.paths paths)."""
    from runtime.confidence import assess

    if row["mode"] != "etd" or not row.get("samples"):
        return row
    samples = first_paths(row["samples"], calibration.paths)
    if len(samples) < calibration.paths:
        raise ValueError(f"{row['dataset']} {row['id']}: {len(samples)} sampled paths stored, the calibration "
                         f"needs {calibration.paths}")
    rated_now = assess(row["answer"], [SolverResult.from_dict(s) for s in samples], calibration)
    return row | {"confidence": rated_now.value, "verdict": rated_now.verdict, "calibrated": True,
                  "features": rated_now.features}


def rerate_run(out, calibration: Calibration) -> int:
    """Re-rate every target's etd records of a finished run folder; returns how many verdicts changed."""
    import json

    from runtime.files import write_text_atomic

    from .suite import RunError, gzipped, load_config, read_jsonl, write_jsonl_gz

    config = load_config(out)
    updates, changed = [], 0
    for target in config.targets:
        path = out / "records" / f"{target['label']}.jsonl"
        if path.exists():
            raise RunError(f"{path} is still being written (the run has not finished): rerate it when it has")
        rows = read_jsonl(path)
        new_rows = [rerate_row(row, calibration) for row in rows]
        changed += sum(old.get("verdict") != new.get("verdict") for old, new in zip(rows, new_rows))
        updates.append((path, new_rows))
    for path, rows in updates:  # every target re-rated before anything is written
        if rows:
            write_jsonl_gz(path, rows)
    return changed
