"""Seed 004's classical route, as a measured baseline: LBP and PHOG descriptors of the aligned
face, a shallow network pruned by hidden-unit distinctiveness, and the two-stream network.

- **LBP**: uniform local binary patterns (8 neighbours, radius 1; scikit-image's
  ``nri_uniform``, 59 codes) histogrammed over a 6x6 grid of cells: 2,124 values.
- **PHOG**: histograms of gradient orientation (8 unsigned bins, weighted by magnitude) over a
  pyramid of 1, 2x2 and 4x4 cells, each level L1-normalised: 168 values.
- **Shallow network**: one tanh hidden layer on both descriptors, pruned by distinctiveness
  after its first epoch (the voice model's pruning, :mod:`emotion_sensing.speech.prune`), then
  retrained.
- **Two-stream network**: an LBP stream and a PHOG stream (tanh layers), joined by a fusion
  layer of 14 units, then 7 outputs.

Not shipped: it is here to say where the CNNs stand against the seed's method on the same faces.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import cv2
import numpy as np

Printer = Callable[[str], None]
LBP_GRID = 6
PHOG_LEVELS = (1, 2, 4)
PHOG_BINS = 8


def lbp(face: np.ndarray, grid: int = LBP_GRID) -> np.ndarray:
    """Uniform-LBP histograms over a grid of cells, each normalised to sum 1."""
    from skimage.feature import local_binary_pattern

    codes = local_binary_pattern(face, 8, 1, method="nri_uniform").astype(np.int32)
    size = face.shape[0]
    edges = np.linspace(0, size, grid + 1).astype(int)
    out = []
    for i in range(grid):
        for j in range(grid):
            cell = codes[edges[i]:edges[i + 1], edges[j]:edges[j + 1]]
            hist = np.bincount(cell.ravel(), minlength=59)[:59].astype(np.float32)
            out.append(hist / max(1.0, hist.sum()))
    return np.concatenate(out)


def phog(face: np.ndarray, levels=PHOG_LEVELS, bins: int = PHOG_BINS) -> np.ndarray:
    """A pyramid of gradient-orientation histograms, each level normalised to sum 1."""
    image = face.astype(np.float32)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy)
    orientation = np.mod(np.degrees(np.arctan2(gy, gx)), 180.0)
    index = np.minimum((orientation / (180.0 / bins)).astype(int), bins - 1)
    size = face.shape[0]
    out = []
    for cells in levels:
        edges = np.linspace(0, size, cells + 1).astype(int)
        level = []
        for i in range(cells):
            for j in range(cells):
                sl = (slice(edges[i], edges[i + 1]), slice(edges[j], edges[j + 1]))
                level.append(np.bincount(index[sl].ravel(), weights=magnitude[sl].ravel(), minlength=bins)[:bins])
        level = np.concatenate(level).astype(np.float32)
        out.append(level / max(1e-6, level.sum()))
    return np.concatenate(out)


def features(faces: np.ndarray, log: Optional[Printer] = None) -> Dict[str, np.ndarray]:
    """{"lbp": (n, 2124), "phog": (n, 168)} for 48x48 uint8 faces."""
    lbps, phogs = [], []
    for i, face in enumerate(faces):
        lbps.append(lbp(face))
        phogs.append(phog(face))
        if log and (i + 1) % 10000 == 0:
            log(f"  descriptors: {i + 1}/{len(faces)}")
    return {"lbp": np.array(lbps, np.float32), "phog": np.array(phogs, np.float32)}


def train_shallow(x: np.ndarray, y: np.ndarray, hidden: int = 200, epochs: int = 60, seed: int = 0,
                  similar_deg: float = 15.0):
    """Scaler + one tanh hidden layer, pruned by distinctiveness after its first epoch (pairs of
    units within ``similar_deg`` of the same or the opposite direction are merged)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from emotion_sensing.speech.prune import train_pruned_mlp

    pipeline = Pipeline([("scale", StandardScaler()),
                         ("classifier", MLPClassifier((hidden,), activation="tanh", alpha=1e-3, batch_size=256,
                                                      learning_rate_init=1e-3, max_iter=epochs,
                                                      early_stopping=True, n_iter_no_change=8, random_state=seed))])
    report = train_pruned_mlp(pipeline, x, y, similar_deg=similar_deg, opposite_deg=180.0 - similar_deg)
    return pipeline, report


