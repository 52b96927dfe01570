"""Temperature scaling and ECE: the shared calibration every recognizer uses."""
from __future__ import annotations

import numpy as np

from emotion_sensing.calibration import calibration_report, expected_calibration_error, fit_temperature, softmax


def _sample(n: int, temperature: float, seed: int = 0):
    """Labels drawn from softmax(logits / temperature): logits whose right temperature is known."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, 7))
    probs = softmax(logits, temperature)
    labels = np.array([rng.choice(7, p=p) for p in probs])
    return logits, labels


def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with():
    logits, labels = _sample(20_000, 2.5)
    assert abs(fit_temperature(logits, labels) - 2.5) < 0.15


def test_an_overconfident_model_has_a_high_ece_and_scaling_removes_it():
    logits, labels = _sample(20_000, 3.0, seed=1)
    report = calibration_report(logits, labels, fit_temperature(logits, labels))
    assert report["ece_before"] > 0.15
    assert report["ece_after"] < 0.02
    assert report["nll_after"] < report["nll_before"]


def test_ece_of_a_perfectly_calibrated_sample_is_small_and_of_a_confident_liar_large():
    logits, labels = _sample(20_000, 1.0, seed=2)
    assert expected_calibration_error(softmax(logits), labels) < 0.02
    wrong = np.zeros((100, 7))
    wrong[:, 0] = 1.0
    assert expected_calibration_error(wrong, np.ones(100, int)) == 1.0
    assert expected_calibration_error(np.zeros((0, 7)), []) == 0.0
