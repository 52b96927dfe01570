"""Energy-based voice-activity detection cuts a stream into utterances, with bounded memory."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.speech.audio import SAMPLE_RATE
from emotion_sensing.speech.vad import EnergySegmenter, segment
from tests.emotion_sensing.speech_audio import needs_espeak, spoken

rng = np.random.default_rng(0)


def room(seconds: float) -> np.ndarray:
    return (0.002 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


@needs_espeak
def test_two_sentences_with_a_pause_are_two_utterances(tmp_path):
    first = spoken("Hello, I need help with my order", tmp_path)
    second = spoken("This is taking far too long", tmp_path)
    stream = np.concatenate([room(1.0), first, room(1.5), second, room(1.0)])
    utterances = segment(stream)
    assert len(utterances) == 2
    for utterance, sentence in zip(utterances, (first, second)):
        assert abs(utterance.duration_s - sentence.size / SAMPLE_RATE) < 0.8
    assert utterances[0].start_s < utterances[1].start_s


def test_background_noise_alone_is_no_utterance():
    assert segment(room(5.0)) == []
    assert segment(np.zeros(3 * SAMPLE_RATE, dtype=np.float32)) == []


def test_endless_sound_is_cut_and_memory_stays_bounded():
    segmenter = EnergySegmenter(max_utterance_s=5.0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    found = []
    for _ in range(22):  # 22 s without a pause, in 1 s chunks
        found += segmenter.push(tone)
        assert segmenter.buffered_s <= 5.5
    assert len(found) == 4
    assert all(u.duration_s == pytest.approx(5.0, abs=0.1) for u in found)


@pytest.mark.parametrize("chunk", [1, 37, 320, 16_000])
def test_chunk_size_does_not_matter(chunk):
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    burst = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    stream = np.concatenate([room(0.5), burst, room(1.0)])
    segmenter = EnergySegmenter()
    found = []
    for start in range(0, stream.size, chunk):
        found += segmenter.push(stream[start : start + chunk])
    assert len(found) == 1
    assert found[0].duration_s == pytest.approx(1.0 + 0.2 + 0.1, abs=0.15)  # with pre-roll and a short tail
