import pytest

from emotion_sensing.labels import DAIR_EMOTION, LABELS, RAVDESS, arousal_of, canonical, valence_of


def test_labels_follow_fer2013_order():
    assert LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_source_tables_map_onto_canonical_labels():
    assert DAIR_EMOTION["love"] == "happy" and DAIR_EMOTION["joy"] == "happy"
    assert RAVDESS["calm"] == "neutral"
    assert canonical("Sadness") == "sad"
    assert canonical("contempt") is None
    with pytest.raises(KeyError):
        canonical("bewildered")


def test_valence_and_arousal_summarise_a_distribution():
    happy = [0, 0, 0, 1, 0, 0, 0]
    sad = [0, 0, 0, 0, 1, 0, 0]
    assert valence_of(happy) > 0.5 > -0.5 > valence_of(sad)
    assert arousal_of([1, 0, 0, 0, 0, 0, 0]) > arousal_of(sad)
