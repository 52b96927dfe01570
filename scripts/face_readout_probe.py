#!/usr/bin/env python
"""Can the shipped face networks read KDEF3's angry faces better without retraining? Two read-outs,
measured and not shipped (see models/face_emotion.md, "Limits").

    .venv/bin/python scripts/face_readout_probe.py --data ../shared/datasets [--json out.json]

- **Prior adjustment**: tau x log(FER2013 training prior) subtracted from the calibrated
  log-probabilities (logit adjustment), tau from 0 to 1.
- **Test-time augmentation beyond the mirror**: each network's mirror-averaged probabilities on the
  prepared 48x48 face zoomed (0.93, 1.08, 1.15 about its centre) or shifted (2 px each way), every
  combination of up to three variants that keeps the face as it is, averaged before the ensemble's
  weights and temperature. Each added variant is two more passes per network.

Selection is as the shipped ensemble weight's was: the mean of FER2013 PublicTest accuracy and the
in-the-wild validation persons' macro-F1 over five. KDEF3 (never trained on) and PrivateTest are
only reported. Faces are read as `emobot eval face --cross` reads them: FER2013 crops as each
network was trained (aligned by landmarks or not), photos through the detector (in-the-wild ones
padded), the primary face. Photos without a face found are left out (as there).

About 25 minutes on one core of the 2-core development machine (every variant is a pass of each
network); the probabilities are cached per model (in ``$EMOBOT_CACHE``, else ``~/.cache/emobot``),
so a second run on the same networks only scores.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from script_arguments import arguments  # noqa: E402

from emotion_sensing.labels import LABELS  # noqa: E402

#: name: (zoom about the centre, x shift, y shift) of the prepared 48x48 face
VARIANTS = {"as is": (1.0, 0, 0), "zoom 1.08": (1.08, 0, 0), "zoom 0.93": (0.93, 0, 0), "zoom 1.15": (1.15, 0, 0),
            "up 2 px": (1.0, 0, -2), "down 2 px": (1.0, 0, 2), "left 2 px": (1.0, -2, 0), "right 2 px": (1.0, 2, 0)}
FIVE = [LABELS.index(label) for label in ("angry", "happy", "neutral", "sad", "surprise")]
ANGRY, NEUTRAL = LABELS.index("angry"), LABELS.index("neutral")


def warp(face: np.ndarray, variant) -> np.ndarray:
    zoom, dx, dy = variant
    if variant == (1.0, 0, 0):
        return face
    c = (face.shape[1] - 1) / 2.0
    matrix = np.array([[zoom, 0, c - zoom * c + dx], [0, zoom, c - zoom * c + dy]], np.float32)
    return cv2.warpAffine(face, matrix, face.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def variant_probs(networks, prepared) -> np.ndarray:
    """(variants, networks, labels): each network's mirror-averaged probabilities per variant."""
    faces = prepared if isinstance(prepared, tuple) else (prepared,)
    return np.stack([np.stack([network._mirrored(np.ascontiguousarray(warp(face, variant)))
                               for (network, _), face in zip(networks, faces)])
                     for variant in VARIANTS.values()])


def collect(recognizer, data: Path) -> Dict[str, np.ndarray]:
    from emotion_sensing.face import fer2013, wild
    from emotion_sensing.face.detect import primary
    from emotion_sensing.face.evaluate import _aligned_fer, _photos, class_folder_photos

    classifier = recognizer.classifier
    networks = classifier.networks
    started = time.time()
    splits = fer2013.load(data / "fer2013")
    aligned = _aligned_fer(classifier, data / "fer2013", splits, print)
    out: Dict[str, np.ndarray] = {"train_counts": np.bincount(np.array(splits["Training"].labels),
                                                              minlength=len(LABELS))}
    for name in ("PublicTest", "PrivateTest"):
        images = splits[name].images
        out[name] = np.stack([variant_probs(networks, classifier.prepare_crop(
            image, image if aligned is None else aligned[name][i])) for i, image in enumerate(images)])
        out[name + "_y"] = np.array(splits[name].labels)
        print(f"{name}: {len(images)} crops, {time.time() - started:.0f} s", flush=True)

    def photos(items, pad: bool):
        rows, labels = [], []
        for gray, label in _photos(items, pad):
            if gray is None:
                continue
            box = primary(recognizer.detector.detect(gray), gray.shape[1], gray.shape[0])
            if box is None:
                continue
            rows.append(variant_probs(networks, classifier.prepare(gray, box)))
            labels.append(LABELS.index(label))
        return np.stack(rows), np.array(labels)

    validation = wild.split(data / wild.FOLDER)["validation"]
    out["wild"], out["wild_y"] = photos([(p.path, p.label) for p in validation], pad=True)
    print(f"in the wild, validation persons: {len(out['wild_y'])} faces, {time.time() - started:.0f} s", flush=True)
    out["kdef3"], out["kdef3_y"] = photos(class_folder_photos(data / "kdef3"), pad=False)
    print(f"KDEF3: {len(out['kdef3_y'])} faces, {time.time() - started:.0f} s", flush=True)
    return out


