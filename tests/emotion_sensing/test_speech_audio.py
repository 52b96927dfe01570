"""Decoding uploaded audio in memory, with a clear reason for what cannot be read."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.speech.audio import AudioError, decode, prepare
from tests.emotion_sensing.speech_audio import wav_bytes

TONE = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_files_decode_from_memory(fmt):
    subtype = "VORBIS" if fmt == "OGG" else "PCM_16"
    samples, rate = decode(wav_bytes(TONE, 8000, fmt, subtype))
    assert rate == 8000 and samples.shape[0] == TONE.size
    assert prepare(samples, rate).size == 2 * TONE.size  # at 16 kHz


def test_raw_pcm16():
    pcm = (TONE * 32767).astype("<i2").tobytes()
    samples, rate = decode(pcm, pcm_sample_rate=8000)
    assert rate == 8000 and np.allclose(samples, TONE, atol=1e-3)
    with pytest.raises(AudioError) as error:
        decode(pcm[:-1], pcm_sample_rate=8000)
    assert error.value.code == "truncated_audio"


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "empty_audio"),
        (b'{"text": "hello"}', "unsupported_audio_format"),
        (b"ID3\x03\x00" + bytes(100), "unsupported_audio_format"),
        (wav_bytes(TONE, 8000)[:30], "unreadable_audio"),
        (wav_bytes(TONE, 8000, "FLAC")[:20], "unreadable_audio"),
    ],
)
def test_unreadable_audio_says_why(data, code):
    with pytest.raises(AudioError) as error:
        decode(data)
    assert error.value.code == code
    assert error.value.message
