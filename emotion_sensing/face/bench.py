"""Speed of the face pipeline on one thread (``emobot bench face``)."""
from __future__ import annotations

import statistics
import time
from typing import Any, Dict

import cv2
import numpy as np

from emotion_sensing.machine import machine


def test_frame(width: int = 640, height: int = 480, offset: int = 0) -> np.ndarray:
    """A 640x480 BGR frame with one real face (scikit-image's astronaut photo) in it."""
    try:
        from skimage.data import astronaut
    except ImportError as error:  # pragma: no cover - scikit-image is a test dependency
        raise RuntimeError("the face fixture needs scikit-image (pip install scikit-image)") from error
    photo = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    frame = np.full((height, width, 3), 90, np.uint8)
    side = min(height, width)
    x0 = (width - side) // 2 + offset
    x0 = max(0, min(width - side, x0))
    frame[:, x0:x0 + side] = cv2.resize(photo, (side, side))[:height]
    return frame


def _p50(values):
    return round(statistics.median(values), 2)


def bench_face(recognizer, frames: int = 300) -> Dict[str, Any]:
    """Classification per face, a full detection scan, and tracked end-to-end frames per second."""
    from emotion_sensing.face.detect import FaceTracker, to_gray

    cv2.setNumThreads(1)
    frame = test_frame()
    gray = to_gray(frame)
    recognizer.warm_up()
    boxes = recognizer.detector.detect(gray)
    if not boxes:
        raise RuntimeError("no face found in the benchmark frame")
    box = boxes[0]
    classify = []
    for _ in range(200):
        t = time.perf_counter()
        recognizer.classifier.classify(recognizer.classifier.prepare(gray, box))
        classify.append((time.perf_counter() - t) * 1000)
    full = []
    for _ in range(30):
        t = time.perf_counter()
        recognizer.detector.detect(gray)
        full.append((time.perf_counter() - t) * 1000)
    # A face that drifts a few pixels per frame, as in a webcam.
    moving = [test_frame(offset=int(20 * np.sin(i / 15.0))) for i in range(60)]
    tracker = FaceTracker(recognizer.detector)
    found = 0
    per_frame = []
    for i in range(frames):
        t = time.perf_counter()
        analysis = recognizer.analyse(moving[i % len(moving)], tracker=tracker)
        per_frame.append((time.perf_counter() - t) * 1000)
        found += analysis.primary is not None
    total = sum(per_frame) / 1000
    return {
        "machine": machine(),
        "frame": "640x480, one face",
        "threads": 1,
        "model": recognizer.classifier.meta.get("architecture"),
        "input_size": recognizer.classifier.input_size,
        "classify_ms_per_face_p50": _p50(classify),
        "classify_includes_mirror": recognizer.classifier.flip,
        "detect_full_frame_ms_p50": _p50(full),
        "end_to_end_ms_per_frame_p50": _p50(per_frame),
        "end_to_end_ms_per_frame_p95": round(float(np.percentile(per_frame, 95)), 2),
        "end_to_end_fps": round(frames / total, 1),
        "frames": frames,
        "frames_with_face": found,
        "full_scans": tracker.full_scans,
    }
