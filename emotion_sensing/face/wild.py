"""The in-the-wild face set (``faces_in_the_wild/<class>/<Person_Name>_NNNN.jpg``), split by person.

No person is in both parts: a person's photos go to validation when a hash of the name falls in
the validation share, so the split is the same on every machine and for every run. Photos are
tight 128x128 crops: :func:`padded` gives the detector the margin it needs.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np

from emotion_sensing.labels import FOLDER_NAMES, LABELS

FOLDER = "faces_in_the_wild"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
VALIDATION_SHARE = 0.2
_NUMBER = re.compile(r"_?\d+$")


@dataclass(frozen=True)
class Photo:
    path: Path
    label: str
    person: str


def person_of(path: Path) -> str:
    """``Abdoulaye_Wade_0002.jpg`` -> ``Abdoulaye_Wade``; ``Dwarakish_101.jpg`` -> ``Dwarakish``."""
    return _NUMBER.sub("", Path(path).stem)


def is_validation(person: str, share: float = VALIDATION_SHARE) -> bool:
    return (zlib.crc32(person.encode("utf-8")) % 1000) < share * 1000


def photos(root: Path) -> List[Photo]:
    """Every labelled photo under ``root`` (the dataset folder or its parent)."""
    root = Path(root)
    if (root / FOLDER).is_dir():
        root = root / FOLDER
    if not root.is_dir():
        raise FileNotFoundError(f"no {FOLDER} folder at {root}")
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        key = folder.name.lower()
        label = key if key in LABELS else FOLDER_NAMES.get(key)
        if label is None:
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                out.append(Photo(path, label, person_of(path)))
    if not out:
        raise FileNotFoundError(f"no labelled photos under {root}")
    return out


def split(root: Path, share: float = VALIDATION_SHARE) -> Dict[str, List[Photo]]:
    """{"train": [...], "validation": [...]}, by person."""
    every = photos(root)
    return {"train": [p for p in every if not is_validation(p.person, share)],
            "validation": [p for p in every if is_validation(p.person, share)]}


def padded(gray: np.ndarray, fraction: float = 0.25) -> np.ndarray:
    """The tight crop with a border of ``fraction`` of its size in its median grey."""
    pad = int(round(max(gray.shape[:2]) * fraction))
    return cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=int(np.median(gray)))
