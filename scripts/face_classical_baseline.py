#!/usr/bin/env python
"""Seed 004's classical route on the same aligned faces as the CNNs (see
emotion_sensing/face/classical.py), written to models/face_emotion.classical.json for the card.

    .venv/bin/python scripts/face_classical_baseline.py --data ../shared/datasets

Trained on FER2013 Training (cleaned) and the in-the-wild training persons; the two-stream
network stops on PublicTest; scored on PrivateTest, the in-the-wild validation persons and
KDEF3 (never trained on). About 5 minutes on one core.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from script_arguments import arguments  # noqa: E402

from emotion_sensing.config import DEFAULT_MODELS_DIR  # noqa: E402


def kdef_faces(root: Path):
    from emotion_sensing.face.align import aligned_face
    from emotion_sensing.face.centerface import CenterFaceDetector
    from emotion_sensing.face.evaluate import IMAGE_SUFFIXES
    from emotion_sensing.labels import LABELS, read_label

    detector = CenterFaceDetector()
    images, labels, missed = [], [], 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label, _ = read_label(folder.name)
        for path in sorted(folder.iterdir()):
            if label is None or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            gray = cv2.imread(os.fspath(path), cv2.IMREAD_GRAYSCALE)
            boxes = detector.detect(gray) if gray is not None else []
            if not boxes:
                missed += 1
                continue
            images.append(aligned_face(gray, max(boxes, key=lambda b: b.area).landmarks))
            labels.append(LABELS.index(label))
    return {"images": np.array(images, np.uint8), "labels": np.array(labels)}, missed


def main() -> int:
    args = arguments(__doc__, ("fer2013", "faces_in_the_wild"), json=None, more=lambda parser: parser.add_argument(
        "--out", type=Path, default=Path(DEFAULT_MODELS_DIR) / "face_emotion.classical.json",
        help="where to write the figures (default: models/face_emotion.classical.json, the card's)"))
    data = args.data
    cv2.setNumThreads(1)
    log = lambda m: print(time.strftime("%H:%M:%S"), m, flush=True)  # noqa: E731
    from emotion_sensing.face.classical import run_baseline
    from emotion_sensing.face.train import training_data

    arrays = training_data(data, aligned=True, wild=data / "faces_in_the_wild", log=log)
    sets = {"train": {"images": arrays["train"].images, "labels": arrays["train"].labels},
            "selection": {"images": arrays["splits"]["PublicTest"].images, "labels": arrays["splits"]["PublicTest"].labels},
            "fer2013_private": {"images": arrays["splits"]["PrivateTest"].images,
                                "labels": arrays["splits"]["PrivateTest"].labels},
            "wild_validation": {"images": arrays["wild_validation"].images, "labels": arrays["wild_validation"].labels}}
    if (data / "kdef3").exists():
        sets["kdef3"], missed = kdef_faces(data / "kdef3")
        log(f"KDEF3: {len(sets['kdef3']['labels'])} faces aligned, {missed} not found")
    started = time.time()
    report = run_baseline(sets, log=log)
    report.update({"trained_on": "FER2013 Training (cleaned) + in-the-wild training persons, aligned faces",
                   "selected_on": "FER2013 PublicTest (two-stream early stopping); the shallow network stops on "
                                  "10% of its training rows",
                   "minutes": round((time.time() - started) / 60, 1),
                   "command": "python scripts/face_classical_baseline.py --data ../shared/datasets"})
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
