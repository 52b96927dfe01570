"""Energy-based voice-activity detection: a stream of samples cut into utterances.

The level of each 20 ms frame is compared with a running estimate of the background noise:
speech starts when several frames in a row stand :data:`START_MARGIN_DB` above it (and above
an absolute floor), and ends after :data:`HANGOVER_S` of frames back near it. A little audio
before the start is kept so the first syllable is not clipped. Every buffer is bounded: an
utterance longer than ``max_utterance_s`` is cut there, and nothing else is kept but the
pre-roll and one partial frame.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Optional, Tuple

import numpy as np

from emotion_sensing.speech.audio import SAMPLE_RATE

FRAME_S = 0.02
START_MARGIN_DB = 10.0
STOP_MARGIN_DB = 6.0
ABSOLUTE_FLOOR_DB = -55.0
START_FRAMES = 3
HANGOVER_S = 0.6
PRE_ROLL_S = 0.2
MIN_VOICED_S = 0.25
MAX_UTTERANCE_S = 15.0


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech: samples at 16 kHz and where it started in the stream."""

    samples: np.ndarray
    start_s: float
    voiced_s: float

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE


class EnergySegmenter:
    """Push 16 kHz mono float chunks of any size; get back the utterances they complete."""

    def __init__(self, max_utterance_s: float = MAX_UTTERANCE_S, noise_db: float = -60.0) -> None:
        self.frame = int(SAMPLE_RATE * FRAME_S)
        self.max_frames = int(max_utterance_s / FRAME_S)
        self.hangover = int(HANGOVER_S / FRAME_S)
        self.noise_db = noise_db
        self._partial = np.zeros(0, dtype=np.float32)
        self._pre_roll: Deque[np.ndarray] = deque(maxlen=int(PRE_ROLL_S / FRAME_S))
        self._speech: List[np.ndarray] = []
        self._loud_run = 0
        self._quiet_run = 0
        self._voiced = 0
        self._frames_seen = 0
        self._start_frame = 0

    @property
    def in_speech(self) -> bool:
        return bool(self._speech)

    @property
    def buffered_s(self) -> float:
        """Seconds of audio held right now (bounded by the longest utterance plus pre-roll)."""
        held = sum(f.size for f in self._speech) + sum(f.size for f in self._pre_roll) + self._partial.size
        return held / SAMPLE_RATE

    def push(self, samples: np.ndarray) -> List[Utterance]:
        """Feed samples; returns the utterances that ended within them."""
        data = np.concatenate([self._partial, np.asarray(samples, dtype=np.float32)])
        whole = data.size // self.frame * self.frame
        self._partial = data[whole:].copy()
        done: List[Utterance] = []
        if not whole:
            return done
        frames = data[:whole].reshape(-1, self.frame)
        # Every frame's level in one call, then the frames in runs (background until speech
        # starts, speech until it ends), not one method call per frame: the stream pushes four
        # chunks a second per session, and at 100 streaming sessions this loop was the largest
        # part of the service's event loop (issue 21).
        levels = _levels_db(frames).tolist()
        at = 0
        while at < len(levels):
            if self._speech:
                at, utterance = self._speech_run(frames, levels, at)
                if utterance is not None:
                    done.append(utterance)
            else:
                at = self._background_run(frames, levels, at)
        return done

    def flush(self) -> Optional[Utterance]:
        """End of stream: the utterance in progress, if it holds enough speech."""
        utterance = self._finish() if self._speech else None
        self._partial = np.zeros(0, dtype=np.float32)
        return utterance

    def _background_run(self, frames: np.ndarray, levels: List[float], at: int) -> int:
        """Frames from ``at`` outside speech, until speech starts (it then holds the pre-roll) or
        they run out; returns the index of the next frame."""
        noise, loud_run = self.noise_db, self._loud_run
        end = len(levels)
        started = False
        for index in range(at, end):
            level = levels[index]
            loud = level > max(noise + START_MARGIN_DB, ABSOLUTE_FLOOR_DB)
            if loud:
                loud_run += 1
            else:
                loud_run = 0
                # Background level: follow it down fast, up slowly (speech must not raise it).
                noise += (0.3 if level < noise else 0.02) * (level - noise)
            if loud_run >= START_FRAMES:
                end, started = index + 1, True
                break
        self.noise_db, self._loud_run = noise, loud_run
        self._frames_seen += end - at
        self._pre_roll.extend(frames[max(at, end - self._pre_roll.maxlen):end])
        if started:
            self._speech = list(self._pre_roll)
            self._start_frame = self._frames_seen - len(self._pre_roll)
            self._pre_roll.clear()
            self._voiced = loud_run
            self._quiet_run = 0
        return end

    def _speech_run(self, frames: np.ndarray, levels: List[float], at: int) -> Tuple[int, Optional[Utterance]]:
        """Frames from ``at`` in speech, until it ends (hangover or the longest utterance) or they
        run out; returns the index of the next frame and the utterance that ended, if any."""
        voiced_above = max(self.noise_db + STOP_MARGIN_DB, ABSOLUTE_FLOOR_DB)
        voiced, quiet = self._voiced, self._quiet_run
        held = len(self._speech)
        end = len(levels)
        ended = False
        for index in range(at, end):
            held += 1
            if levels[index] > voiced_above:
                voiced += 1
                quiet = 0
            else:
                quiet += 1
            if quiet >= self.hangover or held >= self.max_frames:
                end, ended = index + 1, True
                break
        self._speech.extend(frames[at:end])
        self._frames_seen += end - at
        self._voiced, self._quiet_run = voiced, quiet
        return end, (self._finish() if ended else None)

    def _finish(self) -> Optional[Utterance]:
        frames, voiced, start = self._speech, self._voiced, self._start_frame
        self._speech, self._voiced, self._loud_run, self._quiet_run = [], 0, 0, 0
        if voiced * FRAME_S < MIN_VOICED_S:
            return None
        # Drop the trailing silence the hangover waited through.
        tail = min(self._hangover_tail(frames), len(frames) - 1)
        samples = np.concatenate(frames[: len(frames) - tail])
        return Utterance(samples, start * FRAME_S, voiced * FRAME_S)

    def _hangover_tail(self, frames: List[np.ndarray]) -> int:
        keep = int(0.1 / FRAME_S)
        quiet = 0
        for level in reversed(_levels_db(np.stack(frames)).tolist()):
            if level > max(self.noise_db + STOP_MARGIN_DB, ABSOLUTE_FLOOR_DB):
                break
            quiet += 1
        return max(0, quiet - keep)


def _levels_db(frames: np.ndarray) -> np.ndarray:
    """The level (dB, mean power) of each row of ``frames``."""
    return 10.0 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)


def segment(samples: np.ndarray, chunk_s: float = 0.1) -> List[Utterance]:
    """All utterances of a recording (16 kHz mono float), fed as a stream would be."""
    segmenter = EnergySegmenter()
    step = max(1, int(chunk_s * SAMPLE_RATE))
    found: List[Utterance] = []
    for start in range(0, samples.size, step):
        found.extend(segmenter.push(samples[start : start + step]))
    last = segmenter.flush()
    return found + ([last] if last is not None else [])
