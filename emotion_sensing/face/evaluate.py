"""Measure a face model: FER2013 splits (already-cropped faces) or folders of photos."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from emotion_sensing.evaluation import evaluate
from emotion_sensing.face import fer2013
from emotion_sensing.labels import FOLDER_NAMES, LABELS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
Printer = Callable[[str], None]


def eval_fer(recognizer, datasets_dir: Path, split: str = "PrivateTest",
             log: Optional[Printer] = None) -> Dict[str, Any]:
    """Accuracy of ``recognizer`` (a FaceRecognizer) on one FER2013 split, faces as given."""
    splits = fer2013.load(Path(datasets_dir))
    if split not in splits:
        raise ValueError(f"unknown FER2013 split {split!r}; choose one of {', '.join(splits)}")
    data = splits[split]
    predicted = []
    for i, image in enumerate(data.images):
        analysis = recognizer.analyse(image, cropped=True)
        predicted.append(analysis.faces[0].label)
        if log and (i + 1) % 1000 == 0:
            log(f"  {i + 1}/{len(data)} images")
    result = evaluate([LABELS[i] for i in data.labels], predicted)
    result["dataset"] = f"FER2013 {split}"
    return result


def _folder_label(name: str) -> Tuple[Optional[str], bool]:
    """(canonical label or None, known?) for a class-folder name."""
    key = name.strip().lower()
    if key in LABELS:
        return key, True
    if key in FOLDER_NAMES:
        return FOLDER_NAMES[key], True
    return None, False


def eval_folders(recognizer, root: Path, log: Optional[Printer] = None,
                 crop_threshold: int = 64) -> Dict[str, Any]:
    """Accuracy on ``root/<class>/<image>``; folder names such as anger/angry/happiness are
    mapped onto the 7 labels, classes without a counterpart (contempt) skipped and counted.

    Images no larger than ``crop_threshold`` pixels a side are taken as already-cropped faces;
    larger ones go through face detection (the primary face), and photos with no face found
    are counted, not guessed.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}")
    truth: List[str] = []
    predicted: List[str] = []
    skipped: Dict[str, int] = {}
    unknown_folders: List[str] = []
    no_face = unreadable = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label, known = _folder_label(folder.name)
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if label is None:
            skipped[folder.name] = len(files)
            if not known:
                unknown_folders.append(folder.name)
            continue
        for path in files:
            image = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                unreadable += 1
                continue
            cropped = max(image.shape[:2]) <= crop_threshold
            analysis = recognizer.analyse(image, cropped=cropped)
            if analysis.primary is None:
                no_face += 1
                continue
            truth.append(label)
            predicted.append(analysis.primary.label)
        if log:
            log(f"  {folder.name} -> {label}: {len(files)} images")
    if not truth:
        raise ValueError(f"no labelled face found under {root} (class folders named like angry/happy/sad?)")
    result = evaluate(truth, predicted)
    result.update({"dataset": str(root), "skipped_classes": skipped, "unknown_folders": unknown_folders,
                   "no_face": no_face, "unreadable": unreadable})
    return result


def confusion_png(result: Dict[str, Any], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = result["labels"]
    counts = np.array(result["confusion"], float)
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if counts[i, j]:
                ax.text(j, i, f"{norm[i, j]:.2f}\n{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title or f"accuracy {result['accuracy']}  macro-F1 {result['macro_f1']}  n={result['n']}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
