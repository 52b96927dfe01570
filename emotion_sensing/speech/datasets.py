"""Speech emotion corpora mapped onto the canonical labels, and a cache of their features.

- RAVDESS speech (``ravdess/labels.csv``: ``file,speaker,emotion,duration_s``; 16 kHz FLAC
  under ``Actor_NN/``), mapped with :data:`emotion_sensing.labels.RAVDESS` (calm -> neutral).
- A manifest CSV of ``file,label`` with an optional third column ``speaker`` (header
  optional); relative paths are relative to the manifest's folder. Without speakers all
  clips share one speaker normaliser, as one live session would.

Extracted features are cached outside the project (``~/.cache/emobot/speech`` or
``EMOBOT_CACHE``), keyed by the files' paths, sizes and times and the feature version.
"""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from emotion_sensing.labels import RAVDESS, canonical

Printer = Callable[[str], None]


@dataclass
class SpeechSet:
    """Audio files of one corpus with canonical labels and speaker ids."""

    name: str
    files: List[Path]
    labels: List[str]
    speakers: List[str]
    skipped: int = 0
    notes: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{what} not found at {path}. See README.md, 'Voice', for the data and pass its folder with --data."
        )
    return path


def load_ravdess(root: Path) -> SpeechSet:
    """RAVDESS speech from ``root/labels.csv`` (``root`` is the ravdess folder or the datasets folder)."""
    root = Path(root)
    if not (root / "labels.csv").exists() and (root / "ravdess" / "labels.csv").exists():
        root = root / "ravdess"
    path = _require(root / "labels.csv", "RAVDESS labels.csv")
    files, labels, speakers, skipped = [], [], [], 0
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            label = RAVDESS.get(row["emotion"].strip().lower())
            if label is None:
                skipped += 1
                continue
            files.append(root / row["file"])
            labels.append(label)
            speakers.append(row["speaker"])
    return SpeechSet("ravdess", files, labels, speakers, skipped)


def load_manifest(path: Path) -> SpeechSet:
    """A CSV of ``file,label[,speaker]``; labels by any name :func:`labels.canonical` knows."""
    path = _require(Path(path), "manifest")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["file", "label"]:
        rows = rows[1:]
    files, labels, speakers, skipped, notes = [], [], [], 0, []
    for row in rows:
        if len(row) < 2:
            skipped += 1
            continue
        try:
            label = canonical(row[1])
        except KeyError:
            label = None
        file = Path(row[0].strip())
        file = file if file.is_absolute() else path.parent / file
        if label is None or not file.exists():
            skipped += 1
            if not file.exists() and len(notes) < 5:
                notes.append(f"missing file {file}")
            continue
        files.append(file)
        labels.append(label)
        speakers.append(row[2].strip() if len(row) > 2 and row[2].strip() else "all")
    return SpeechSet(f"manifest/{path.name}", files, labels, speakers, skipped, notes)


def cache_dir() -> Path:
    return Path(os.environ.get("EMOBOT_CACHE", Path.home() / ".cache" / "emobot")) / "speech"


def _cache_key(files: List[Path], version: int) -> str:
    digest = hashlib.sha256(f"v{version}".encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file.resolve()}|{stat.st_size}|{int(stat.st_mtime)}\n".encode())
    return digest.hexdigest()[:16]


@dataclass
class SetFeatures:
    """Utterance vectors (NaN rows for silent clips) and voiced MFCC frames of a SpeechSet."""

    vectors: np.ndarray
    mfcc: List[np.ndarray]

    @property
    def usable(self) -> np.ndarray:
        return ~np.isnan(self.vectors).any(axis=1)


def extract(dataset: SpeechSet, log: Optional[Printer] = None, use_cache: bool = True) -> SetFeatures:
    """Features of every clip of ``dataset``, from the cache when the files are unchanged."""
    from emotion_sensing.speech.audio import load
    from emotion_sensing.speech.features import FEATURE_VERSION, N_FEATURES, N_MFCC, frame_features, summarise

    path = cache_dir() / f"{dataset.name.replace('/', '_')}-{_cache_key(dataset.files, FEATURE_VERSION)}.npz"
    if use_cache and path.exists():
        with np.load(path) as data:
            offsets = data["offsets"]
            frames = data["mfcc"]
            return SetFeatures(data["vectors"], [frames[a:b] for a, b in zip(offsets[:-1], offsets[1:])])
    vectors = np.full((len(dataset), N_FEATURES), np.nan, dtype=np.float32)
    mfcc: List[np.ndarray] = []
    for i, file in enumerate(dataset.files):
        frames = frame_features(load(file))
        vector = summarise(frames)
        if vector is not None:
            vectors[i] = vector
        mfcc.append(frames.mfcc() if vector is not None else np.zeros((0, N_MFCC), dtype=np.float32))
        if log and (i + 1) % 200 == 0:
            log(f"  features: {i + 1}/{len(dataset)} clips")
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.cumsum([0] + [len(m) for m in mfcc])
        np.savez(path, vectors=vectors, mfcc=np.concatenate(mfcc) if mfcc else np.zeros((0, N_MFCC)), offsets=offsets)
    return SetFeatures(vectors, mfcc)
