"""Confidence from sampled paths: features, the answer distribution, the stored map, its fit."""

import json
import random

import pytest

from runtime.confidence import (FEATURES, UNCALIBRATED, Calibration, assess, choose_thresholds, distribution,
                                features, fit_logistic, load_calibration)
from runtime.solver import SolverResult
from runtime.thoughts import Thought

POT, EOT = Thought.POT, Thought.EOT


def paths(*answers):
    """Sampled paths: (thought, answer or None) pairs."""
    return [SolverResult(thought, answer, None if answer is not None else "failed",
                         None if answer is not None else "runtime") for thought, answer in answers]


def test_features_count_agreement_validity_and_both_thoughts():
    sampled = paths((POT, 43.0), (POT, 16.0), (EOT, 43.0), (EOT, None))
    assert features(43.0, sampled) == {"agree": 0.5, "valid": 0.75, "both": 1.0, "plausible": 1.0}
    assert features(16.0, sampled) == {"agree": 0.25, "valid": 0.75, "both": 0.0, "plausible": 1.0}
    assert features(-3.0, paths((POT, -3.0), (EOT, 2.5)))["plausible"] == 0.0
    assert features(None, sampled) == {"agree": 0.0, "valid": 0.0, "both": 0.0, "plausible": 0.0}


def test_distribution_groups_equal_answers_most_frequent_first():
    sampled = paths((POT, 16.0), (EOT, 43.0), (POT, 43.0000001), (EOT, None))
    assert distribution(sampled) == [{"answer": 43.0, "count": 2, "thoughts": {"eot": 1, "pot": 1}},
                                     {"answer": 16.0, "count": 1, "thoughts": {"pot": 1}}]


def test_verdicts_from_the_stored_thresholds():
    mapping = Calibration(weights=[4.0, 0.0, 0.0, 0.0], bias=-2.0, sure=0.8, unsure=0.2)
    everyone = assess(43.0, paths((POT, 43.0), (EOT, 43.0)), mapping)
    assert everyone.verdict == "sure" and everyone.calibrated and everyone.value == pytest.approx(0.8808, abs=1e-4)
    half = assess(43.0, paths((POT, 43.0), (EOT, 1.0)), mapping)
    assert half.verdict == "unsure" and half.value == pytest.approx(0.5)
    nobody = assess(43.0, paths((POT, 2.0), (EOT, 1.0)), mapping)
    assert nobody.verdict == "no answer"
    assert assess(None, paths((POT, 2.0)), mapping).verdict == "no answer"
    # Uncalibrated: the agreement share itself, with fixed thresholds, and it says so.
    plain = assess(43.0, paths((POT, 43.0), (EOT, 43.0), (POT, 43.0), (EOT, 1.0)), None)
    assert plain.value == 0.75 and plain.verdict == "sure" and not plain.calibrated
    assert UNCALIBRATED.verdict(0.2) == "no answer"


def test_a_calibration_round_trips_and_refuses_what_it_does_not_know():
    mapping = Calibration(weights=[1.0, 2.0, 3.0, 4.0], bias=-1.0, sure=0.7, unsure=0.1, paths=4, temperature=0.7,
                          fitted_on={"problems": 400})
    assert Calibration.from_json(mapping.to_json()) == mapping
    data = json.loads(mapping.to_json())
    with pytest.raises(ValueError):
        Calibration.from_json(json.dumps(data | {"version": 2}))
    with pytest.raises(ValueError):
        Calibration.from_json(json.dumps(data | {"features": ["agree"]}))


def test_the_calibration_is_found_in_the_bundle_or_beside_the_shipped_adapter(tmp_path):
    class Manifest:
        source = {"trained": True, "source": str(tmp_path / "shipped"), "source_sha256": "abc"}

    mapping = Calibration(weights=[1.0] * len(FEATURES), bias=0.0, sure=0.9, unsure=0.1)
    (tmp_path / "shipped").mkdir()
    (tmp_path / "bundle").mkdir()
    assert load_calibration(tmp_path / "bundle", Manifest(), tmp_path / "shipped") is None
    (tmp_path / "shipped" / "confidence.json").write_text(mapping.to_json())
    assert load_calibration(tmp_path / "bundle", Manifest(), tmp_path / "shipped") == mapping
    assert load_calibration(tmp_path / "bundle", Manifest(), tmp_path / "elsewhere") is None  # another adapter
    stale = Calibration(weights=[1.0] * len(FEATURES), bias=0.0, sure=0.9, unsure=0.1, fitted_for="other weights")
    (tmp_path / "shipped" / "confidence.json").write_text(stale.to_json())
    assert load_calibration(tmp_path / "bundle", Manifest(), tmp_path / "shipped") is None  # fitted for others
    mapping.fitted_for = "abc"
    (tmp_path / "shipped" / "confidence.json").write_text(mapping.to_json())
    assert load_calibration(tmp_path / "bundle", Manifest(), tmp_path / "shipped") == mapping
    own = Calibration(weights=[0.0] * len(FEATURES), bias=1.0, sure=0.5, unsure=0.2)
    (tmp_path / "bundle" / "confidence.json").write_text(own.to_json())
    assert load_calibration(tmp_path / "bundle", Manifest(), tmp_path / "shipped") == own


def test_the_fit_learns_that_agreement_means_right_and_the_thresholds_meet_their_targets():
    rng = random.Random(0)
    rows, correct = [], []
    for _ in range(600):
        agree = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0])
        rows.append({"agree": agree, "valid": rng.random(), "both": float(agree > 0.4), "plausible": 1.0})
        correct.append(rng.random() < 0.05 + 0.9 * agree ** 2)
    weights, bias = fit_logistic(rows, correct)
    assert weights[0] > 2 and abs(weights[1]) < 1.0  # agreement carries it; noise does not
    assert min(weights) >= 0  # no feature may lower the confidence
    # A feature that lowers the odds of being right is dropped, not given a negative weight.
    anti_rows, anti_correct = [], []
    for _ in range(600):
        agree, valid = rng.choice([0.0, 0.5, 1.0]), rng.random()
        anti_rows.append({"agree": agree, "valid": valid, "both": 0.0, "plausible": 1.0})
        anti_correct.append(rng.random() < 0.35 + 0.5 * agree - 0.3 * valid)
    anti_weights, _ = fit_logistic(anti_rows, anti_correct)
    assert anti_weights[1] == 0.0 and anti_weights[0] > 2
    mapping = Calibration(weights=weights, bias=bias, sure=1.0, unsure=0.0)
    confidences = [mapping.confidence(row) for row in rows]
    sure, unsure = choose_thresholds(confidences, correct, sure_precision=0.85, no_answer_accuracy=0.1)
    above = [ok for c, ok in zip(confidences, correct) if c >= sure]
    below = [ok for c, ok in zip(confidences, correct) if c < unsure]
    assert above and sum(above) / len(above) >= 0.85
    assert below and sum(below) / len(below) <= 0.1
    assert unsure <= sure
