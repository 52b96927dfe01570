"""Speaker-independent comparison and distinctiveness pruning, on small synthetic data."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.labels import LABELS
from emotion_sensing.speech.model import VoiceModel
from emotion_sensing.speech.prune import prune_layer, prune_thresholds
from emotion_sensing.speech.train import actor_folds, cross_validate, fit, format_table


def synthetic(speakers=12, per_label=6, dims=20, seed=0):
    """Clips whose emotion moves a few features and whose speaker shifts all of them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(len(LABELS), dims))
    vectors, labels, names = [], [], []
    for s in range(speakers):
        offset = rng.normal(scale=4.0, size=dims)
        for i, label in enumerate(LABELS):
            for _ in range(per_label):
                vectors.append(centres[i] + offset + rng.normal(size=dims))
                labels.append(label)
                names.append(f"Actor_{s + 1:02d}")
    return np.array(vectors), np.array(labels), np.array(names)


def test_folds_never_split_a_speaker_and_mix_genders():
    speakers = [f"Actor_{n:02d}" for n in range(1, 19) for _ in range(3)]
    folds = actor_folds(speakers, 6)
    for speaker in set(speakers):
        assert len({f for s, f in zip(speakers, folds) if s == speaker}) == 1
    for fold in range(6):
        numbers = {int(s[-2:]) for s, f in zip(speakers, folds) if f == fold}
        assert len(numbers) == 3 and {n % 2 for n in numbers} == {0, 1}  # odd actors male, even female
    with pytest.raises(ValueError):
        actor_folds(["a", "b"], 6)


def test_cross_validation_by_speaker_beats_chance_and_reports_every_mode():
    vectors, labels, speakers = synthetic()
    result = cross_validate("logreg", vectors, labels, speakers, actor_folds(list(speakers), 4))
    assert result["speaker"]["accuracy"] > 0.8
    assert result["speaker"]["accuracy"] > result["none"]["accuracy"]  # per-speaker standardisation helps
    table = format_table([{
        "classifier": "logreg", "f1": {label: 0.5 for label in LABELS}, "cv_accuracy": 0.5,
        "cv_accuracy_running": 0.4, "cv_accuracy_none": 0.3, "test_accuracy": None}])
    assert "logreg" in table and "—" in table


def test_saved_model_reads_the_same(tmp_path):
    vectors, labels, speakers = synthetic(speakers=4)
    model = fit("svc", vectors, labels, speakers)
    model.save(tmp_path / "m.joblib")
    again = VoiceModel.load(tmp_path / "m.joblib")
    x = vectors[:5]
    np.testing.assert_allclose(again.probabilities(x), model.probabilities(x))
    assert again.probabilities(x).sum(axis=1) == pytest.approx(np.ones(5))
    import joblib

    joblib.dump({"something": "else"}, tmp_path / "other.joblib")
    with pytest.raises(ValueError, match="not a voice emotion model"):
        VoiceModel.load(tmp_path / "other.joblib")


def test_duplicate_and_opposite_units_are_merged_without_changing_the_output():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 5))
    w_in = rng.normal(size=(5, 4))
    w_in[:, 1] = w_in[:, 0]  # unit 1 copies unit 0
    w_in[:, 3] = -w_in[:, 2]  # unit 3 mirrors unit 2
    b_in = np.zeros(4)
    w_out = rng.normal(size=(4, 3))
    hidden = np.tanh(x @ w_in + b_in)
    w_in2, b_in2, w_out2, report = prune_layer(w_in, b_in, w_out, hidden)
    assert (report.hidden_before, report.hidden_after) == (4, 2)
    assert (report.merged_similar, report.merged_opposite) == (1, 1)
    np.testing.assert_allclose(np.tanh(x @ w_in2 + b_in2) @ w_out2, hidden @ w_out, atol=1e-9)


def test_pruned_mlp_trains_and_keeps_fewer_units():
    vectors, labels, speakers = synthetic(speakers=4)
    model = fit("mlp", vectors, labels, speakers, prune_deg=60.0)
    pruned = model.meta["pruned"]
    assert pruned["hidden_before"] == 256 and pruned["hidden_after"] < 256
    assert model.pipeline.named_steps["classifier"].coefs_[0].shape[1] == pruned["hidden_after"]
    probs = model.probabilities(vectors - vectors.mean(axis=0))
    assert probs.shape == (len(labels), len(LABELS))
    from emotion_sensing.speech.train import predict

    assert np.mean(np.array(predict(model, vectors, speakers, "speaker")) == labels) > 0.5
    assert prune_thresholds("15, 30") == [15.0, 30.0]
    with pytest.raises(ValueError):
        prune_thresholds("120")
