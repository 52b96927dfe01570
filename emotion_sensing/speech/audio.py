"""Audio in any common shape turned into what the voice recognizer reads: mono float32 at 16 kHz.

Decoding happens in memory: uploaded audio is never written to disk.
"""
from __future__ import annotations

import io
from typing import Tuple

import numpy as np

SAMPLE_RATE = 16_000
# WAV (RIFF/RIFX/RF64), FLAC and OGG headers; anything else posted as a file is refused.
_CONTAINER_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS")


class AudioError(ValueError):
    """Audio that cannot be read, with a machine-readable code for API errors."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def to_mono_float(samples: np.ndarray) -> np.ndarray:
    """Samples of any dtype and channel layout as mono float32 in -1..1.

    Integers are scaled by their type's range (uint8 is offset-binary, as in WAV); a 2-D
    array is averaged over its channel axis, taken to be the shorter one.
    """
    samples = _scale(np.asarray(samples))
    if samples.ndim == 2:
        samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
    elif samples.ndim != 1:
        raise AudioError("bad_shape", f"audio must be 1-D (mono) or 2-D (channels), got shape {samples.shape}")
    out = samples.astype(np.float32)
    if not np.all(np.isfinite(out)):
        out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def _scale(samples: np.ndarray) -> np.ndarray:
    if samples.dtype.kind == "f":
        return samples.astype(np.float64)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float64) - 128.0) / 128.0
    if samples.dtype.kind in "iu":
        info = np.iinfo(samples.dtype)
        return samples.astype(np.float64) / float(max(abs(info.min), info.max))
    if samples.dtype.kind == "b":
        return samples.astype(np.float64)
    raise AudioError("bad_dtype", f"cannot read samples of type {samples.dtype}")


def resample(samples: np.ndarray, sample_rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Mono samples at ``target`` Hz (soxr, high quality)."""
    if sample_rate <= 0:
        raise AudioError("bad_sample_rate", f"sample rate must be positive, got {sample_rate}")
    if sample_rate == target or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(samples, sample_rate, target, quality="HQ").astype(np.float32)


def prepare(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Any samples at any rate as mono float32 at :data:`SAMPLE_RATE`."""
    return resample(to_mono_float(samples), int(sample_rate))


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Raw little-endian 16-bit mono PCM as float32 in -1..1 (an odd trailing byte is an error)."""
    if len(data) % 2:
        raise AudioError("truncated_audio", f"PCM16 data must have an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


# Files claiming more channels or a higher rate than this are refused before decoding.
MAX_FILE_CHANNELS = 8
MAX_FILE_RATE = 192_000


def decode(data: bytes, pcm_sample_rate: int | None = None, max_seconds: float | None = None) -> Tuple[np.ndarray, int]:
    """Decode WAV/FLAC/OGG bytes (or raw PCM16 when ``pcm_sample_rate`` is given) in memory.

    Returns ``(samples, sample_rate)`` as read; raises :class:`AudioError` for empty,
    unrecognised or truncated data, and (``audio_too_long``) for a file longer than
    ``max_seconds``, found without decoding more than that: a few hundred KB of FLAC
    silence can hold hours of audio.
    """
    if not data:
        raise AudioError("empty_audio", "no audio: the body is empty")
    if pcm_sample_rate is not None:
        return pcm16_to_float(data), int(pcm_sample_rate)
    if data[:4] not in _CONTAINER_MAGIC:
        raise AudioError(
            "unsupported_audio_format",
            "not a WAV, FLAC or OGG file; send one of those, or raw 16-bit PCM with its sample rate",
        )
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            rate, channels = int(sound.samplerate), int(sound.channels)
            if not 0 < rate <= MAX_FILE_RATE or not 0 < channels <= MAX_FILE_CHANNELS:
                raise AudioError("unsupported_audio_format",
                                 f"{channels} channels at {rate} Hz; at most {MAX_FILE_CHANNELS} channels "
                                 f"at up to {MAX_FILE_RATE} Hz are supported")
            limit = -1 if max_seconds is None else int(max_seconds * rate) + 1
            samples = sound.read(frames=limit, dtype="float32", always_2d=False)
    except (RuntimeError, soundfile.LibsndfileError, ValueError, EOFError) as error:
        if isinstance(error, AudioError):
            raise
        raise AudioError("unreadable_audio", f"the audio file could not be decoded ({error}); is it truncated?") from None
    if limit > 0 and np.asarray(samples).shape[0] >= limit:
        raise AudioError("audio_too_long", f"more than {max_seconds:g} s of audio; one utterance may last at most "
                                           f"{max_seconds:g} s")
    if np.asarray(samples).size == 0:
        raise AudioError("empty_audio", "the audio file holds no samples")
    return np.asarray(samples), int(rate)


def load(path, target: int = SAMPLE_RATE) -> np.ndarray:
    """A sound file from disk as mono float32 at ``target`` Hz."""
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioError("unreadable_audio", f"{path}: cannot read audio ({error})") from None
    return resample(to_mono_float(samples), int(rate), target)
