"""Compare, ship and measure voice emotion classifiers (``emobot train|eval speech``).

Protocol, speaker-independent throughout (no speaker is ever in both training and test):

- RAVDESS actors 19-24 are the **test speakers**: used for no choice, only to measure.
- The comparison runs a k-fold cross-validation **by actor** over actors 1-18 (6 folds of
  3 actors): each classifier's predictions for a fold's actors come from a model trained
  on the other folds' actors. The best by cross-validated accuracy is shipped.
- Every classifier (and the shipped one) is then trained on actors 1-18 and measured on
  actors 19-24.

Utterance vectors are standardised per speaker (speaker.py) in three ways, all reported:
``speaker`` (each speaker's statistics from all their clips, as after a few minutes of a
session), ``running`` (clips in a random order, each standardised with the clips heard so far:
a live session from its first utterance) and ``none`` (the population prior only: one
utterance of an unknown speaker).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from emotion_sensing.evaluation import evaluate
from emotion_sensing.labels import LABELS
from emotion_sensing.speech.datasets import SpeechSet, extract, load_ravdess
from emotion_sensing.speech.model import (
    CLASSIFIERS,
    MODEL_FILE,
    SEQUENCE_MODEL,
    VoiceModel,
    build_classifier,
)
from emotion_sensing.speech.speaker import SpeakerPrior, SpeakerStats, standardise_by_speaker, standardise_running

Printer = Callable[[str], None]
TEST_SPEAKERS = tuple(f"Actor_{n:02d}" for n in range(19, 25))
FOLDS = 6
MODES = ("speaker", "running", "none")
COMPARISON_FILE = "speech_emotion.comparison.json"


def actor_folds(speakers: Sequence[str], k: int = FOLDS) -> np.ndarray:
    """Fold index per clip: sorted speakers in k consecutive groups (RAVDESS alternates
    male and female actors, so each group holds both)."""
    names = sorted(set(speakers))
    if len(names) < k:
        raise ValueError(f"{len(names)} speakers cannot make {k} speaker-independent folds")
    group = {name: i * k // len(names) for i, name in enumerate(names)}
    return np.array([group[s] for s in speakers])


def standardise(vectors: np.ndarray, speakers: Sequence[str], prior: SpeakerPrior, mode: str) -> np.ndarray:
    """Utterance vectors standardised per speaker in one of :data:`MODES`."""
    if mode == "speaker":
        return standardise_by_speaker(vectors, speakers, prior)
    if mode == "running":
        return standardise_running(vectors, speakers, prior)
    if mode == "none":
        return SpeakerStats(prior).standardise(vectors)
    raise ValueError(mode)


def fit(name: str, vectors: np.ndarray, labels: Sequence[str], speakers: Sequence[str],
        prune_deg: Optional[float] = None, seed: int = 0) -> VoiceModel:
    """A VoiceModel trained on these speakers (each standardised with their own statistics)."""
    prior = SpeakerPrior.fit(vectors, speakers)
    x = standardise_by_speaker(vectors, speakers, prior)
    pipeline = build_classifier(name, seed=seed)
    meta: Dict[str, Any] = {"classifier": name, "pruned": None}
    if prune_deg is not None:
        from emotion_sensing.speech.prune import train_pruned_mlp

        report = train_pruned_mlp(pipeline, x, np.asarray(labels), similar_deg=prune_deg, opposite_deg=180.0 - prune_deg)
        meta["pruned"] = {"similar_deg": prune_deg, "opposite_deg": 180.0 - prune_deg, **report.to_dict()}
    else:
        pipeline.fit(x, np.asarray(labels))
    return VoiceModel(pipeline, prior, meta)


def predict(model: VoiceModel, vectors: np.ndarray, speakers: Sequence[str], mode: str) -> List[str]:
    probs = model.probabilities(standardise(vectors, speakers, model.prior, mode))
    return [LABELS[i] for i in probs.argmax(axis=1)]


def cross_validate(
    name: str, vectors: np.ndarray, labels: Sequence[str], speakers: Sequence[str], folds: np.ndarray,
    prune_deg: Optional[float] = None,
) -> Dict[str, Any]:
    """Pooled out-of-fold predictions of one classifier in every mode, and what pruning kept."""
    labels = np.asarray(labels)
    speakers = np.asarray(speakers)
    predicted = {mode: np.empty(len(labels), dtype=object) for mode in MODES}
    kept = []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        model = fit(name, vectors[train], labels[train], speakers[train], prune_deg=prune_deg)
        if model.meta["pruned"]:
            kept.append(model.meta["pruned"]["hidden_after"])
        for mode in MODES:
            predicted[mode][test] = predict(model, vectors[test], speakers[test], mode)
    result = {mode: evaluate(list(labels), list(predicted[mode])) for mode in MODES}
    if kept:
        result["hidden_units_kept"] = float(np.mean(kept))
    return result


def _row(name: str, description: str, cv: Dict[str, Any], test: Optional[Dict[str, Any]], seconds: float) -> Dict[str, Any]:
    speaker = cv["speaker"]
    return {
        "classifier": name,
        "description": description,
        "f1": {label: speaker["per_class"][label]["f1"] for label in LABELS},
        "cv_accuracy": speaker["accuracy"],
        "cv_macro_f1": speaker["macro_f1"],
        "cv_accuracy_running": cv.get("running", {}).get("accuracy"),
        "cv_accuracy_none": cv.get("none", {}).get("accuracy"),
        "test_accuracy": test["accuracy"] if test else None,
        "hidden_units_kept": cv.get("hidden_units_kept"),
        "seconds": round(seconds, 1),
    }


def format_table(rows: Sequence[Dict[str, Any]], markdown: bool = False) -> str:
    """The comparison table: per-class F1 (cross-validated, speaker mode) and accuracies."""
    heads = ["classifier", *LABELS, "CV acc", "CV acc running", "CV acc no stats", "test acc"]

    def cell(value: Any) -> str:
        return "—" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))

    lines = []
    for row in rows:
        lines.append([row["classifier"], *(row["f1"][label] for label in LABELS), row["cv_accuracy"],
                      row["cv_accuracy_running"], row["cv_accuracy_none"], row["test_accuracy"]])
    if markdown:
        out = ["| " + " | ".join(heads) + " |", "|---" * len(heads) + "|"]
        out += ["| " + " | ".join(cell(v) for v in line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(heads[i]), *(len(cell(line[i])) for line in lines)) for i in range(len(heads))]
    out = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(heads, widths)))]
    for line in lines:
        out.append("  ".join(cell(v).rjust(w) if i else cell(v).ljust(w) for i, (v, w) in enumerate(zip(line, widths))))
    return "\n".join(out)


def split_test(dataset: SpeechSet, test_speakers: Sequence[str] = TEST_SPEAKERS) -> np.ndarray:
    """Mask of the clips spoken by the test speakers."""
    return np.isin(np.asarray(dataset.speakers), list(test_speakers))


def train_speech(
    datasets_dir: Path,
    models_dir: Path,
    classifiers: Sequence[str] = tuple(CLASSIFIERS),
    sequence_model: bool = True,
    lstm_epochs: int = 30,
    prune_degrees: Sequence[float] = (),
    folds: int = FOLDS,
    log: Printer = print,
) -> Dict[str, Any]:
    """Run the comparison, ship the best classifier with its card; returns the comparison."""
    from threadpoolctl import threadpool_limits

    # One thread per native pool: scikit-learn's OpenMP pools (gradient boosting) slow down
    # some twentyfold when another job shares the cores, and the classifiers here are small.
    with threadpool_limits(1):
        return _train_speech(datasets_dir, models_dir, classifiers, sequence_model, lstm_epochs, prune_degrees,
                             folds, log)


def _train_speech(datasets_dir, models_dir, classifiers, sequence_model, lstm_epochs, prune_degrees, folds, log):
    dataset = load_ravdess(datasets_dir)
    log(f"RAVDESS: {len(dataset)} clips of {len(set(dataset.speakers))} actors; extracting features (cached)...")
    features = extract(dataset, log=log)
    labels = np.asarray(dataset.labels)
    speakers = np.asarray(dataset.speakers)
    usable = features.usable
    if (~usable).any():
        log(f"  {int((~usable).sum())} silent clips left out")
    test = split_test(dataset) & usable
    dev = ~split_test(dataset) & usable
    fold_of = actor_folds(list(speakers[dev]), folds)
    x = features.vectors
    log(f"cross-validation by actor over {dev.sum()} clips of {len(set(speakers[dev]))} actors "
        f"({folds} folds); test: {test.sum()} clips of actors {TEST_SPEAKERS[0]}..{TEST_SPEAKERS[-1]}")

    rows: List[Dict[str, Any]] = []
    candidates = []
    runs = [(name, CLASSIFIERS[name], None) for name in classifiers]
    runs += [(f"mlp-pruned-{deg:g}°", f"MLP pruned by distinctiveness at {deg:g}°/{180 - deg:g}°", deg)
             for deg in prune_degrees]
    for label, description, deg in runs:
        name = "mlp" if deg is not None else label
        started = time.time()
        cv = cross_validate(name, x[dev], labels[dev], speakers[dev], fold_of, prune_deg=deg)
        model = fit(name, x[dev], labels[dev], speakers[dev], prune_deg=deg)
        held_out = evaluate(list(labels[test]), predict(model, x[test], speakers[test], "speaker"))
        row = _row(label, description, cv, held_out, time.time() - started)
        if deg is not None:
            row["hidden_units_shipped_fit"] = model.meta["pruned"]["hidden_after"]
        rows.append(row)
        candidates.append((row["cv_accuracy"], label, model))
        log(f"  {label:<18} CV accuracy {row['cv_accuracy']:.3f} (running {row['cv_accuracy_running']:.3f}, "
            f"no stats {row['cv_accuracy_none']:.3f}), test {held_out['accuracy']:.3f}  ({row['seconds']:.0f} s)")
    if sequence_model:
        rows.append(_lstm_row(features.mfcc, labels, speakers, dev, test, fold_of, lstm_epochs, log))

    best_cv, best_label, best = max(candidates, key=lambda c: c[0])
    log(f"best by cross-validated accuracy: {best_label} ({best_cv:.3f}); shipping it")
    best.meta.update(
        feature_version=_feature_version(),
        train_speakers=sorted(set(speakers[dev])),
        test_speakers=list(TEST_SPEAKERS),
        train_clips=int(dev.sum()),
        cv_accuracy=best_cv,
        label=best_label,
    )
    models_dir = Path(models_dir)
    path = models_dir / MODEL_FILE
    best.save(path)
    comparison = {
        "dataset": "ravdess",
        "protocol": f"{folds}-fold cross-validation by actor over actors 01-18; test on actors 19-24",
        "rows": rows,
        "shipped": best_label,
    }
    (models_dir / COMPARISON_FILE).write_text(json.dumps(comparison, indent=2) + "\n")
    log("\n" + format_table(rows))
    log(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB) and {models_dir / COMPARISON_FILE}")
    return comparison


def _feature_version() -> int:
    from emotion_sensing.speech.features import FEATURE_VERSION

    return FEATURE_VERSION


def _lstm_row(frames, labels, speakers, dev, test, fold_of, epochs, log) -> Dict[str, Any]:
    from emotion_sensing.speech.sequence import cross_validate_lstm

    started = time.time()
    dev_idx = np.flatnonzero(dev)
    predicted = cross_validate_lstm([frames[i] for i in dev_idx], labels[dev], speakers[dev], fold_of, epochs, log)
    cv = {"speaker": evaluate(list(labels[dev]), list(predicted))}
    # Trained on all development actors, measured on the test actors.
    both = np.flatnonzero(dev | test)
    groups = np.where(test[both], 1, 0)
    held = cross_validate_lstm([frames[i] for i in both], labels[both], speakers[both], groups, epochs, test_folds=[1])
    held_out = evaluate(list(labels[both][groups == 1]), list(held[groups == 1]))
    row = _row(SEQUENCE_MODEL, f"LSTM({64}) over 40 MFCCs per frame (TensorFlow, {epochs} epochs)", cv, held_out,
               time.time() - started)
    log(f"  {SEQUENCE_MODEL:<18} CV accuracy {row['cv_accuracy']:.3f}, test {held_out['accuracy']:.3f}  "
        f"({row['seconds']:.0f} s)")
    return row
