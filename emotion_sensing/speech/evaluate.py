"""Measure a shipped voice model (``emobot eval speech``): RAVDESS's held-out actors or any manifest.

Speakers are standardised with their own unlabelled clips, as a session's running
statistics would after a while (``speaker``); the ``running`` (clips one by one from a
session's start) and ``none`` (population prior only) figures are reported beside it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np

from emotion_sensing.evaluation import evaluate
from emotion_sensing.speech.datasets import SpeechSet, extract, load_manifest, load_ravdess
from emotion_sensing.speech.model import VoiceModel

Printer = Callable[[str], None]


def _load_model(path: Path) -> VoiceModel:
    if not Path(path).exists():
        raise FileNotFoundError(f"no voice model at {path}; run `emobot train speech` first")
    return VoiceModel.load(path)


def evaluate_set(dataset: SpeechSet, model: VoiceModel, rows: Optional[np.ndarray] = None,
                 log: Optional[Printer] = None) -> Dict[str, Any]:
    """Accuracy and friends of ``model`` on ``dataset`` (or its ``rows``), in every normalisation."""
    from emotion_sensing.speech.train import MODES, predict

    if log:
        log(f"extracting features of {len(dataset)} clips (cached after the first run)...")
    features = extract(dataset, log=log)
    rows = np.ones(len(dataset), dtype=bool) if rows is None else rows
    usable = rows & features.usable
    labels = np.asarray(dataset.labels)[usable]
    speakers = np.asarray(dataset.speakers)[usable]
    vectors = features.vectors[usable]
    if not len(labels):
        raise ValueError(f"{dataset.name}: no clip with speech to evaluate")
    predicted = {mode: predict(model, vectors, speakers, mode) for mode in MODES}
    result = evaluate(list(labels), predicted["speaker"])
    result.update(
        modality="voice",
        dataset=dataset.name,
        classifier=model.meta.get("label"),
        pruned=bool(model.meta.get("pruned")),
        normalisation="speaker",
        accuracy_by_normalisation={
            mode: round(float(np.mean(np.asarray(predicted[mode]) == labels)), 4) for mode in MODES
        },
        n_speakers=int(len(set(speakers))),
        no_speech=int((rows & ~features.usable).sum()),
        skipped=dataset.skipped,
    )
    return result


def evaluate_ravdess(datasets_dir: Path, model_path: Path, log: Optional[Printer] = None) -> Dict[str, Any]:
    """The model on the RAVDESS actors it was not trained on (its ``test_speakers``)."""
    model = _load_model(model_path)
    dataset = load_ravdess(datasets_dir)
    test = model.meta.get("test_speakers") or []
    trained = set(model.meta.get("train_speakers") or [])
    rows = np.isin(np.asarray(dataset.speakers), test) if test else ~np.isin(np.asarray(dataset.speakers), list(trained))
    if not rows.any():
        raise ValueError("every RAVDESS actor was used to train this model: nothing held out to measure it on")
    result = evaluate_set(dataset, model, rows, log)
    held = sorted(set(np.asarray(dataset.speakers)[rows]))
    result["speakers"] = f"held-out actors {held[0]}..{held[-1]} ({len(held)}), never seen in training"
    result["model"] = str(model_path)
    return result


def evaluate_manifest(path: Path, model_path: Path, log: Optional[Printer] = None) -> Dict[str, Any]:
    """The model on a ``file,label[,speaker]`` CSV; without speakers all clips share one."""
    model = _load_model(model_path)
    dataset = load_manifest(path)
    if not len(dataset):
        notes = f" ({'; '.join(dataset.notes)})" if dataset.notes else ""
        raise ValueError(f"{path}: no rows with a readable file and a known label{notes}")
    result = evaluate_set(dataset, model, log=log)
    n_speakers = result["n_speakers"]
    result["speakers"] = f"{n_speakers} speaker(s) from the manifest" if n_speakers > 1 or dataset.speakers[0] != "all" \
        else "one speaker normaliser for all clips (no speaker column)"
    result["model"] = str(model_path)
    return result


def load_comparison(models_dir: Path) -> Optional[Dict[str, Any]]:
    """The comparison table saved by ``emobot train speech``, if any."""
    from emotion_sensing.speech.train import COMPARISON_FILE

    path = Path(models_dir) / COMPARISON_FILE
    return json.loads(path.read_text()) if path.exists() else None
