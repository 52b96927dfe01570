"""Faces in an image -> emotion readings, with the shipped TFLite model.

Preprocessing matches training. A model trained on aligned faces (its JSON says
``"alignment": "landmarks"``) gets each face warped by its five CenterFace landmarks onto the
template (:mod:`.align`); otherwise, or for a face found without landmarks (the Haar
fallback), the face box (widened by ``crop_margin``) is cut from the grayscale frame and resized
to FER2013's 48x48 with area interpolation. Either is then resized bilinearly to the network's
input size. The prediction averages the face and its mirror image.

Faces are found by CenterFace (:mod:`.centerface`) where its weights are installed, else by
OpenCV's Haar cascade; ``EMOBOT_FACE_DETECTOR=haar|centerface`` chooses.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from emotion_sensing.face.detect import Box, FaceDetector, FaceTracker, primary, to_gray
from emotion_sensing.face.export import MODEL_FILE
from emotion_sensing.labels import LABELS
from emotion_sensing.reading import Reading

NATIVE_SIZE = 48
MAX_PIXELS = 4096 * 4096
DETECTORS = ("centerface", "haar")
PRECISIONS = ("int8", "float32")
log = logging.getLogger(__name__)
#: a face prepared for the classifier: one array, or one per network of an ensemble
Prepared = Union[np.ndarray, Tuple[np.ndarray, ...]]


def make_detector(kind: Optional[str] = None):
    """The face detector by name (default ``EMOBOT_FACE_DETECTOR``, else CenterFace); CenterFace
    without its weights falls back to the Haar cascade with a warning."""
    kind = (kind or os.environ.get("EMOBOT_FACE_DETECTOR") or "centerface").strip().lower()
    if kind not in DETECTORS:
        raise ValueError(f"unknown face detector {kind!r}; choose one of {', '.join(DETECTORS)}")
    if kind == "centerface":
        from emotion_sensing.face.centerface import CenterFaceDetector, DetectorUnavailable

        try:
            return CenterFaceDetector()
        except DetectorUnavailable as error:
            log.warning("face detection falls back to the Haar cascade: %s", error)
    return FaceDetector()


class ImageError(ValueError):
    """The bytes are not an image we can read (empty, corrupt, too large)."""


def _declared_size(data: bytes) -> Optional[tuple]:
    """(width, height) from the image's header, without decoding it; None when unreadable."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Image.DecompressionBombError:
        return (1 << 30, 1 << 30)
    except Exception:  # noqa: BLE001 - not a header PIL knows; OpenCV decides
        return None


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """JPEG/PNG/BMP/WebP bytes -> BGR/BGRA/gray array; :class:`ImageError` with a clear reason."""
    if not data:
        raise ImageError("the image is empty")
    declared = _declared_size(data)
    if declared is not None and declared[0] * declared[1] > max_pixels:
        # Refused from the header: a small PNG can decode to gigabytes.
        raise ImageError(f"image of {declared[0]}x{declared[1]} pixels is larger than the limit")
    buffer = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageError("not a readable image (expected JPEG, PNG, BMP or WebP bytes)")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise ImageError(f"image of {image.shape[1]}x{image.shape[0]} pixels is larger than the limit")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    return image


@dataclass
class FaceResult:
    box: Box
    probs: np.ndarray

    @property
    def label(self) -> str:
        return LABELS[int(self.probs.argmax())]

    def to_dict(self) -> dict:
        return {"box": self.box.to_dict(), "label": self.label,
                "probs": {label: round(float(p), 4) for label, p in zip(LABELS, self.probs)}}