def train_two_stream(lbp_x: np.ndarray, phog_x: np.ndarray, y: np.ndarray, val=None, epochs: int = 40,
                     lbp_units: int = 100, phog_units: int = 40, seed: int = 0):
    """The seed's two-stream network: LBP -> tanh(lbp_units), PHOG -> tanh(phog_units), joined
    by a fusion layer of 14 tanh units, then a softmax over 7. Returns (predict(lbp, phog) -> probs, epochs run)."""
    import tensorflow as tf
    from tensorflow.keras import layers

    tf.keras.utils.set_random_seed(seed)
    mean_l, std_l = lbp_x.mean(0), lbp_x.std(0) + 1e-6
    mean_p, std_p = phog_x.mean(0), phog_x.std(0) + 1e-6
    a = layers.Input((lbp_x.shape[1],), name="lbp")
    b = layers.Input((phog_x.shape[1],), name="phog")
    ha = layers.Dense(lbp_units, activation="tanh")(layers.Dropout(0.2)(a))
    hb = layers.Dense(phog_units, activation="tanh")(layers.Dropout(0.1)(b))
    fused = layers.Dense(14, activation="tanh", name="fusion")(layers.Concatenate()([ha, hb]))
    out = layers.Dense(7, activation="softmax")(fused)
    model = tf.keras.Model([a, b], out, name="two_stream")
    model.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    inputs = [(lbp_x - mean_l) / std_l, (phog_x - mean_p) / std_p]
    validation = None
    if val is not None:
        validation = ([(val[0] - mean_l) / std_l, (val[1] - mean_p) / std_p], val[2])
    stop = tf.keras.callbacks.EarlyStopping(monitor="val_accuracy" if validation else "accuracy", patience=6,
                                            restore_best_weights=True)
    history = model.fit(inputs, y, validation_data=validation, epochs=epochs, batch_size=256, verbose=0,
                        callbacks=[stop])

    def predict(lbp_q: np.ndarray, phog_q: np.ndarray) -> np.ndarray:
        return model.predict([(lbp_q - mean_l) / std_l, (phog_q - mean_p) / std_p], batch_size=1024, verbose=0)

    return predict, len(history.history["loss"]), int(model.count_params())


def run_baseline(sets: Dict[str, Dict[str, np.ndarray]], log: Printer = print,
                 prune_angles=(15.0, 30.0, 45.0)) -> Dict[str, Any]:
    """Train both classical networks on ``sets["train"]`` ({"images", "labels"}), select on
    ``sets["selection"]``, and score every other set. Returns a JSON-able report."""
    from emotion_sensing.evaluation import evaluate
    from emotion_sensing.face.evaluate import wild_summary
    from emotion_sensing.labels import LABELS

    feats = {}
    for name, data in sets.items():
        log(f"LBP and PHOG of {name}: {len(data['images'])} faces")
        feats[name] = features(data["images"], log)
    train_x = np.hstack([feats["train"]["lbp"], feats["train"]["phog"]])
    shallow_runs = {}
    for angle in prune_angles:
        log(f"shallow network, pruned by distinctiveness at {angle:g} degrees")
        model, pruned = train_shallow(train_x, sets["train"]["labels"], similar_deg=angle)
        log(f"  hidden units {pruned.hidden_before} -> {pruned.hidden_after}")
        shallow_runs[angle] = (model, pruned)
    # The run kept as "shallow": the most pruned one that is within a point of the best on the selection set.
    selection_x = np.hstack([feats["selection"]["lbp"], feats["selection"]["phog"]])
    scores = {a: float((m.predict(selection_x) == sets["selection"]["labels"]).mean()) for a, (m, _) in shallow_runs.items()}
    chosen = min((a for a in scores if scores[a] >= max(scores.values()) - 0.01),
                 key=lambda a: shallow_runs[a][1].hidden_after)
    shallow, pruned = shallow_runs[chosen]
    log("two-stream network (LBP stream, PHOG stream, fusion layer of 14)")
    sel = feats["selection"]
    two_stream, epochs, params = train_two_stream(feats["train"]["lbp"], feats["train"]["phog"], sets["train"]["labels"],
                                                  val=(sel["lbp"], sel["phog"], sets["selection"]["labels"]))
    report: Dict[str, Any] = {"descriptors": {"lbp": int(train_x.shape[1] - feats["train"]["phog"].shape[1]),
                                              "phog": int(feats["train"]["phog"].shape[1])},
                              "shallow": {"pruning": {**pruned.to_dict(), "angle_deg": chosen},
                                          "pruning_sweep": {f"{a:g}": {**p.to_dict(), "selection_accuracy": round(scores[a], 4)}
                                                            for a, (_, p) in shallow_runs.items()}},
                              "two_stream": {"epochs": epochs, "parameters": params}}
    for name, data in sets.items():
        if name == "train":
            continue
        truth = [LABELS[i] for i in data["labels"]]
        x = np.hstack([feats[name]["lbp"], feats[name]["phog"]])
        for model_name, predicted in (("shallow", shallow.predict(x)),  # classes_ may not be all seven
                                      ("two_stream", two_stream(feats[name]["lbp"], feats[name]["phog"]).argmax(1))):
            result = evaluate(truth, [LABELS[int(i)] for i in predicted])
            report[model_name][name] = {"n": result["n"], "accuracy": result["accuracy"],
                                        "macro_f1": result["macro_f1"], **wild_summary(result)}
            log(f"  {model_name} on {name}: accuracy {result['accuracy']:.4f}")
    return report
