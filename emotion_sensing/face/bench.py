"""Speed of the face pipeline on one core (``emobot bench face``), and, in the same run, of the
``fer`` package's pipeline on the same frames when its unpacked wheel is given.

The frames are 640x480 with one real face (scikit-image's astronaut) that drifts sideways and
tilts up to 15 degrees, as a person in front of a webcam does. End to end is everything from
the BGR frame to the probabilities: grey conversion, detection (tracked: a full scan every 30
frames or when the face is lost, a local search between; or a full scan every frame),
alignment or crop, and classification of the face and its mirror image.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import cv2
import numpy as np

from emotion_sensing.machine import machine


def test_frame(width: int = 640, height: int = 480, offset: int = 0, angle: float = 0.0) -> np.ndarray:
    """A 640x480 BGR frame with one real face (scikit-image's astronaut photo) in it, shifted
    ``offset`` pixels sideways and turned ``angle`` degrees about the face."""
    try:
        from skimage.data import astronaut
    except ImportError as error:  # pragma: no cover - scikit-image is a test dependency
        raise RuntimeError("the face fixture needs scikit-image (pip install scikit-image)") from error
    photo = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    frame = np.full((height, width, 3), 90, np.uint8)
    side = min(height, width)
    x0 = (width - side) // 2 + offset
    x0 = max(0, min(width - side, x0))
    placed = cv2.resize(photo, (side, side))[:height]
    if angle:
        # About the face (upper middle of the photo), so it stays in the frame.
        matrix = cv2.getRotationMatrix2D((side * 0.45, side * 0.25), angle, 1.0)
        placed = cv2.warpAffine(placed, matrix, (side, placed.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    frame[:, x0:x0 + side] = placed
    return frame


def video(frames: int = 60) -> List[np.ndarray]:
    """A loop of frames: the face drifts 20 px either way and tilts up to 15 degrees."""
    return [test_frame(offset=int(20 * np.sin(i / 15.0)), angle=15.0 * np.sin(i / 9.0)) for i in range(frames)]


def _p50(values):
    return round(statistics.median(values), 2)


def _one_core_tensorflow() -> bool:
    """Keras on one thread, as everything else here; False when TensorFlow had already started."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        return True
    except RuntimeError:
        return False


def _run(analyse, clip: List[np.ndarray], frames: int) -> Dict[str, Any]:
    found, per_frame = 0, []
    for i in range(frames):
        t = time.perf_counter()
        faces = analyse(clip[i % len(clip)])
        per_frame.append((time.perf_counter() - t) * 1000)
        found += bool(faces)
    return {"ms_per_frame_p50": _p50(per_frame), "ms_per_frame_p95": round(float(np.percentile(per_frame, 95)), 2),
            "fps": round(frames / (sum(per_frame) / 1000), 1), "frames_with_face": found, "frames": frames}


def bench_fer_package(fer_dir: Path, clip: List[np.ndarray], frames: int) -> Dict[str, Any]:
    """The ``fer`` package (25.10.3) as its README runs it: ``FER().detect_emotions(frame)``
    (Haar cascade over the whole frame, its mini-Xception in Keras)."""
    sys.path.insert(0, str(fer_dir))
    try:
        from fer.fer import FER  # noqa: WPS433 - the unpacked wheel, not a dependency
    except ImportError as error:
        raise RuntimeError(f"no fer package under {fer_dir} (pip download --no-deps fer==25.10.3, unzip it)") from error
    finally:
        sys.path.remove(str(fer_dir))
    detector = FER()
    detector.detect_emotions(clip[0])
    result = _run(detector.detect_emotions, clip, frames)
    return {"pipeline": "fer 25.10.3: FER().detect_emotions (Haar, whole frame, every frame; mini-Xception 64px, Keras)",
            **result}


def bench_face(recognizer, frames: int = 300, fer_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Classification per face, full detection scans (CenterFace and Haar), and end-to-end
    frames per second, tracked and with detection on every frame."""
    from emotion_sensing.face.detect import FaceDetector, FaceTracker, to_gray

    cv2.setNumThreads(1)
    one_core_tf = _one_core_tensorflow()
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
    alone = []
    if recognizer.classifier.members:  # what the first network costs without the others
        face = recognizer.classifier._prepare(gray, box)
        for _ in range(200):
            t = time.perf_counter()
            recognizer.classifier._mirrored(face)
            alone.append((time.perf_counter() - t) * 1000)
    float32 = []
    if any(network.precision != "float32" for network, _ in recognizer.classifier.networks):
        from emotion_sensing.face.recognizer import FaceClassifier

        # the same networks from their float32 files, on the same face: what int8 saves
        reference = FaceClassifier(recognizer.classifier.path, precision="float32",
                                   ensemble=bool(recognizer.classifier.members))
        face = reference.prepare(gray, box)
        reference.classify(face)
        for _ in range(200):
            t = time.perf_counter()
            reference.classify(face)
            float32.append((time.perf_counter() - t) * 1000)
    detectors = {getattr(recognizer.detector, "name", "haar"): recognizer.detector}
    if "haar" not in detectors:
        detectors["haar"] = FaceDetector()
    clip = video()
    full_scan, detection_rate = {}, {}
    for name, detector in detectors.items():
        times = []
        for _ in range(30):
            t = time.perf_counter()
            detector.detect(gray)
            times.append((time.perf_counter() - t) * 1000)
        full_scan[name] = _p50(times)
        detection_rate[name] = round(float(np.mean([bool(detector.detect(to_gray(f))) for f in clip])), 3)
    tracker = FaceTracker(recognizer.detector)
    tracked = _run(lambda f: recognizer.analyse(f, tracker=tracker).faces, clip, frames)
    every = _run(lambda f: recognizer.analyse(f).faces, clip, max(60, frames // 3))
    result = {
        "machine": machine(),
        "frame": "640x480 BGR, one face drifting +-20 px and tilting +-15 degrees",
        "threads": 1,
        "model": recognizer.classifier.meta.get("architecture"),
        "input_size": recognizer.classifier.input_size,
        "aligned": recognizer.classifier.aligned,
        "detector": getattr(recognizer.detector, "name", "haar"),
        "networks": recognizer.classifier.describe_networks(),
        "classify_ms_per_face_p50": _p50(classify),
        **({"classify_ms_per_face_p50_first_network_alone": _p50(alone)} if alone else {}),
        **({"classify_ms_per_face_p50_float32": _p50(float32)} if float32 else {}),
        "classify_includes_mirror": recognizer.classifier.flip,
        "detect_full_frame_ms_p50": full_scan,
        "detection_rate_on_the_clip": detection_rate,
        "tracked": {**tracked, "full_scans": tracker.full_scans,
                    "how": f"full scan every {tracker.rescan_every} frames or when the face is lost, "
                           "a local search between"
                           + (f" (its window at {recognizer.detector.near_window} px)"
                              if hasattr(recognizer.detector, "near_window") else "")},
        "detect_every_frame": every,
        # The headline figures, tracked (what the service does with a camera stream).
        "end_to_end_ms_per_frame_p50": tracked["ms_per_frame_p50"],
        "end_to_end_ms_per_frame_p95": tracked["ms_per_frame_p95"],
        "end_to_end_fps": tracked["fps"],
        "frames": frames,
        "frames_with_face": tracked["frames_with_face"],
        "full_scans": tracker.full_scans,
    }
    if fer_dir is not None:
        result["fer_package"] = {**bench_fer_package(Path(fer_dir), clip, max(60, frames // 3)),
                                 "tensorflow_one_thread": one_core_tf}
    return result
