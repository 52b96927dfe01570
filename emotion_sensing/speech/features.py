"""Acoustic features of an utterance: librosa frame features summarised into one vector.

The feature set of a published chatbot's voice classifier (chromagram, RMS energy,
2nd-order polynomial spectral fit, spectral centroid, bandwidth and roll-off, zero-crossing
rate, MFCCs with deltas, mel spectrogram), computed on 16 kHz mono audio with a 64 ms
window (1024 samples) every 16 ms (256 samples), from one STFT.

Frame features (rows of :data:`FRAME_LAYOUT`, in this order):

| block | rows | what |
|---|---|---|
| mfcc | 40 | MFCCs 0-39 (DCT of the 128-band log-mel spectrum) |
| mfcc_delta | 40 | their first time derivatives (9-frame window) |
| chroma | 12 | chroma_stft: energy per pitch class C..B, each frame's max scaled to 1 |
| mel | 128 | log-mel spectrum, dB re full scale (0-8 kHz) |
| rms | 1 | root-mean-square energy, dB re full scale |
| poly | 3 | coefficients of a 2nd-order polynomial fitted to the dB spectrum (x², x, 1) |
| centroid | 1 | spectral centroid, Hz |
| bandwidth | 1 | spectral bandwidth (2nd order), Hz |
| rolloff | 1 | frequency below which 85% of the energy lies, Hz |
| zcr | 1 | zero-crossing rate (fraction of samples) |

Only voiced frames count: those within :data:`VOICED_RANGE_DB` of the loudest frame and
above :data:`SILENCE_DB`, so leading and trailing silence (a second or more in recorded
clips) does not dilute the summary. The utterance vector is the mean of every frame row
over the voiced frames followed by their standard deviation: ``2 × 228 = 456`` values,
named by :func:`feature_names`. Levels are in dB so that a louder microphone shifts
features rather than scaling them; per-speaker standardisation (speaker.py) removes the shift.

Any input works: any sample rate (resampled to 16 kHz), stereo (averaged), int or float
samples, clips shorter than a window (zero-padded). A clip with no frame above
:data:`SILENCE_DB`, or whose level never varies by :data:`MIN_SPEECH_RANGE_DB` (steady noise),
holds no speech: :func:`utterance_features` returns ``None`` for it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from emotion_sensing.speech.audio import SAMPLE_RATE, prepare

N_FFT = 1024
HOP = 256
N_MELS = 128
N_MFCC = 40
# Frames quieter than this (frame RMS, dB re full scale) are silence whatever the clip.
# Low, because studio recordings can be quiet: some RAVDESS clips peak at -54 dB.
SILENCE_DB = -65.0
# Frames more than this below the clip's loudest frame are pauses, not voice.
VOICED_RANGE_DB = 30.0
# Speech rises and falls: a clip whose loudest frame is within this of its quiet frames
# (10th percentile) is steady noise or hum, not speech.
MIN_SPEECH_RANGE_DB = 10.0
FEATURE_VERSION = 1

FRAME_LAYOUT: Tuple[Tuple[str, int], ...] = (
    ("mfcc", N_MFCC),
    ("mfcc_delta", N_MFCC),
    ("chroma", 12),
    ("mel", N_MELS),
    ("rms", 1),
    ("poly", 3),
    ("centroid", 1),
    ("bandwidth", 1),
    ("rolloff", 1),
    ("zcr", 1),
)
N_FRAME_FEATURES = sum(size for _, size in FRAME_LAYOUT)
N_FEATURES = 2 * N_FRAME_FEATURES
STATISTICS = ("mean", "std")


def feature_names() -> List[str]:
    """Names of the utterance vector's values, e.g. ``mean.mfcc.0`` ... ``std.zcr.0``."""
    return [f"{stat}.{block}.{i}" for stat in STATISTICS for block, size in FRAME_LAYOUT for i in range(size)]


def block_slice(block: str, statistic: str = "mean") -> slice:
    """Where one block's values lie in the utterance vector."""
    start = 0 if statistic == "mean" else N_FRAME_FEATURES
    for name, size in FRAME_LAYOUT:
        if name == block:
            return slice(start, start + size)
        start += size
    raise KeyError(block)


@dataclass(frozen=True)
class FrameFeatures:
    """Frame-level features of one clip: ``values`` is ``(frames, N_FRAME_FEATURES)``."""

    values: np.ndarray
    voiced: np.ndarray  # bool per frame
    rms_db: np.ndarray  # per frame
    duration_s: float

    @property
    def silent(self) -> bool:
        """No speech: nothing above SILENCE_DB, or a level too steady to be voice."""
        if not self.voiced.any():
            return True
        return self.peak_db - float(np.percentile(self.rms_db, 10)) < MIN_SPEECH_RANGE_DB

    @property
    def peak_db(self) -> float:
        return float(self.rms_db.max()) if self.rms_db.size else -120.0

    def voiced_values(self) -> np.ndarray:
        return self.values[self.voiced]

    def mfcc(self) -> np.ndarray:
        """The voiced frames' MFCCs, ``(frames, N_MFCC)`` (the sequence model's input)."""
        return self.values[self.voiced, :N_MFCC]


