"""emobot.emotion.user_emotion: what a custom action reads from the slots the sensing action set."""
from __future__ import annotations

import pytest
from rasa_sdk import Tracker

from emobot.emotion import NOT_SENSED, user_emotion
from emotion_sensing.slots import slot_values


def tracker(slots):
    return Tracker("s1", slots, {"text": "hello"}, [], False, None, {}, "action_listen")


ANGRY = {"state": {"label": "angry", "confidence": 0.71, "valence": -0.62, "arousal": 0.8,
                   "probs": {"angry": 0.71, "neutral": 0.2, "sad": 0.09}, "mood_share": 0.25,
                   "contributions": [{"modality": "text", "share": 0.3, "label": "angry"},
                                     {"modality": "face", "share": 0.7, "label": "angry"},
                                     {"modality": "voice", "share": 0.0, "label": "neutral"}]},
         "sensing": "ok"}


def test_a_sensed_turn_reads_as_the_action_set_it():
    emotion = user_emotion(tracker(slot_values(ANGRY)))
    assert (emotion.label, emotion.confidence, emotion.valence, emotion.arousal) == ("angry", 0.71, -0.62, 0.8)
    assert emotion.known and emotion.sensing == "ok" and emotion.mood_share == 0.25
    assert emotion.modalities == ("face", "text")  # largest share first; the voice argued against it
    assert emotion.probs["neutral"] == 0.2
    assert emotion.feels("angry", "disgust", min_confidence=0.5) and not emotion.feels("angry", min_confidence=0.8)
    assert emotion.negative() and not emotion.negative(at_most=-0.7)


def test_unknown_and_unsensed_turns_are_safe_to_test():
    unknown = user_emotion(tracker(slot_values({"state": {"label": "unknown"}, "sensing": "timeout"})))
    assert not unknown.known and unknown.valence is None and unknown.sensing == "timeout"
    assert not unknown.negative() and not unknown.feels("neutral")  # unknown is no evidence of calm either
    never = user_emotion(tracker({}))  # an assistant without the emotion slots
    assert not never.known and never.sensing == NOT_SENSED and never.modalities == ()
    odd = user_emotion(tracker({"user_emotion": "happy", "emotion_valence": "high", "emotion_reading": "?"}))
    assert odd.label == "happy" and odd.valence is None and odd.sensing == "ok"


def test_a_mistyped_label_is_an_error_not_a_silent_false():
    with pytest.raises(ValueError, match="unknown emotion label.*angy.*labels are angry"):
        user_emotion(tracker(slot_values(ANGRY))).feels("angy")
