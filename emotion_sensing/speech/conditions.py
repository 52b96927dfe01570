"""Microphone and line conditions a voice model must survive, applied to clean clips.

Used by ``emobot eval speech --robustness`` (each condition on the test speakers) and, where it
helps, by ``emobot train speech`` as augmentation. Deterministic: the same clip and seed give
the same audio.

| condition | what |
|---|---|
| ``clean`` | the clip as recorded |
| ``telephone`` | 300-3400 Hz band-pass (4th-order Butterworth), then down to 8 kHz and back up |
| ``noise20``, ``noise10`` | pink noise added at 20 / 10 dB SNR, relative to the voiced frames' power |
| ``gain+12``, ``gain-12`` | level changed by ±12 dB; samples clip at full scale, as a hot microphone would |
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from emotion_sensing.speech.audio import SAMPLE_RATE

CONDITIONS: Tuple[str, ...] = ("clean", "telephone", "noise20", "noise10", "gain+12", "gain-12")
DEGRADED = CONDITIONS[1:]


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance pink (1/f power) noise: white noise shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    k = np.arange(spectrum.size, dtype=np.float64)
    k[0] = 1.0
    y = np.fft.irfft(spectrum / np.sqrt(k), n)
    return y / (y.std() or 1.0)


def speech_power(samples: np.ndarray) -> float:
    """Mean power over the voiced frames (features.py's definition); the whole clip if none."""
    from emotion_sensing.speech.features import HOP, frame_features

    frames = frame_features(samples)
    if frames.silent:
        return float(np.mean(samples**2)) if samples.size else 0.0
    voiced = np.repeat(frames.voiced, HOP)[: samples.size]
    return float(np.mean(samples[: voiced.size][voiced] ** 2))


def apply(samples: np.ndarray, condition: str, seed: int = 0) -> np.ndarray:
    """``samples`` (16 kHz mono float) under ``condition`` (one of :data:`CONDITIONS`)."""
    y = np.asarray(samples, dtype=np.float32)
    if condition == "clean":
        return y
    if condition == "telephone":
        from scipy import signal

        sos = signal.butter(4, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")
        z = signal.sosfilt(sos, y)
        z = signal.resample_poly(signal.resample_poly(z, 1, 2), 2, 1)[: y.size]
        return z.astype(np.float32)
    if condition.startswith("noise"):
        snr_db = float(condition[len("noise"):])
        noise = pink_noise(y.size, np.random.default_rng(seed))
        return (y + noise * np.sqrt(speech_power(y) / 10 ** (snr_db / 10))).astype(np.float32)
    if condition.startswith("gain"):
        gain_db = float(condition[len("gain"):])
        return np.clip(y * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)
    raise ValueError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
