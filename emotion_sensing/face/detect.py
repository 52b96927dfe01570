"""Face detection for live video: OpenCV's Haar cascade on a downscaled frame, with the
faces tracked between full scans by searching only around where they were.

A full 640x480 scan costs ~65 ms; a 320-wide scan about a quarter of that, and a search in
the neighbourhood of a known face a few ms. :class:`FaceTracker` does a full scan every
``rescan_every`` frames (or when it has lost the faces) and local searches in between, with
either detector: this cascade, or CenterFace (:mod:`.centerface`, the default of
:func:`.recognizer.make_detector`), whose boxes also carry five landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    #: the detector's confidence, where it gives one (CenterFace does, the cascade does not)
    score: Optional[float] = field(default=None, compare=False)
    #: five (x, y) points where the detector gives them: the eye on the image's left, the
    #: other eye, the nose tip, the mouth's left and right corners
    landmarks: Optional[Tuple[Tuple[float, float], ...]] = field(default=None, compare=False)

    @property
    def area(self) -> int:
        return self.w * self.h

    def to_dict(self) -> dict:
        out = {"x": self.x, "y": self.y, "w": self.w, "h": self.h}
        if self.score is not None:
            out["score"] = self.score
        if self.landmarks is not None:
            out["landmarks"] = [[round(x, 1), round(y, 1)] for x, y in self.landmarks]
        return out

    def expanded(self, factor: float, width: int, height: int) -> Box:
        """The box grown by ``factor`` of its size on every side, clipped to the frame."""
        dx, dy = int(self.w * factor), int(self.h * factor)
        x0, y0 = max(0, self.x - dx), max(0, self.y - dy)
        x1, y1 = min(width, self.x + self.w + dx), min(height, self.y + self.h + dy)
        return Box(x0, y0, x1 - x0, y1 - y0)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale uint8 from gray, BGR or BGRA input (any numeric dtype)."""
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8) if image.max() > 1.0 else (image * 255).astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"unsupported image shape {image.shape}")


def primary(boxes: Sequence[Box], width: int, height: int) -> Optional[Box]:
    """The face the conversation is with: large and near the centre of the frame."""
    if not boxes:
        return None
    cx, cy, diag = width / 2.0, height / 2.0, (width ** 2 + height ** 2) ** 0.5 / 2.0

    def score(b: Box) -> float:
        distance = ((b.x + b.w / 2 - cx) ** 2 + (b.y + b.h / 2 - cy) ** 2) ** 0.5 / diag
        return b.area * (1.0 - 0.5 * distance)

    return max(boxes, key=score)


class FaceDetector:
    """Haar-cascade detection of all faces in a frame, on a copy downscaled to ``max_width``."""

    def __init__(self, max_width: int = 320, min_face: int = 40, scale_factor: float = 1.15,
                 min_neighbors: int = 5, equalize: bool = True) -> None:
        path = cv2.data.haarcascades + CASCADE
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"could not load OpenCV's face cascade from {path}")
        self.max_width = max_width
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.equalize = equalize

    def _detect(self, gray: np.ndarray, min_size: int, max_size: int = 0,
                scale_factor: float = 0.0) -> List[Tuple[int, int, int, int]]:
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        found = self.cascade.detectMultiScale(gray, scaleFactor=scale_factor or self.scale_factor,
                                              minNeighbors=self.min_neighbors, minSize=(min_size, min_size),
                                              maxSize=(max_size, max_size))
        return [tuple(int(v) for v in f) for f in found]

    def detect(self, gray: np.ndarray) -> List[Box]:
        """Every face in a grayscale frame, in full-frame coordinates."""
        height, width = gray.shape[:2]
        scale = min(1.0, self.max_width / float(width))
        small = cv2.resize(gray, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA) \
            if scale < 1.0 else gray
        min_size = max(12, int(self.min_face * scale))
        return [Box(int(x / scale), int(y / scale), int(w / scale), int(h / scale))
                for x, y, w, h in self._detect(small, min_size)]

    def detect_near(self, gray: np.ndarray, box: Box, margin: float = 0.5) -> Optional[Box]:
        """Search only around a known face; the best match or None."""
        height, width = gray.shape[:2]
        region = box.expanded(margin, width, height)
        roi = gray[region.y:region.y + region.h, region.x:region.x + region.w]
        # Scan the region at a size where the face is ~60 px, and only for faces of about
        # the known size: a handful of cascade scales instead of a full pyramid.
        scale = min(1.0, 60.0 / max(1, box.w))
        if scale < 1.0:
            roi = cv2.resize(roi, (max(1, int(roi.shape[1] * scale)), max(1, int(roi.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        face = box.w * scale
        found = self._detect(roi, max(12, int(face * 0.7)), int(face * 1.45) + 1, scale_factor=1.1)
        if not found:
            return None
        boxes = [Box(region.x + int(x / scale), region.y + int(y / scale), int(w / scale), int(h / scale))
                 for x, y, w, h in found]
        centre = (box.x + box.w / 2, box.y + box.h / 2)
        return min(boxes, key=lambda b: (b.x + b.w / 2 - centre[0]) ** 2 + (b.y + b.h / 2 - centre[1]) ** 2)


class FaceTracker:
    """Faces across the frames of one video stream: full scans now and then, local searches between."""

    def __init__(self, detector: Optional[FaceDetector] = None, rescan_every: int = 30) -> None:
        self.detector = detector or FaceDetector()
        self.rescan_every = rescan_every
        self.boxes: List[Box] = []
        self._since_scan = 0
        self.full_scans = 0

    def update(self, gray: np.ndarray) -> List[Box]:
        """The faces in this frame (tracked boxes, or a fresh full scan)."""
        self._since_scan += 1
        if self.boxes and self._since_scan < self.rescan_every:
            tracked = [b for b in (self.detector.detect_near(gray, box) for box in self.boxes) if b is not None]
            if tracked:
                self.boxes = tracked
                return tracked
        self.boxes = self.detector.detect(gray)
        self._since_scan = 0
        self.full_scans += 1
        return self.boxes
