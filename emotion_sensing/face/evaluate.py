"""Measure a face model: FER2013 splits (already-cropped faces) or folders of photos."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from emotion_sensing.evaluation import evaluate
from emotion_sensing.face import fer2013
from emotion_sensing.labels import LABELS, class_folders, read_label
from emotion_sensing.manifest import LABEL_COLUMNS, read_manifest

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
Printer = Callable[[str], None]


def eval_fer(recognizer, datasets_dir: Path, split: str = "PrivateTest",
             log: Optional[Printer] = None) -> Dict[str, Any]:
    """Accuracy of ``recognizer`` (a FaceRecognizer) on one FER2013 split, faces as given."""
    splits = fer2013.load(Path(datasets_dir))
    if split not in splits:
        raise ValueError(f"unknown FER2013 split {split!r}; choose one of {', '.join(splits)}")
    data = splits[split]
    aligned = _aligned_fer(recognizer.classifier, Path(datasets_dir), splits, log)
    probs = _crop_probs(recognizer.classifier, data.images, aligned[split] if aligned else None, log=log)
    result = evaluate([LABELS[i] for i in data.labels], [LABELS[i] for i in probs.argmax(1)])
    result["dataset"] = f"FER2013 {split}"
    return result


FIVE = ("angry", "happy", "neutral", "sad", "surprise")


def wild_summary(report: Dict[str, Any]) -> Dict[str, Any]:
    """The figures the in-the-wild check is judged on, from an :func:`evaluate` report: macro-F1
    over the five classes with enough photos, and the share of neutral faces read as angry (a
    calm person apologised to)."""
    per_class = report["per_class"]
    f1 = [per_class[label]["f1"] or 0.0 for label in FIVE if per_class[label]["support"]]
    labels = report["labels"]
    neutral = report["confusion"][labels.index("neutral")]
    return {"macro_f1_five": round(float(np.mean(f1)), 4) if f1 else None,
            "neutral_as_angry": round(neutral[labels.index("angry")] / max(1, sum(neutral)), 4)}


def eval_folders(recognizer, root: Path, log: Optional[Printer] = None,
                 crop_threshold: int = 64) -> Dict[str, Any]:
    """Accuracy on ``root/<class>/<image>``; folder names such as anger/angry/happiness are
    mapped onto the 7 labels, classes without a counterpart (contempt) skipped and counted.

    Images no larger than ``crop_threshold`` pixels a side are taken as already-cropped faces;
    larger ones go through face detection (the primary face), and photos with no face found
    are counted, not guessed.
    """
    root = Path(root)
    items: List[Tuple[Path, str]] = []
    skipped: Dict[str, int] = {}
    unknown_folders: List[str] = []
    for folder, files in class_folders(root, IMAGE_SUFFIXES):
        label, known = read_label(folder.name)
        if label is None:
            skipped[folder.name] = len(files)
            if not known:
                unknown_folders.append(folder.name)
            continue
        items += [(path, label) for path in files]
        if log:
            log(f"  {folder.name} -> {label}: {len(files)} images")
    result = _eval_photos(recognizer, items, crop_threshold,
                          f"no labelled face found under {root} (class folders named like angry/happy/sad?)", log)
    result.update({"dataset": str(root), "skipped_classes": skipped, "unknown_folders": unknown_folders})
    return result


def eval_manifest(recognizer, path: Path, log: Optional[Printer] = None, crop_threshold: int = 64) -> Dict[str, Any]:
    """Accuracy on the photos a CSV of ``file,label`` lists (header optional; a header may name
    ``file``, ``path`` or ``image`` and ``label`` or ``emotion`` among other columns), files relative
    to the CSV; read as :func:`eval_folders` reads them. Rows left out are counted by label
    (``skipped_labels``), missing files in ``missing_files``."""
    manifest = read_manifest(path, {"file": ("file", "path", "image"), "label": LABEL_COLUMNS}, required=("file", "label"))
    items = [(manifest.relative(row["file"]), row["label"]) for row in manifest.rows]
    missing = [str(file) for file, _ in items if not file.is_file()]
    items = [(file, label) for file, label in items if file.is_file()]
    if log:
        log(f"{len(items):,} photos listed in {manifest.path}")
    why = "; ".join(filter(None, [manifest.left_out.describe(), f"{len(missing):,} missing files" if missing else ""]))
    result = _eval_photos(recognizer, items, crop_threshold,
                          f"{manifest.path}: no photo to evaluate" + (f" ({why})" if why else ""), log)
    result.update({"dataset": f"manifest/{manifest.path.name}", "skipped": manifest.skipped + len(missing),
                   "skipped_labels": manifest.left_out.as_dict(), "missing_files": missing[:5],
                   "n_missing_files": len(missing)})
    return result


def _eval_photos(recognizer, items: List[Tuple[Path, str]], crop_threshold: int, nothing: str,
                 log: Optional[Printer] = None) -> Dict[str, Any]:
    """Each (photo, label) through the recognizer; photos with no face or unreadable are counted."""
    truth: List[str] = []
    predicted: List[str] = []
    no_face = unreadable = 0
    for i, (path, label) in enumerate(items):
        if log and i and i % 500 == 0:
            log(f"  {i:,}/{len(items):,} photos")
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
    if not truth:
        raise ValueError(nothing)
    result = evaluate(truth, predicted)
    result.update({"no_face": no_face, "unreadable": unreadable})
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


def _aligned_fer(classifier, fer_path: Path, splits, log: Optional[Printer]) -> Optional[Dict[str, np.ndarray]]:
    """{split: the crops warped by their landmarks (cached)} when a network of ``classifier`` was
    trained on aligned faces, else None."""
    if not any(network.aligned for network, _ in classifier.networks):
        return None
    from emotion_sensing.face import aligned_data

    return {name: arrays[0] for name, arrays in aligned_data.aligned_fer_at(fer_path, splits, log=log).items()}


def _crop_probs(classifier, images: np.ndarray, aligned: Optional[np.ndarray] = None,
                log: Optional[Printer] = None) -> np.ndarray:
    """Uncalibrated probabilities for 48x48 face crops, as the runtime classifies a face: each
    network of the classifier takes the crop as it was trained (``aligned``: the same crops
    warped by their landmarks)."""
    rows = []
    for i, image in enumerate(images):
        rows.append(classifier.classify(classifier.prepare_crop(image, image if aligned is None else aligned[i]),
                                        calibrated=False))
        if log and (i + 1) % 1000 == 0:
            log(f"  {i + 1}/{len(images)} images")
    return np.stack(rows) if rows else np.zeros((0, len(LABELS)), np.float32)


def class_folder_photos(root: Path) -> List[Tuple[Path, str]]:
    """(photo, label) for the images directly in ``root``'s class folders (as KDEF3 is laid out),
    folders without a counterpart among the labels left out; sorted, so the same on every machine."""
    items = []
    for folder, files in class_folders(root, IMAGE_SUFFIXES, recursive=False):
        label, _ = read_label(folder.name)
        if label:
            items += [(f, label) for f in files]
    return items


def _photos(items, pad: bool):
    """(gray photo, label) for each (path, label), padded first when ``pad``; the photo is None
    when it cannot be read."""
    from emotion_sensing.face import wild

    for path, label in items:
        gray = cv2.imread(os.fspath(path), cv2.IMREAD_GRAYSCALE)
        yield (wild.padded(gray) if pad and gray is not None else gray), label


def _photos_through_the_pipeline(recognizer, items, pad: bool) -> Dict[str, Any]:
    """Photos -> detector -> (aligned) face -> label, as a camera frame goes; no face found is
    counted, not guessed."""
    truth, predicted, missed = [], [], 0
    for gray, label in _photos(items, pad):
        analysis = recognizer.analyse(gray) if gray is not None else None
        if analysis is None or analysis.primary is None:
            missed += 1
            continue
        truth.append(label)
        predicted.append(analysis.primary.label)
    report = evaluate(truth, predicted) if truth else {"n": 0, "accuracy": None}
    return {**report, **(wild_summary(report) if truth else {}), "photos": len(items),
            "face_found": round(1 - missed / max(1, len(items)), 4)}


def eval_cross(recognizer, datasets_dir: Path, log: Optional[Printer] = None) -> Dict[str, Any]:
    """The model card's cross-dataset table, each set as the runtime would see it:

    - FER2013 PrivateTest (crops as published, or aligned when the model was trained aligned);
    - the in-the-wild set's validation persons (padded photos through the detector);
    - KDEF3 (never trained on; photos through the detector);
    - calibration: the temperature fitted on PublicTest and ECE (15 bins) before and after, on
      PublicTest and PrivateTest.
    Sets that are absent are left out and named in ``missing``.
    """
    from emotion_sensing.calibration import calibration_report, expected_calibration_error, fit_temperature
    from emotion_sensing.face import wild
    from emotion_sensing.face.recognizer import with_temperature

    datasets_dir = Path(datasets_dir)
    classifier = recognizer.classifier
    out: Dict[str, Any] = {"detector": getattr(recognizer.detector, "name", "haar"), "aligned": classifier.aligned,
                           "networks": classifier.describe_networks(), "missing": []}
    fer_dir = datasets_dir / "fer2013"
    if fer_dir.exists():
        splits = fer2013.load(fer_dir)
        aligned = _aligned_fer(classifier, fer_dir, splits, log)
        probs = {}
        for name in ("PublicTest", "PrivateTest"):
            if log:
                log(f"FER2013 {name}: {len(splits[name])} faces")
            probs[name] = _crop_probs(classifier, splits[name].images, aligned[name] if aligned else None)
        labels = {name: splits[name].labels for name in probs}
        temperature = fit_temperature(np.log(np.clip(probs["PublicTest"], 1e-12, None)), labels["PublicTest"])
        out["calibration"] = {
            "fitted_on": "FER2013 PublicTest",
            "PublicTest": calibration_report(np.log(np.clip(probs["PublicTest"], 1e-12, None)),
                                             labels["PublicTest"], temperature),
            "PrivateTest": {
                "ece_before": round(expected_calibration_error(probs["PrivateTest"], labels["PrivateTest"]), 4),
                "ece_after": round(expected_calibration_error(with_temperature(probs["PrivateTest"], temperature),
                                                              labels["PrivateTest"]), 4)},
            "shipped_temperature": classifier.temperature,
        }
        report = evaluate([LABELS[i] for i in labels["PrivateTest"]],
                          [LABELS[i] for i in probs["PrivateTest"].argmax(1)])
        out["fer2013_private"] = {**report, **wild_summary(report), "face_found": 1.0}
    else:
        out["missing"].append(str(fer_dir))
    wild_dir = datasets_dir / wild.FOLDER
    if wild_dir.exists():
        photos = wild.split(wild_dir)["validation"]
        if log:
            log(f"in the wild, validation persons: {len(photos)} photos")
        out["wild_validation"] = _photos_through_the_pipeline(recognizer, [(p.path, p.label) for p in photos], pad=True)
    else:
        out["missing"].append(str(wild_dir))
    kdef = datasets_dir / "kdef3"
    if kdef.exists():
        items = class_folder_photos(kdef)
        if log:
            log(f"KDEF3: {len(items)} photos")
        out["kdef3"] = _photos_through_the_pipeline(recognizer, items, pad=False)
    else:
        out["missing"].append(str(kdef))
    return out


def write_temperature(model_path: Path, temperature: float) -> Path:
    """Store the fitted temperature in the model's JSON, where :class:`FaceClassifier` reads it."""
    import json

    meta_path = Path(model_path).with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["temperature"] = round(float(temperature), 4)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta_path


