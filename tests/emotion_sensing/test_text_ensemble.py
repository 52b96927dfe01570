"""Several seeds of the text recipe read as one model: their logits averaged, one temperature."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.text.encoder import Adapter, EncoderClassifier, Ensemble
from emotion_sensing.text.recognizer import MODEL_FILE, TextRecognizer

TEXTS = ["I'm furious, my order never arrived", "thank you so much!", "order 12345", "I feel so alone"]


@pytest.fixture(scope="module")
def members(models_dir):
    """The shipped adapter and a copy whose head leans towards sad: two members that disagree."""
    shipped = Adapter.load(models_dir / MODEL_FILE)
    arrays = dict(shipped.arrays)
    bias = arrays["head/bias"].copy()
    bias[shipped.labels.index("sad")] += 3.0
    arrays["head/bias"] = bias
    return shipped, Adapter(arrays, dict(shipped.meta))


def test_an_ensemble_reads_the_mean_of_its_members_logits(members, tmp_path):
    shipped, leaning = members
    alone = [EncoderClassifier(member.save(tmp_path / f"m{i}.npz")).logits(TEXTS) for i, member in enumerate(members)]
    assert not np.allclose(alone[0], alone[1]), "the members must disagree for this test to mean anything"
    path = Ensemble.of(members, temperature=1.3).save(tmp_path / "ensemble.npz")
    both = EncoderClassifier(path)
    assert both.size == 2 and both.temperature == 1.3 and both.labels == shipped.labels
    np.testing.assert_allclose(both.logits(TEXTS), (alone[0] + alone[1]) / 2, atol=1e-5)
    probs = both.probabilities(TEXTS[3])
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)

    reading = TextRecognizer(path).read(TEXTS[0])
    assert reading.extras["classifier"] and sum(reading.probs) == pytest.approx(1.0, abs=1e-5)


def test_an_ensemble_of_one_is_a_plain_adapter_file(members, tmp_path):
    """So a model saved by the ensemble code loads in a release that knows only one adapter."""
    path = Ensemble.of(members[:1], temperature=0.9, seeds=[0]).save(tmp_path / "one.npz")
    plain = Adapter.load(path)
    assert "members" not in plain.meta and plain.temperature == 0.9 and plain.meta["seeds"] == [0]
    assert set(plain.arrays) == set(members[0].arrays)
    assert EncoderClassifier(path).size == 1


def test_an_ensemble_file_keeps_each_member_apart(members, tmp_path):
    path = Ensemble.of(members, temperature=1.1).save(tmp_path / "two.npz")
    loaded = Ensemble.load(path)
    assert len(loaded.members) == 2 and loaded.temperature == 1.1 and "members" not in loaded.meta
    for original, back in zip(members, loaded.members):
        assert set(back.arrays) == set(original.arrays)
        np.testing.assert_allclose(back.arrays["head/bias"], original.arrays["head/bias"])


def test_adapters_with_different_labels_are_refused(members):
    shipped = members[0]
    other = Adapter(shipped.arrays, dict(shipped.meta, labels=list(reversed(shipped.labels))))
    with pytest.raises(ValueError, match="labels"):
        Ensemble.of([shipped, other])
    with pytest.raises(ValueError, match="at least one"):
        Ensemble.of([])