def cache_file(classifier) -> Path:
    """Where the probabilities of these networks (the files they run, and the variants) are kept."""
    digest = hashlib.sha1(repr(sorted(VARIANTS.items())).encode())
    for network, weight in classifier.networks:
        digest.update(network.runs.read_bytes() + repr(weight).encode())
    root = Path(os.environ.get("EMOBOT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emobot")
    return root / f"face-readout-probe-{digest.hexdigest()[:16]}.npz"


def macro5(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([2 * ((predicted == c) & (truth == c)).sum()
                          / max(1, (predicted == c).sum() + (truth == c).sum()) for c in FIVE]))


def scores(probs: Dict[str, np.ndarray], truth: Dict[str, np.ndarray]) -> Dict[str, float]:
    pred = {key: p.argmax(1) for key, p in probs.items()}
    wild_neutral = truth["wild"] == NEUTRAL
    angry_faces = truth["kdef3"] == ANGRY
    return {
        "select": round((float((pred["PublicTest"] == truth["PublicTest"]).mean())
                         + macro5(truth["wild"], pred["wild"])) / 2, 4),
        "publictest_accuracy": round(float((pred["PublicTest"] == truth["PublicTest"]).mean()), 4),
        "privatetest_accuracy": round(float((pred["PrivateTest"] == truth["PrivateTest"]).mean()), 4),
        "wild_macro_f1_5": round(macro5(truth["wild"], pred["wild"]), 4),
        "wild_neutral_read_angry": round(float((pred["wild"][wild_neutral] == ANGRY).mean()), 4),
        "kdef3_accuracy": round(float((pred["kdef3"] == truth["kdef3"]).mean()), 4),
        "kdef3_angry_read_angry": int((pred["kdef3"][angry_faces] == ANGRY).sum()),
        "kdef3_angry_faces": int(angry_faces.sum()),
    }


def main(argv=None) -> int:
    args = arguments(__doc__, ("fer2013", "faces_in_the_wild", "kdef3"), argv, model="face_emotion.tflite")
    from emotion_sensing.face.recognizer import FaceRecognizer, with_temperature

    recognizer = FaceRecognizer(args.model)
    classifier = recognizer.classifier
    weights = np.array([w for _, w in classifier.networks])
    cache = cache_file(classifier)
    if cache.exists():
        print(f"reusing {cache}")
        data = dict(np.load(cache))
    else:
        data = collect(recognizer, args.data)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **data)
    sets = ("PublicTest", "PrivateTest", "wild", "kdef3")
    truth = {key: data[key + "_y"] for key in sets}

    def read(chosen: List[int]) -> Dict[str, np.ndarray]:
        """Calibrated probabilities: the chosen variants averaged, then the ensemble's weights."""
        return {key: with_temperature((data[key][:, chosen] * weights[None, None, :, None]).sum(2).mean(1),
                                      classifier.temperature) for key in sets}

    names = list(VARIANTS)
    report: Dict[str, list] = {"prior_adjustment": [], "test_time_variants": []}
    prior = data["train_counts"] / data["train_counts"].sum()
    as_is = read([0])
    for tau in (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0):
        adjusted = {key: np.log(np.clip(p, 1e-12, None)) - tau * np.log(prior) for key, p in as_is.items()}
        report["prior_adjustment"].append({"tau": tau, **scores(adjusted, truth)})
    for size in (1, 2, 3):
        for combo in itertools.combinations(range(len(names)), size):
            if 0 in combo:  # the face as it is always counts
                report["test_time_variants"].append({"variants": [names[i] for i in combo],
                                                     **scores(read(list(combo)), truth)})
    report["test_time_variants"].sort(key=lambda row: -row["select"])
    header = "select | PublicTest | PrivateTest | wild mF1(5) | wild neutral->angry | KDEF3 | KDEF3 angry read angry"

    def line(label: str, row: Dict) -> str:
        return (f"{label:<34} {row['select']:.4f} | {row['publictest_accuracy']:.4f} | {row['privatetest_accuracy']:.4f}"
                f" | {row['wild_macro_f1_5']:.4f} | {row['wild_neutral_read_angry']:.3f} | {row['kdef3_accuracy']:.4f}"
                f" | {row['kdef3_angry_read_angry']}/{row['kdef3_angry_faces']}")

    print("\nprior adjustment (tau):", header, sep="\n")
    for row in report["prior_adjustment"]:
        print(line(f"tau {row['tau']}", row))
    rows = report["test_time_variants"]
    print(f"\ntest-time variants ({len(rows)} combinations), best 10 by the selection figure:", header, sep="\n")
    for row in rows[:10]:
        print(line(" + ".join(row["variants"]), row))
    best = max(rows, key=lambda row: row["kdef3_accuracy"])
    print("\nthe best on KDEF3 of any combination (not a choice: KDEF3 is never selected on):")
    print(line(" + ".join(best["variants"]), best))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
