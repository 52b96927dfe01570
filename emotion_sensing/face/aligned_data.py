"""Training and evaluation arrays of aligned 48x48 faces, made once and cached.

FER2013's crops are 48x48 and already roughly in place: each is enlarged 2x with a 25% border
so CenterFace finds its landmarks (about 96% of them), then warped onto the template
(:mod:`.align`); a crop with no face found is kept as published. The in-the-wild photos are
padded and go through CenterFace at full size, as a camera frame would; a photo with no face
found is left out and counted. The arrays are cached under ``~/.cache/emobot`` (about 2 minutes
of CenterFace on one core to make for FER2013).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np

from emotion_sensing.face import wild
from emotion_sensing.face.align import TEMPLATE_48, aligned_face

Printer = Callable[[str], None]
VERSION = "1"


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emobot"


def _key(*parts) -> str:
    text = ":".join(str(p) for p in (VERSION, TEMPLATE_48.tobytes().hex(), *parts))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _detector():
    from emotion_sensing.face.centerface import CenterFaceDetector

    return CenterFaceDetector(max_width=10_000, min_face=10)


def crop_landmarks(image: np.ndarray, detector=None) -> Optional[Tuple[Tuple[float, float], ...]]:
    """The five landmarks of a tight face crop (any size, gray), found on a copy enlarged to 96 px
    with a 25% border; None when no face is found."""
    detector = detector or _detector()
    scale = 96.0 / max(image.shape[:2])
    big = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                     interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    pad = 24
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=int(np.median(image)))
    # The whole enlarged crop, whatever the detector's frame-size and face-size settings.
    boxes = detector.detect(big, max_width=big.shape[1], min_face=10)
    if not boxes or not boxes[0].landmarks:
        return None
    box = max(boxes, key=lambda b: b.area)
    return tuple(((x - pad) / scale, (y - pad) / scale) for x, y in box.landmarks)


def align_crops(images: np.ndarray, detector=None, log: Optional[Printer] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(aligned images, found mask) for tight 48x48 crops; unfound crops are returned as given."""
    detector = detector or _detector()
    out = images.copy()
    found = np.zeros(len(images), bool)
    for i, image in enumerate(images):
        points = crop_landmarks(image, detector)
        if points is not None:
            out[i] = aligned_face(image, points, 48)
            found[i] = True
        if log and (i + 1) % 5000 == 0:
            log(f"  aligned {i + 1}/{len(images)} crops ({found[:i + 1].mean():.1%} with landmarks)")
    return out, found


def aligned_fer_at(fer_path: Path, splits: Optional[Dict] = None,
                   log: Optional[Printer] = None) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """:func:`aligned_fer` for the FER2013 at ``fer_path`` (its folder, the datasets folder above
    it, or the CSV); ``splits`` when already loaded from there."""
    from emotion_sensing.face import fer2013

    source = fer2013.find_csv(Path(fer_path))
    splits = splits if splits is not None else fer2013.load(source)
    return aligned_fer(splits, fer2013.cache_key(source), log=log)


def aligned_fer(splits: Dict, source_key: str, log: Optional[Printer] = None) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{split name: (aligned images, found)} for every FER2013 split, cached."""
    cache = _cache_dir() / f"fer2013-aligned-{_key(source_key, *(len(s) for s in splits.values()))}.npz"
    if cache.exists():
        data = np.load(cache)
        return {name: (data[f"{name}_images"], data[f"{name}_found"]) for name in splits}
    detector = _detector()
    out = {}
    for name, split in splits.items():
        if log:
            log(f"aligning FER2013 {name} ({len(split)} crops) with CenterFace landmarks")
        out[name] = align_crops(split.images, detector, log)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"{n}_images": v[0] for n, v in out.items()}, **{f"{n}_found": v[1] for n, v in out.items()})
    tmp.replace(cache)
    return out


def wild_faces(root: Path, detector=None) -> Dict[str, Dict[str, np.ndarray]]:
    """{"train"|"validation": {"images", "labels" (LABELS index), "persons"}} of aligned faces
    from the in-the-wild set, plus "missed" (photos with no face found), cached."""
    from emotion_sensing.labels import LABELS

    parts = wild.split(root)
    every = parts["train"] + parts["validation"]
    newest = max(p.path.stat().st_mtime_ns for p in every)
    cache = _cache_dir() / f"wild-aligned-{_key(Path(root).resolve(), len(every), newest)}.npz"
    if cache.exists():
        data = np.load(cache)
        return {part: {k: data[f"{part}_{k}"] for k in ("images", "labels", "persons", "missed")}
                for part in parts}
    detector = detector or _detector()
    out = {}
    for part, photos in parts.items():
        images, labels, persons, missed = [], [], [], []
        for photo in photos:
            gray = cv2.imread(os.fspath(photo.path), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                continue
            frame = wild.padded(gray)
            boxes = detector.detect(frame)
            if not boxes:
                missed.append(str(photo.path.name))
                continue
            box = max(boxes, key=lambda b: b.area)
            images.append(aligned_face(frame, box.landmarks, 48))
            labels.append(LABELS.index(photo.label))
            persons.append(photo.person)
        out[part] = {"images": np.array(images, np.uint8).reshape(-1, 48, 48), "labels": np.array(labels, int),
                     "persons": np.array(persons), "missed": np.array(missed)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"{part}_{k}": v for part, d in out.items() for k, v in d.items()})
    tmp.replace(cache)
    return out
