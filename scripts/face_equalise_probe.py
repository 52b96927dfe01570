#!/usr/bin/env python
"""Does equalising a face's histogram before the shipped networks read KDEF3's angry faces better?
Measured and not shipped (see models/face_emotion.md, "Limits").

    .venv/bin/python scripts/face_equalise_probe.py --data ../shared/datasets [--json out.json]

The networks are unchanged; only the prepared face (aligned or cropped, as each network takes it)
is remapped before it reaches them: as it is, OpenCV's global ``equalizeHist``, or CLAHE (clip
2.0 over 4x4 tiles). KDEF3 (never trained on; posed studio photos, lit unlike FER2013) and the
in-the-wild validation persons (padded photos) go through the detector as `emobot eval face
--cross` reads them; photos without a face found are left out. About 4 minutes on one core of the
2-core development machine.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from script_arguments import arguments  # noqa: E402

Remap = Optional[Callable[[np.ndarray], np.ndarray]]
VARIANTS: Dict[str, Remap] = {
    "as is": None,
    "equalizeHist": cv2.equalizeHist,
    "CLAHE 2.0, 4x4": cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply,
}


def remapped(face: np.ndarray, remap: Remap) -> np.ndarray:
    """The prepared face (float32, 0-255) through ``remap`` (which takes 8-bit gray)."""
    if remap is None:
        return face
    return remap(np.clip(face, 0, 255).astype(np.uint8)).astype(np.float32)


def main(argv=None) -> int:
    args = arguments(__doc__, ("faces_in_the_wild", "kdef3"), argv, model="face_emotion.tflite")
    from emotion_sensing.face import wild
    from emotion_sensing.face.evaluate import _photos_through_the_pipeline, class_folder_photos
    from emotion_sensing.face.recognizer import FaceClassifier, FaceRecognizer

    recognizer = FaceRecognizer(args.model)
    sets = {"kdef3": (class_folder_photos(args.data / "kdef3"), False),
            "wild": ([(p.path, p.label) for p in wild.split(args.data / wild.FOLDER)["validation"]], True)}
    prepare = FaceClassifier._prepare
    rows = []
    try:
        for name, remap in VARIANTS.items():
            FaceClassifier._prepare = lambda self, gray, box=None, remap=remap: remapped(prepare(self, gray, box), remap)
            started = time.time()
            got = {key: _photos_through_the_pipeline(recognizer, items, pad) for key, (items, pad) in sets.items()}
            kdef = got["kdef3"]
            row = {"variant": name, "kdef3_accuracy": kdef["accuracy"], "kdef3_macro_f1": kdef["macro_f1"],
                   "kdef3_angry_read": dict(zip(kdef["labels"], kdef["confusion"][kdef["labels"].index("angry")])),
                   "wild_accuracy": got["wild"]["accuracy"], "wild_macro_f1_5": got["wild"]["macro_f1_five"],
                   "wild_neutral_read_angry": got["wild"]["neutral_as_angry"],
                   "seconds": round(time.time() - started, 1)}
            rows.append(row)
            print(f"{name:<16} KDEF3 {row['kdef3_accuracy']:.4f} (angry read angry "
                  f"{row['kdef3_angry_read'].get('angry', 0)}, sad {row['kdef3_angry_read'].get('sad', 0)})  "
                  f"in the wild: accuracy {row['wild_accuracy']:.4f}, macro-F1 over five {row['wild_macro_f1_5']:.4f}, "
                  f"neutral read angry {row['wild_neutral_read_angry']:.1%}  ({row['seconds']:.0f} s)", flush=True)
    finally:
        FaceClassifier._prepare = prepare
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