def _db(x: np.ndarray, amin: float) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(x, amin))


@functools.lru_cache(maxsize=1)
def _filters() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mel and chroma filter banks, bin frequencies and the polynomial fit's solver, built once.

    librosa rebuilds the filter banks on every call; with them cached, a 3 s utterance
    takes about half the time. Results equal librosa's own feature functions (tested).
    """
    import librosa

    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmax=SAMPLE_RATE / 2)
    chroma = librosa.filters.chroma(sr=SAMPLE_RATE, n_fft=N_FFT, tuning=0.0)
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT)
    # Least squares for a 2nd-order polynomial over the bins, as np.polyfit solves it
    # (columns scaled to unit norm), as one matrix: coefficients = solver @ spectrum.
    vander = np.vander(freqs, 3)
    scale = np.sqrt((vander * vander).sum(axis=0))
    solver = np.linalg.pinv(vander / scale) / scale[:, None]
    return mel, chroma, freqs, solver


def zero_crossing_rate(y: np.ndarray) -> np.ndarray:
    """librosa.feature.zero_crossing_rate (centred, edge-padded frames) from one pass over ``y``."""
    padded = np.pad(y, N_FFT // 2, mode="edge")
    signs = np.signbit(np.where(np.abs(padded) <= 1e-10, 0.0, padded))
    crossings = np.concatenate([[0], np.cumsum(signs[1:] != signs[:-1])])
    starts = np.arange(1 + (padded.size - N_FFT) // HOP) * HOP
    # A frame counts the crossings between its own consecutive samples.
    return ((crossings[starts + N_FFT - 1] - crossings[starts]) / N_FFT)[np.newaxis, :]


def frame_features(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> FrameFeatures:
    """Every frame feature of a clip of any shape, dtype and rate (see the module table)."""
    import librosa

    mel_fb, chroma_fb, freqs, poly_solver = _filters()
    y = prepare(samples, sample_rate)
    duration = y.size / SAMPLE_RATE
    if y.size < N_FFT:
        y = np.pad(y, (0, N_FFT - y.size))
    stft = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True))
    power = stft**2
    mel_db = _db(mel_fb @ power, 1e-10)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    frames = mfcc.shape[1]
    width = min(9, frames if frames % 2 else frames - 1)
    delta = librosa.feature.delta(mfcc, width=width, mode="nearest") if width >= 3 else np.zeros_like(mfcc)
    chroma = librosa.util.normalize(chroma_fb @ power, norm=np.inf, axis=0)
    rms = librosa.feature.rms(S=stft, frame_length=N_FFT)
    rms_db = _db(rms**2, 1e-12)
    poly = poly_solver @ _db(power, 1e-10)
    weights = librosa.util.normalize(stft, norm=1, axis=0)
    centroid = (freqs[:, np.newaxis] * weights).sum(axis=0, keepdims=True)
    bandwidth = np.sqrt((weights * (freqs[:, np.newaxis] - centroid) ** 2).sum(axis=0, keepdims=True))
    rolloff = librosa.feature.spectral_rolloff(S=stft, sr=SAMPLE_RATE, n_fft=N_FFT)
    zcr = zero_crossing_rate(y)
    blocks = (mfcc, delta, chroma, mel_db, rms_db, poly, centroid, bandwidth, rolloff, zcr[:, :frames])
    values = np.concatenate(blocks, axis=0).T.astype(np.float32)
    level = rms_db[0]
    voiced = (level > SILENCE_DB) & (level > level.max() - VOICED_RANGE_DB)
    return FrameFeatures(values=values, voiced=voiced, rms_db=level, duration_s=duration)


def summarise(frames: FrameFeatures) -> Optional[np.ndarray]:
    """Mean and standard deviation of each frame feature over the voiced frames; None if silent."""
    if frames.silent:
        return None
    voiced = frames.voiced_values().astype(np.float64)
    return np.concatenate([voiced.mean(axis=0), voiced.std(axis=0)]).astype(np.float32)


def utterance_features(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Optional[np.ndarray]:
    """The utterance vector (``N_FEATURES`` values, layout in the module docstring); None if silent."""
    return summarise(frame_features(samples, sample_rate))


def feature_matrix(clips: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Utterance vectors of many clips, one row each; silent clips give a row of NaN."""
    rows = []
    for clip in clips:
        vector = utterance_features(clip, sample_rate)
        rows.append(vector if vector is not None else np.full(N_FEATURES, np.nan, dtype=np.float32))
    return np.vstack(rows) if rows else np.zeros((0, N_FEATURES), dtype=np.float32)


def warm_up() -> None:
    """Run every feature once: librosa's first call compiles with numba (~18 s)."""
    rng = np.random.default_rng(0)
    utterance_features(0.1 * rng.standard_normal(SAMPLE_RATE).astype(np.float32))
