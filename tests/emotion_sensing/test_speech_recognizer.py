"""The voice recognizer with the shipped model: readings, no-speech readings, per-speaker state."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.labels import LABELS
from emotion_sensing.speech.recognizer import NO_SPEECH, VoiceRecognizer
from tests.emotion_sensing.speech_audio import VOICE_MODEL, needs_espeak, needs_voice_model, silence, spoken

pytestmark = needs_voice_model


@pytest.fixture(scope="module")
def recognizer():
    return VoiceRecognizer(VOICE_MODEL)


@needs_espeak
def test_speech_gives_a_voice_reading(recognizer, tmp_path):
    reading = recognizer.read(spoken("I am really upset that nobody called me back", tmp_path))
    assert reading.modality == "voice"
    assert reading.label in LABELS
    assert sum(reading.probs) == pytest.approx(1.0)
    assert 0 < reading.confidence <= 1
    assert reading.extras["speech"] is True
    assert 1.0 < reading.extras["voiced_s"] <= reading.extras["duration_s"]


def test_silence_gives_a_no_speech_reading_that_fusion_ignores(recognizer):
    reading = recognizer.read(silence())
    assert reading.extras["speech"] is False
    assert reading.extras["status"] == NO_SPEECH
    assert reading.confidence == 0.0
    speaker = recognizer.new_speaker()
    recognizer.read(silence(), speaker=speaker)
    assert speaker.count == 0  # silence teaches nothing about the speaker


@needs_espeak
def test_a_session_learns_its_speaker(recognizer, tmp_path):
    speaker = recognizer.new_speaker()
    sentences = ["Where is my order", "I have waited for two weeks", "Thank you so much for your help"]
    readings = [recognizer.read(spoken(s, tmp_path), speaker=speaker) for s in sentences]
    assert speaker.count == 3
    assert [r.extras["speaker_utterances"] for r in readings] == [1, 2, 3]
    # Once the speaker is known, the same audio is read against their own statistics.
    again = recognizer.read(spoken(sentences[0], tmp_path), speaker=speaker)
    alone = recognizer.read(spoken(sentences[0], tmp_path))
    assert not np.allclose(again.probs, alone.probs)


def test_any_rate_and_channels(recognizer):
    rate = 44_100
    t = np.arange(2 * rate) / rate
    voice_like = 0.2 * np.sin(2 * np.pi * 150 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    stereo = (np.stack([voice_like, voice_like], axis=1) * 32767).astype(np.int16)
    assert recognizer.read(stereo, rate).modality == "voice"