def eval_detection(datasets_dir: Path, detectors: Optional[Dict[str, Any]] = None,
                   log: Optional[Printer] = None) -> Dict[str, Any]:
    """Share of photos with a face found, per detector: every in-the-wild photo (padded by 25%,
    as they are tight crops), KDEF3, the astronaut, and the bench's drifting, tilting clip."""
    from emotion_sensing.face import wild
    from emotion_sensing.face.bench import test_frame, video
    from emotion_sensing.face.detect import FaceDetector

    if detectors is None:
        from emotion_sensing.face.centerface import CenterFaceDetector

        detectors = {"centerface": CenterFaceDetector(), "haar": FaceDetector()}
    datasets_dir = Path(datasets_dir)
    sets: Dict[str, List[np.ndarray]] = {}

    def gray_of(path: Path, pad: bool):
        image = cv2.imread(os.fspath(path), cv2.IMREAD_GRAYSCALE)
        return None if image is None else (wild.padded(image) if pad else image)

    found: Dict[str, Dict[str, Any]] = {name: {} for name in detectors}
    sources = []
    if (datasets_dir / wild.FOLDER).exists():
        sources.append(("faces_in_the_wild (padded)", [p.path for p in wild.photos(datasets_dir / wild.FOLDER)], True))
    if (datasets_dir / "kdef3").exists():
        sources.append(("kdef3", sorted(p for p in (datasets_dir / "kdef3").rglob("*")
                                        if p.suffix.lower() in IMAGE_SUFFIXES), False))
    for name, paths, pad in sources:
        if log:
            log(f"{name}: {len(paths)} photos")
        hits = {d: 0 for d in detectors}
        for path in paths:
            gray = gray_of(path, pad)
            for d, detector in detectors.items():
                hits[d] += gray is not None and bool(detector.detect(gray))
        for d in detectors:
            found[d][name] = {"photos": len(paths), "found": hits[d], "rate": round(hits[d] / max(1, len(paths)), 4)}
    sets["astronaut (640x480 frame)"] = [cv2.cvtColor(test_frame(), cv2.COLOR_BGR2GRAY)]
    sets["bench clip (drifting, tilting +-15 deg)"] = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in video()]
    for name, frames in sets.items():
        for d, detector in detectors.items():
            hits = sum(bool(detector.detect(f)) for f in frames)
            found[d][name] = {"photos": len(frames), "found": hits, "rate": round(hits / len(frames), 4)}
    return {"detectors": found}