@dataclass
class FrameAnalysis:
    faces: List[FaceResult] = field(default_factory=list)
    primary: Optional[FaceResult] = None
    width: int = 0
    height: int = 0
    detect_ms: float = 0.0
    classify_ms: float = 0.0

    def reading(self, timestamp: Optional[float] = None) -> Optional[Reading]:
        """The primary face as a Reading; None when no face was found."""
        if self.primary is None:
            return None
        probs = self.primary.probs
        return Reading("face", tuple(float(p) for p in probs), confidence=float(probs.max()),
                       timestamp=timestamp or time.time(),
                       extras={"faces": len(self.faces), "box": self.primary.box.to_dict()})

    def to_dict(self) -> dict:
        return {"faces": [f.to_dict() for f in self.faces],
                "primary": None if self.primary is None else self.faces.index(self.primary),
                "width": self.width, "height": self.height,
                "detect_ms": round(self.detect_ms, 2), "classify_ms": round(self.classify_ms, 2)}


class FaceClassifier:
    """The TFLite face-emotion model, run with TensorFlow's own interpreter on one thread; with
    the networks its JSON names under ``"ensemble"`` (``ensemble=False``, or the environment's
    ``EMOBOT_FACE_ENSEMBLE=off``: this network alone).

    Each network runs its int8 copy when its JSON names one (``"int8": {"file"}``, written by
    ``emobot eval face --quantize``) and ``precision`` (default ``EMOBOT_FACE_PRECISION``, else
    ``int8``) asks for it; ``float32`` runs the file at ``model_path`` itself."""

    def __init__(self, model_path: Path, num_threads: int = 1, ensemble: Optional[bool] = None,
                 precision: Optional[str] = None) -> None:
        model_path = Path(model_path)
        if not model_path.exists():
            raise FileNotFoundError(f"face model not found: {model_path}")
        self.path = model_path
        meta_path = model_path.with_suffix(".json")
        self.meta: Dict = read_meta(model_path)
        import tensorflow as tf

        precision = _precision(precision)
        #: the file the interpreter runs: the int8 copy where there is one and it is asked for
        self.runs = model_path
        int8 = self.meta.get("int8") or {}
        if precision == "int8" and int8.get("file"):
            candidate = model_path.with_name(int8["file"])
            if candidate.exists():
                self.runs = candidate
            else:
                log.warning("the int8 face network %s named in %s is missing: running %s in float32",
                            candidate.name, meta_path.name, model_path.name)
        self.precision = "int8" if self.runs != model_path else "float32"
        self.interpreter = tf.lite.Interpreter(model_path=str(self.runs), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        detail = self.interpreter.get_input_details()[0]
        self._input = detail["index"]
        self.input_size = int(detail["shape"][1])
        self._output = self.interpreter.get_output_details()[0]["index"]
        self.crop_margin = float(self.meta.get("crop_margin", 0.1))
        self.flip = bool(self.meta.get("flip_average", True))
        self.aligned = self.meta.get("alignment") == "landmarks"
        #: fitted on PublicTest (``emobot eval face --cross --calibrate``); 1.0: as trained.
        #: With members, it calibrates their weighted average.
        self.temperature = float(self.meta.get("temperature", 1.0))
        #: other networks whose probabilities are averaged with this one's (its JSON's
        #: ``"ensemble": [{"file", "weight"}]``, files beside it), each preparing the face as it
        #: was trained; this network keeps the remaining weight
        if ensemble is None:  # EMOBOT_FACE_ENSEMBLE=off: the first network alone, half the time a face
            ensemble = os.environ.get("EMOBOT_FACE_ENSEMBLE", "on").strip().lower() not in ("off", "0", "no", "false")
        declared = list(self.meta.get("ensemble") or ()) if ensemble else []
        self.weight = 1.0 - sum(float(m["weight"]) for m in declared)
        if declared and not 0.0 < self.weight <= 1.0:
            raise ValueError(f"{meta_path}: ensemble weights must sum to less than 1")
        self.members: List[Tuple[FaceClassifier, float]] = []
        for member in declared:
            path = model_path.with_name(member["file"])
            if not path.exists():  # a partial install: read faces with the networks that are there
                log.warning("face network %s named in %s is missing: reading faces without it", path, meta_path.name)
                continue
            self.members.append((FaceClassifier(path, num_threads=num_threads, ensemble=False, precision=precision),
                                 float(member["weight"])))
        total = self.weight + sum(w for _, w in self.members)
        self.weight, self.members = self.weight / total, [(m, w / total) for m, w in self.members]

    @property
    def networks(self) -> List[Tuple[FaceClassifier, float]]:
        """Every network that reads a face, this one first, with its weight in the average."""
        return [(self, self.weight), *self.members]

    def describe_networks(self) -> List[Dict]:
        """Each network's file, weight and whether it takes aligned faces (for reports)."""
        return [{"file": n.path.name, "weight": round(w, 4), "aligned": n.aligned, "precision": n.precision,
                 "runs": n.runs.name} for n, w in self.networks]

    def prepare(self, gray: np.ndarray, box: Optional[Box] = None) -> Prepared:
        """The face as the network takes it: float32 (size, size); with members, a tuple of
        the face as each network takes it (this one first)."""
        faces = tuple(n._prepare(gray, box) for n, _ in self.networks)
        return faces if self.members else faces[0]

    def prepare_crop(self, crop: np.ndarray, aligned: np.ndarray) -> Prepared:
        """An already-cut face (a FER2013 crop) as each network takes it: ``aligned`` (the crop
        warped by its landmarks) for a network trained on aligned faces, else ``crop``."""
        faces = tuple(n._prepare(aligned if n.aligned else crop) for n, _ in self.networks)
        return faces if self.members else faces[0]

    def _prepare(self, gray: np.ndarray, box: Optional[Box] = None) -> np.ndarray:
        """The face as this network takes it. Aligned by the box's landmarks when the model was
        trained so and the detector gave them; else the box (with margin) cropped to 48x48."""
        if box is not None and box.landmarks and self.aligned:
            from emotion_sensing.face.align import aligned_face

            face = aligned_face(gray, box.landmarks, NATIVE_SIZE)
            if self.input_size != NATIVE_SIZE:
                face = cv2.resize(face, (self.input_size, self.input_size), interpolation=cv2.INTER_LINEAR)
            return face.astype(np.float32)
        if box is not None:
            h, w = gray.shape[:2]
            box = box.expanded(self.crop_margin, w, h)
            gray = gray[box.y:box.y + box.h, box.x:box.x + box.w]
        face = cv2.resize(gray, (NATIVE_SIZE, NATIVE_SIZE), interpolation=cv2.INTER_AREA)
        if self.input_size != NATIVE_SIZE:
            face = cv2.resize(face, (self.input_size, self.input_size), interpolation=cv2.INTER_LINEAR)
        return face.astype(np.float32)

    def _mirrored(self, face: np.ndarray) -> np.ndarray:
        """This network's probabilities, averaged with its mirror image's when trained so."""
        probs = self._run(face)
        if self.flip:
            probs = (probs + self._run(np.ascontiguousarray(face[:, ::-1]))) / 2.0
        return probs

    def _run(self, face: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._input, face[None, :, :, None])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output)[0].copy()

    def classify(self, face: Prepared, calibrated: bool = True) -> np.ndarray:
        """Probabilities over LABELS for one prepared face (with the model's temperature unless
        ``calibrated`` is False; the label is the same either way). With members: the weighted
        average of every network's probabilities (a single array is given to all of them)."""
        if not self.members:
            probs = self._mirrored(face)
        else:
            faces = face if isinstance(face, tuple) else (face,) * len(self.networks)
            probs = sum(weight * network._mirrored(one) for (network, weight), one in zip(self.networks, faces))
        if calibrated and self.temperature != 1.0:
            probs = with_temperature(probs, self.temperature)
        return probs


