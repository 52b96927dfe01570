"""FER2013 in its canonical CSV layout (emotion, pixels, Usage), loaded as uint8 arrays.

Parsing the 300 MB CSV takes about half a minute, so the arrays are cached outside the
project (``$XDG_CACHE_HOME/emobot``), keyed by the source file's size and mtime.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

SPLITS = ("Training", "PublicTest", "PrivateTest")
CSV_NAME = "fer2013.csv.gz"


@dataclass
class FerSplit:
    name: str
    images: np.ndarray   # (n, 48, 48) uint8
    labels: np.ndarray   # (n,) int, FER2013 order == LABELS order

    def __len__(self) -> int:
        return len(self.labels)


WHERE = "See README.md, 'Datasets', for where to get it and pass its folder with --data."


def find_csv(path: Path) -> Path:
    """Accept the dataset folder, the .csv.gz or a plain .csv."""
    path = Path(path)
    if path.is_dir():
        for name in (CSV_NAME, "fer2013.csv"):
            if (path / name).exists():
                return path / name
        if (path / "fer2013" / CSV_NAME).exists():
            return path / "fer2013" / CSV_NAME
        raise FileNotFoundError(f"FER2013 ({CSV_NAME} or fer2013.csv) not found in {path} or {path / 'fer2013'}. {WHERE}")
    if not path.exists():
        raise FileNotFoundError(f"FER2013 not found at {path}. {WHERE}")
    return path


def cache_key(source: Path) -> str:
    """A name for the CSV at ``source`` that changes when the file does (caches derived from it use it)."""
    return _cache_file(Path(source)).stem


def _cache_file(source: Path) -> Path:
    stat = source.stat()
    key = hashlib.sha1(f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emobot"
    return root / f"fer2013-{key}.npz"


def _parse(source: Path) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    opener = gzip.open if source.suffix == ".gz" else open
    labels, usages, rows = [], [], []
    with opener(source, "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{source}: not the FER2013 layout, missing columns {sorted(missing)}")
        for row in reader:
            labels.append(int(row["emotion"]))
            usages.append(SPLITS.index(row["Usage"]))
            rows.append(row["pixels"])
    pixels = np.loadtxt(io.StringIO("\n".join(rows)), dtype=np.uint8)
    return pixels.reshape(-1, 48, 48), np.array(labels, np.int64), np.array(usages, np.int8)


def load(path: Path) -> Dict[str, FerSplit]:
    """All three splits as :class:`FerSplit`, exactly as the file has them."""
    source = find_csv(path)
    cache = _cache_file(source)
    if cache.exists():
        data = np.load(cache)
        images, labels, usages = data["images"], data["labels"], data["usages"]
    else:
        images, labels, usages = _parse(source)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, images=images, labels=labels, usages=usages)
        tmp.replace(cache)
    return {name: FerSplit(name, images[usages == i], labels[usages == i]) for i, name in enumerate(SPLITS)}


def clean_training(splits: Dict[str, FerSplit]) -> Tuple[FerSplit, Dict[str, int]]:
    """The Training rows :func:`clean_training_rows` keeps, and what it dropped."""
    keep, counts = clean_training_rows(splits)
    train = splits["Training"]
    return FerSplit("Training", train.images[keep], train.labels[keep]), counts


def clean_training_rows(splits: Dict[str, FerSplit]) -> Tuple[np.ndarray, Dict[str, int]]:
    """(mask of the Training rows kept, counts dropped): Training rows without leakage or noise that the dataset README documents.

    Drops rows pixel-identical to any PublicTest/PrivateTest image, near-blank images
    (pixel std below 1), every row of a duplicate group with conflicting labels, and the
    extra copies of agreeing duplicates. Test splits are left as published so figures
    compare with other work.
    """
    train = splits["Training"]
    test_hashes = {
        hashlib.sha1(img.tobytes()).digest()
        for name in ("PublicTest", "PrivateTest") for img in splits[name].images
    }
    hashes = [hashlib.sha1(img.tobytes()).digest() for img in train.images]
    groups: Dict[bytes, set] = {}
    for h, label in zip(hashes, train.labels):
        groups.setdefault(h, set()).add(int(label))
    keep = np.ones(len(train), bool)
    seen: set = set()
    counts = {"leaked": 0, "blank": 0, "conflicting": 0, "duplicate": 0}
    stds = train.images.reshape(len(train), -1).std(axis=1)
    for i, h in enumerate(hashes):
        if h in test_hashes:
            counts["leaked"] += 1
        elif stds[i] < 1.0:
            counts["blank"] += 1
        elif len(groups[h]) > 1:
            counts["conflicting"] += 1
        elif h in seen:
            counts["duplicate"] += 1
        else:
            seen.add(h)
            continue
        keep[i] = False
    return keep, counts
