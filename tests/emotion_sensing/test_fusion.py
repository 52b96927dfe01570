import pytest

from emotion_sensing.fusion import FusionConfig, fuse
from emotion_sensing.labels import LABELS
from emotion_sensing.reading import Reading


def one_hot(label, strength=0.9):
    rest = (1 - strength) / (len(LABELS) - 1)
    return tuple(strength if name == label else rest for name in LABELS)


def test_no_readings_is_unknown():
    state = fuse([], now=100.0)
    assert state.label == "unknown" and not state.known and state.confidence == 0


def test_single_modality_passes_through_with_full_share():
    state = fuse([Reading("text", one_hot("angry"), 0.9, timestamp=100.0)], now=100.0)
    assert state.label == "angry"
    assert state.valence < 0
    [only] = state.contributions
    assert only.modality == "text" and only.share == pytest.approx(1.0)


def test_many_face_frames_do_not_outvote_text_by_number():
    frames = [Reading("face", one_hot("happy", 0.6), 0.6, timestamp=100.0 - i * 0.1) for i in range(30)]
    text = Reading("text", one_hot("angry", 0.95), 0.95, timestamp=100.0)
    state = fuse(frames + [text], now=100.0)
    assert state.label == "angry"
    shares = {c.modality: c.share for c in state.contributions}
    assert shares["text"] > shares["face"] > 0
    assert {c.modality: c.n_readings for c in state.contributions}["face"] == 30


def test_old_readings_decay_and_fall_out_of_the_window():
    config = FusionConfig(window_s=20.0)
    stale = Reading("face", one_hot("sad"), 0.9, timestamp=100.0)
    fresh = Reading("face", one_hot("happy"), 0.9, timestamp=109.0)
    assert fuse([stale, fresh], now=110.0, config=config).label == "happy"
    assert fuse([stale], now=125.0, config=config).label == "unknown"


def test_only_the_latest_text_turn_counts():
    earlier = Reading("text", one_hot("angry"), 0.9, timestamp=100.0)
    latest = Reading("text", one_hot("neutral", 0.6), 0.6, timestamp=104.0)
    state = fuse([earlier, latest], now=104.0)
    assert state.label == "neutral"
    assert state.contributions[0].n_readings == 1


def test_reliability_weights_modalities():
    face = Reading("face", one_hot("happy"), 0.9, timestamp=100.0)
    voice = Reading("voice", one_hot("sad"), 0.9, timestamp=100.0)
    trust_face = FusionConfig(reliability={"text": 1.0, "face": 1.0, "voice": 0.2})
    trust_voice = FusionConfig(reliability={"text": 1.0, "face": 0.2, "voice": 1.0})
    assert fuse([face, voice], now=100.0, config=trust_face).label == "happy"
    assert fuse([face, voice], now=100.0, config=trust_voice).label == "sad"


def test_disagreement_lowers_confidence():
    agree = [Reading("text", one_hot("angry"), 0.9, 100.0), Reading("face", one_hot("angry"), 0.9, 100.0)]
    disagree = [Reading("text", one_hot("angry"), 0.9, 100.0), Reading("face", one_hot("happy"), 0.9, 100.0)]
    assert fuse(agree, now=100.0).confidence > fuse(disagree, now=100.0).confidence


def test_state_serialises_with_contributions():
    state = fuse([Reading("text", one_hot("sad"), 0.8, timestamp=1.0)], now=1.0).to_dict()
    assert state["label"] == "sad"
    assert set(state["probs"]) == set(LABELS)
    assert state["contributions"][0]["modality"] == "text"


def test_one_fresh_reading_keeps_its_own_confidence_and_fades_with_age():
    reading = Reading("face", one_hot("happy", 0.6), 0.6, timestamp=100.0)
    assert fuse([reading], now=100.0).confidence == pytest.approx(0.6)
    assert fuse([reading], now=103.0).confidence == pytest.approx(0.3, abs=0.01)