ENSEMBLE_GRID = tuple(round(0.05 * i, 2) for i in range(11))  # the member's weight: 0 .. 0.5


def choose_ensemble(model_path: Path, member_path: Path, datasets_dir: Path, grid=ENSEMBLE_GRID,
                    log: Optional[Printer] = None) -> Dict[str, Any]:
    """The weight of another face network (``member_path``) averaged with the shipped one, chosen
    where the shipped network's checkpoint was: FER2013 PublicTest and the in-the-wild validation
    persons (the mean of PublicTest accuracy and the in-the-wild macro-F1 over the five classes).
    Each network takes the face as it was trained (aligned or box crop); probabilities are averaged
    before the temperature. PrivateTest and KDEF3 take no part. Writes the choice into the shipped
    model's JSON (none when the weight chosen is 0) and returns the curve."""
    import json
    import shutil

    from emotion_sensing.face import aligned_data, wild
    from emotion_sensing.face.detect import primary
    from emotion_sensing.face.recognizer import FaceClassifier, make_detector

    model_path, member_path, datasets_dir = Path(model_path), Path(member_path), Path(datasets_dir)
    networks = [FaceClassifier(model_path, ensemble=False), FaceClassifier(member_path, ensemble=False)]
    fer_dir = datasets_dir / "fer2013"
    splits = fer2013.load(fer_dir)
    public = splits["PublicTest"]
    aligned = aligned_data.aligned_fer_at(fer_dir, splits, log=log)["PublicTest"][0]
    if log:
        log(f"FER2013 PublicTest: {len(public)} faces, each network")
    fer_probs = [_crop_probs(n, public.images, aligned) for n in networks]
    photos = wild.split(datasets_dir / wild.FOLDER)["validation"]
    if log:
        log(f"in the wild, validation persons: {len(photos)} photos")
    wild_probs: List[List[np.ndarray]] = [[], []]
    wild_labels = []
    detector = make_detector()
    for gray, label in _photos([(p.path, p.label) for p in photos], pad=True):
        box = primary(detector.detect(gray), gray.shape[1], gray.shape[0]) if gray is not None else None
        if box is not None:
            for rows, network in zip(wild_probs, networks):
                rows.append(network.classify(network.prepare(gray, box), calibrated=False))
            wild_labels.append(label)
    curve = []
    for weight in grid:
        fer_pred = ((1 - weight) * fer_probs[0] + weight * fer_probs[1]).argmax(1)
        fer_acc = float(np.mean(fer_pred == np.asarray(public.labels)))
        mixed = (1 - weight) * np.stack(wild_probs[0]) + weight * np.stack(wild_probs[1])
        report = evaluate(wild_labels, [LABELS[i] for i in mixed.argmax(1)])
        summary = wild_summary(report)
        curve.append({"weight": weight, "public_accuracy": round(fer_acc, 4),
                      "wild_macro_f1_five": summary["macro_f1_five"], "wild_accuracy": round(report["accuracy"], 4),
                      "wild_neutral_as_angry": summary["neutral_as_angry"],
                      "score": round((fer_acc + summary["macro_f1_five"]) / 2, 4)})
        if log:
            log(f"  weight {weight:.2f}: PublicTest {fer_acc:.4f}, in the wild macro-F1 {summary['macro_f1_five']:.4f} "
                f"(neutral->angry {summary['neutral_as_angry']:.1%}), score {curve[-1]['score']:.4f}")
    best = max(curve, key=lambda row: (row["score"], -row["weight"]))
    meta_path = model_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.pop("ensemble", None)
    if best["weight"] > 0:
        if member_path.resolve().parent != model_path.resolve().parent:
            for suffix in (".tflite", ".json"):
                if member_path.with_suffix(suffix).exists():
                    shutil.copyfile(member_path.with_suffix(suffix), model_path.with_name(member_path.stem + suffix))
        meta["ensemble"] = [{"file": member_path.name, "weight": best["weight"],
                             "chosen_on": "FER2013 PublicTest accuracy and in-the-wild validation persons' macro-F1 "
                                          "over five classes (their mean)"}]
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return {"member": member_path.name, "member_meta": networks[1].meta, "weight": best["weight"], "curve": curve,
            "wild_faces": len(wild_labels), "written_to": os.fspath(meta_path)}
