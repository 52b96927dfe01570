"""Live microphone capture: sounddevice streaming cut into utterances by energy VAD.

No microphone (no PortAudio library, no input device, a device that cannot be opened)
raises :class:`MicrophoneUnavailable` with a sentence a user can act on, never a traceback.
Audio stays in memory and only for the utterance in progress.
"""
from __future__ import annotations

import queue
from typing import Iterator, Optional

import numpy as np

from emotion_sensing.speech.audio import SAMPLE_RATE
from emotion_sensing.speech.vad import EnergySegmenter, Utterance

BLOCK_S = 0.1
# Blocks waiting for the consumer; beyond this (a stalled consumer) the oldest are dropped.
MAX_QUEUED_BLOCKS = 200


class MicrophoneUnavailable(RuntimeError):
    """There is no microphone this process can record from."""


def _sounddevice():
    try:
        import sounddevice
    except OSError as error:  # the PortAudio shared library is missing
        raise MicrophoneUnavailable(
            f"cannot record: the PortAudio library is missing ({error}); install it (Debian: apt-get install libportaudio2)"
        ) from None
    return sounddevice


def input_device(device: Optional[object] = None) -> dict:
    """The input device that would be used, or MicrophoneUnavailable saying why there is none."""
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError) as error:
        raise MicrophoneUnavailable(f"no microphone found: this machine has no audio input device ({error})") from None
    if not info or info.get("max_input_channels", 0) < 1:
        raise MicrophoneUnavailable("no microphone found: the audio device has no input channels")
    return dict(info)


class Microphone:
    """Records from an input device and yields utterances; use as a context manager."""

    def __init__(self, device: Optional[object] = None, segmenter: Optional[EnergySegmenter] = None) -> None:
        self.info = input_device(device)
        self.device = device
        self.segmenter = segmenter or EnergySegmenter()
        self._blocks: queue.Queue[np.ndarray] = queue.Queue(maxsize=MAX_QUEUED_BLOCKS)
        self._stream = None
        self._resampler = None
        self.dropped_blocks = 0

    def __enter__(self) -> Microphone:
        sd = _sounddevice()
        rate = SAMPLE_RATE
        try:
            self._stream = self._open(sd, rate)
        except sd.PortAudioError:
            # Some devices record only at their own rate: record at it and resample on the fly.
            rate = int(self.info.get("default_samplerate") or 48_000)
            try:
                self._stream = self._open(sd, rate)
            except sd.PortAudioError as error:
                raise MicrophoneUnavailable(f"the microphone {self.info.get('name')!r} could not be opened ({error})") from None
            import soxr

            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
        self._stream.start()
        return self

    def _open(self, sd, rate: int):
        return sd.InputStream(samplerate=rate, channels=1, dtype="float32", device=self.device,
                              blocksize=int(rate * BLOCK_S), callback=self._callback)

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread
        block = indata[:, 0].copy()
        try:
            self._blocks.put_nowait(block)
        except queue.Full:
            self.dropped_blocks += 1

    def __exit__(self, *exc) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def utterances(self, timeout_s: Optional[float] = None) -> Iterator[Utterance]:
        """Utterances as they end; stops after ``timeout_s`` without audio (None: never)."""
        while True:
            try:
                block = self._blocks.get(timeout=timeout_s)
            except queue.Empty:
                return
            if self._resampler is not None:
                block = self._resampler.resample_chunk(block)
            yield from self.segmenter.push(block)