def read_meta(model_path: Path) -> Dict:
    """The JSON beside a face network (``x.tflite`` -> ``x.json``); {} when there is none."""
    meta_path = Path(model_path).with_suffix(".json")
    return json.loads(meta_path.read_text()) if meta_path.exists() else {}


def network_paths(model_path: Path) -> List[Path]:
    """The model's file and those of the networks its JSON averages with it (declared, whether
    installed or not), without loading any of them."""
    model_path = Path(model_path)
    return [model_path, *(model_path.with_name(m["file"]) for m in read_meta(model_path).get("ensemble") or ())]


def _precision(precision: Optional[str]) -> str:
    """``precision``, else ``EMOBOT_FACE_PRECISION``, else int8; ValueError for anything else."""
    chosen = (precision or os.environ.get("EMOBOT_FACE_PRECISION") or "int8").strip().lower()
    if chosen not in PRECISIONS:
        raise ValueError(f"unknown face precision {chosen!r}; choose int8 or float32 (EMOBOT_FACE_PRECISION)")
    return chosen


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax(log p / T): temperature scaling applied to probabilities."""
    z = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


class FaceRecognizer:
    """Detection + classification. ``analyse`` for still images, ``analyse_frame`` with a
    :class:`FaceTracker` for a stream of frames from one camera."""

    def __init__(self, model_path: Path, detector: Optional[FaceDetector] = None, num_threads: int = 1,
                 precision: Optional[str] = None) -> None:
        self.classifier = FaceClassifier(model_path, num_threads=num_threads, precision=precision)
        self.detector = detector or make_detector()

    @classmethod
    def from_models_dir(cls, models_dir: Path, **kw) -> FaceRecognizer:
        return cls(Path(models_dir) / MODEL_FILE, **kw)

    def analyse(self, image: np.ndarray, tracker: Optional[FaceTracker] = None, cropped: bool = False) -> FrameAnalysis:
        """Every face in ``image`` (BGR, BGRA or gray) with its probabilities.

        ``cropped``: the image is already one face (as in FER2013); skip detection. For a model
        trained on aligned faces the crop is aligned as its training crops were (CenterFace's
        landmarks on the crop enlarged 2x with a border); a crop without landmarks found is
        taken as it is.
        """
        gray = to_gray(image)
        height, width = gray.shape[:2]
        started = time.perf_counter()
        if cropped:
            boxes = [Box(0, 0, width, height)]
            if self.classifier.aligned and getattr(self.detector, "name", "") == "centerface":
                from emotion_sensing.face.aligned_data import crop_landmarks

                points = crop_landmarks(gray, self.detector)
                if points is not None:
                    boxes = [Box(0, 0, width, height, landmarks=points)]
        else:
            boxes = tracker.update(gray) if tracker is not None else self.detector.detect(gray)
        detected = time.perf_counter()
        faces = [FaceResult(box, self.classifier.classify(self.classifier.prepare(
                     gray, box if not cropped or box.landmarks else None))) for box in boxes]
        done = time.perf_counter()
        main = primary([f.box for f in faces], width, height)
        return FrameAnalysis(faces=faces, primary=next((f for f in faces if f.box is main), None),
                             width=width, height=height,
                             detect_ms=(detected - started) * 1000, classify_ms=(done - detected) * 1000)

    def warm_up(self) -> None:
        self.analyse(np.zeros((NATIVE_SIZE, NATIVE_SIZE), np.uint8), cropped=True)


def draw(image: np.ndarray, analysis: FrameAnalysis) -> np.ndarray:
    """A copy of ``image`` (BGR) with each face boxed and labelled; the primary face in green."""
    out = image.copy() if image.ndim == 3 and image.shape[2] == 3 else cv2.cvtColor(to_gray(image), cv2.COLOR_GRAY2BGR)
    for face in analysis.faces:
        colour = (0, 200, 0) if face is analysis.primary else (0, 160, 255)
        b = face.box
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), colour, 2)
        for x, y in b.landmarks or ():
            cv2.circle(out, (int(round(x)), int(round(y))), 2, colour, -1)
        text = f"{face.label} {face.probs.max():.2f}"
        cv2.putText(out, text, (b.x, max(12, b.y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out
