"""How sure the student is: sampled reasoning paths, their answers, and a calibrated confidence.

Thought agreement alone is no signal for a student whose PoT and EoT are one computation written
twice. So, besides the greedy `etd` answer, the student writes K sampled paths (PoT and EoT, at a
temperature), the solver runs each, and the answers form a distribution. Its features:

- `agree`: the share of the K paths that reach the etd answer (failures count as disagreeing);
- `valid`: the share of paths that give a plausible answer at all (a count or an amount);
- `both`:  1 when a sampled PoT *and* a sampled EoT reach the etd answer;
- `plausible`: 1 when the etd answer is a non-negative whole number (or settled by agreement).

A logistic map, fitted on held-out problems by `fit` (never on a test set) and stored as JSON beside
the weights (`confidence.json`), turns them into a confidence in [0, 1]; two thresholds chosen on the
same held-out data turn that into a verdict: `sure`, `unsure` or `no answer`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .solver import SolverResult, answers_match
from .solver.select import plausible

CALIBRATION_FILE = "confidence.json"
FEATURES = ("agree", "valid", "both", "plausible")
DEFAULT_PATHS, DEFAULT_TEMPERATURE = 8, 0.7
# Sampled paths stop here: the paths of a batch finish together, so one rambling path sets the wait.
# The shipped student's correct greedy PoT and EoT on GSM8K's test set are at most 80 and 94 tokens
# at the 99th percentile (median 40); a path still going at 128 is almost surely lost.
PATH_MAX_TOKENS = 128


@dataclass
class Calibration:
    """The stored map from features to confidence, and the verdict thresholds."""

    weights: list[float]              # one per FEATURES entry
    bias: float
    sure: float                       # confidence >= sure: "sure"
    unsure: float                     # confidence >= unsure: "unsure"; below: "no answer"
    paths: int = DEFAULT_PATHS
    temperature: float = DEFAULT_TEMPERATURE
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    fitted_on: dict = field(default_factory=dict)   # what it was fitted on, and how well it did there
    fitted_for: str = ""              # the source_sha256 of the weights it belongs to (a bundle's manifest)
    version: int = 1

    def confidence(self, values: dict[str, float]) -> float:
        z = self.bias + sum(w * values[name] for w, name in zip(self.weights, self.features))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def verdict(self, confidence: float, answered: bool = True) -> str:
        if not answered or confidence < self.unsure:
            return "no answer"
        return "sure" if confidence >= self.sure else "unsure"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Calibration":
        data = json.loads(text)
        if data.get("version") != 1 or list(data.get("features", [])) != list(FEATURES):
            raise ValueError("an unknown kind of calibration (version or features differ)")
        return cls(**data)


# Before a student is calibrated: confidence is the agreement share itself, with fixed thresholds.
UNCALIBRATED = Calibration(weights=[0.0] * len(FEATURES), bias=0.0, sure=0.75, unsure=0.25,
                           fitted_on={"note": "uncalibrated: confidence is the share of sampled paths that agree"})


@dataclass
class Confidence:
    value: float
    verdict: str
    calibrated: bool
    paths: int                        # sampled paths drawn
    features: dict[str, float]
    distribution: list[dict]          # [{answer, count, thoughts}] over the sampled paths, most frequent first


def features(answer: float | None, sampled: list[SolverResult]) -> dict[str, float]:
    """The features of an etd answer against its sampled paths (pure: no model, no I/O)."""
    if answer is None or not sampled:
        return {"agree": 0.0, "valid": 0.0, "both": 0.0, "plausible": 0.0}
    agreeing = [r for r in sampled if r.ok and answers_match(r.answer, answer)]
    return {
        "agree": len(agreeing) / len(sampled),
        "valid": sum(1 for r in sampled if r.ok and plausible(r.answer)) / len(sampled),
        "both": float(len({r.thought for r in agreeing}) >= 2),
        "plausible": float(plausible(answer)),
    }


def distribution(sampled: list[SolverResult]) -> list[dict]:
    """Distinct answers of the sampled paths with how many reached each, most frequent first."""
    groups: list[dict] = []
    for result in sampled:
        if not result.ok:
            continue
        for group in groups:
            if answers_match(group["answer"], result.answer):
                group["count"] += 1
                group["thoughts"][result.thought.value] += 1
                break
        else:
            groups.append({"answer": result.answer, "count": 1, "thoughts": Counter({result.thought.value: 1})})
    groups.sort(key=lambda g: -g["count"])
    return [{"answer": g["answer"], "count": g["count"], "thoughts": dict(g["thoughts"])} for g in groups]


def assess(answer: float | None, sampled: list[SolverResult], calibration: Calibration | None) -> Confidence:
    values = features(answer, sampled)
    if calibration is None:
        value = values["agree"]
        verdict = UNCALIBRATED.verdict(value, answer is not None)
    else:
        value = calibration.confidence(values) if answer is not None else 0.0
        verdict = calibration.verdict(value, answer is not None)
    return Confidence(round(value, 4), verdict, calibration is not None, len(sampled), values, distribution(sampled))


# --- where a student's calibration lives --------------------------------------------------------

def load_calibration(bundle: Path, manifest, shipped: Path | None = None) -> Calibration | None:
    """The bundle's own `confidence.json`; else, for a bundle built from the shipped student's adapter,
    the one shipped beside that adapter (it travels with the weights); else None. A map fitted for
    other weights (a new student shipped, the map not refitted) is not used: a stale map would make
    the confidence a lie."""
    candidates = [Path(bundle) / CALIBRATION_FILE]
    if shipped is not None and manifest.source.get("trained") and manifest.source.get("source") == str(shipped):
        candidates.append(shipped / CALIBRATION_FILE)
    for path in candidates:
        if path.is_file():
            try:
                calibration = Calibration.from_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, TypeError, KeyError):
                return None
            if calibration.fitted_for and calibration.fitted_for != manifest.source.get("source_sha256"):
                return None
            return calibration
    return None


# --- fitting (numpy; the refit command and the benchmarks use it) ------------------------------

def fit_logistic(rows: list[dict[str, float]], correct: list[bool], *, l2: float = 1e-2,
                 iterations: int = 50) -> tuple[list[float], float]:
    """Weights and bias of a logistic regression by Newton's method, lightly L2-regularised, with every
    weight non-negative: more agreement, more valid paths, both thoughts agreeing, a plausible answer
    must never lower the confidence. (Unconstrained, the correlated features traded signs: two PoT
    paths agreeing came out surer than a PoT and an EoT path agreeing, which made the issue's seashell
    answer, 16 with 2 of 4 paths, `sure`.) A feature whose weight goes negative is dropped and the rest
    refitted, until none is."""
    import numpy as np

    x_all = np.array([[row[name] for name in FEATURES] for row in rows], dtype=np.float64)
    y = np.array(correct, dtype=np.float64)
    active = list(range(len(FEATURES)))
    while True:
        x = np.hstack([x_all[:, active], np.ones((len(rows), 1))])
        w = np.zeros(x.shape[1])
        penalty = np.eye(x.shape[1]) * l2
        penalty[-1, -1] = 0.0  # the bias is not shrunk
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -50, 50)))
            gradient = x.T @ (p - y) + penalty @ w
            hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + np.eye(x.shape[1]) * 1e-9
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        negative = [i for i, weight in zip(active, w[:-1]) if weight < 0]
        if not negative:
            break
        worst = min(negative, key=lambda i: w[active.index(i)])
        active.remove(worst)
    weights = [0.0] * len(FEATURES)
    for i, weight in zip(active, w[:-1]):
        weights[i] = float(weight)
    return weights, float(w[-1])


def choose_thresholds(confidences: list[float], correct: list[bool], *, sure_precision: float = 0.85,
                      no_answer_accuracy: float = 0.05, min_sure: int = 10) -> tuple[float, float]:
    """`sure`: the lowest threshold whose answers at or above it are right at least `sure_precision`
    of the time (at least `min_sure` of them); `unsure`: the highest threshold whose answers below it
    are right at most `no_answer_accuracy` of the time. Both from held-out data."""
    pairs = sorted(zip(confidences, correct), key=lambda p: -p[0])
    sure = 1.01
    right = 0
    for count, (value, ok) in enumerate(pairs, start=1):
        right += ok
        next_value = pairs[count][0] if count < len(pairs) else None
        if next_value == value:
            continue  # thresholds sit between distinct values
        if count >= min_sure and right / count >= sure_precision:
            sure = value
    ascending = pairs[::-1]
    unsure, right = 0.0, 0
    for count, (value, ok) in enumerate(ascending, start=1):
        right += ok
        next_value = ascending[count][0] if count < len(ascending) else None
        if next_value == value:
            continue
        if right / count <= no_answer_accuracy and next_value is not None:
            unsure = (value + next_value) / 2
    return round(sure, 4), round(min(unsure, sure), 4)
