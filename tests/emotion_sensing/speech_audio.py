"""Audio fixtures for the speech tests: sentences spoken by espeak-ng, silence, files in memory."""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emotion_sensing.config import DEFAULT_MODELS_DIR
from emotion_sensing.speech.audio import SAMPLE_RATE, load
from emotion_sensing.speech.model import MODEL_FILE

VOICE_MODEL = DEFAULT_MODELS_DIR / MODEL_FILE
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
needs_voice_model = pytest.mark.skipif(not VOICE_MODEL.exists(), reason=f"no voice model at {VOICE_MODEL} (emobot train speech)")


def speak(text: str, folder: Path, name: str = "sentence.wav", speed: int = 150) -> Path:
    """``text`` spoken by espeak-ng into a WAV file (22.05 kHz mono int16)."""
    path = Path(folder) / name
    subprocess.run(["espeak-ng", "-s", str(speed), "-w", str(path), text], check=True, capture_output=True, timeout=60)
    return path


def spoken(text: str, folder: Path) -> np.ndarray:
    """``text`` spoken by espeak-ng as 16 kHz mono float32."""
    return load(speak(text, folder))


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    """Samples encoded as a sound file in memory."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def silence(seconds: float = 2.0) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
