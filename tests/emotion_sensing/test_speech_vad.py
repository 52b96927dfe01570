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


class _PerFrame(EnergySegmenter):
    """The segmenter as it was written first, one frame at a time: the reference for push."""

    def push(self, samples):
        from emotion_sensing.speech.vad import _levels_db

        data = np.concatenate([self._partial, np.asarray(samples, dtype=np.float32)])
        whole = data.size // self.frame * self.frame
        self._partial = data[whole:].copy()
        done = []
        if not whole:
            return done
        frames = data[:whole].reshape(-1, self.frame)
        for frame, level in zip(frames, _levels_db(frames).tolist()):
            utterance = self._frame(frame, level)
            if utterance is not None:
                done.append(utterance)
        return done

    def _frame(self, frame, level):
        from emotion_sensing.speech import vad

        self._frames_seen += 1
        loud = level > max(self.noise_db + vad.START_MARGIN_DB, vad.ABSOLUTE_FLOOR_DB)
        if not self._speech:
            self._pre_roll.append(frame)
            self._loud_run = self._loud_run + 1 if loud else 0
            if not loud:
                rate = 0.3 if level < self.noise_db else 0.02
                self.noise_db += rate * (level - self.noise_db)
            if self._loud_run >= vad.START_FRAMES:
                self._speech = list(self._pre_roll)
                self._start_frame = self._frames_seen - len(self._pre_roll)
                self._pre_roll.clear()
                self._voiced = self._loud_run
                self._quiet_run = 0
            return None
        self._speech.append(frame)
        if level > max(self.noise_db + vad.STOP_MARGIN_DB, vad.ABSOLUTE_FLOOR_DB):
            self._voiced += 1
            self._quiet_run = 0
        else:
            self._quiet_run += 1
        if self._quiet_run >= self.hangover or len(self._speech) >= self.max_frames:
            return self._finish()
        return None


@pytest.mark.parametrize("seed", range(6))
def test_runs_of_frames_cut_exactly_as_one_frame_at_a_time(seed):
    """push walks the frames in runs; the utterances (samples, start, voiced time), the noise
    estimate and what is held are those of the frame-by-frame segmenter, for any chunking."""
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(40):  # bursts of tone and noise at random levels, silences, clicks
        seconds = rng.uniform(0.01, 1.5 if rng.random() < 0.9 else 16.0)
        n = int(seconds * SAMPLE_RATE)
        level = 10 ** rng.uniform(-4, -0.5)
        kind = rng.integers(3)
        if kind == 0:
            piece = level * np.sin(2 * np.pi * rng.uniform(100, 800) * np.arange(n) / SAMPLE_RATE)
        elif kind == 1:
            piece = level * rng.standard_normal(n)
        else:
            piece = np.zeros(n)
        pieces.append(piece.astype(np.float32))
    audio = np.concatenate(pieces)
    fast, slow = EnergySegmenter(), _PerFrame()
    got, want = [], []
    at = 0
    while at < audio.size:
        size = int(rng.integers(1, 12_000))
        got += fast.push(audio[at:at + size])
        want += slow.push(audio[at:at + size])
        assert fast.noise_db == slow.noise_db and fast.in_speech == slow.in_speech
        assert fast.buffered_s == slow.buffered_s
        at += size
    got.append(fast.flush())
    want.append(slow.flush())
    assert len(want) > 3, "the signal should hold several utterances"
    assert len(got) == len(want)
    for a, b in zip(got, want):
        if b is None:
            assert a is None
            continue
        assert (a.start_s, a.voiced_s) == (b.start_s, b.voiced_s)
        assert np.array_equal(a.samples, b.samples)
