"""Measure a shipped voice model (``emobot eval speech``): RAVDESS's held-out actors or any manifest.

Speakers are standardised with their own unlabelled clips, as a session's running
statistics would after a while (``speaker``); the other standardisations (train.py's
``running``, ``none``, ``after0/3/10`` and ``pooled``: no speaker identities) are reported
beside it. With ``robustness`` the same clips are also measured under each microphone
condition of conditions.py (features cached per condition).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np

from emotion_sensing.evaluation import evaluate
from emotion_sensing.labels import LABELS
from emotion_sensing.speech.datasets import SpeechSet, extract, load_folders, load_manifest, load_ravdess
from emotion_sensing.speech.model import VoiceModel

Printer = Callable[[str], None]


def _load_model(path: Path) -> VoiceModel:
    if not Path(path).exists():
        raise FileNotFoundError(f"no voice model at {path}; run `emobot train speech` first")
    return VoiceModel.load(path)


def evaluate_set(dataset: SpeechSet, model: VoiceModel, rows: Optional[np.ndarray] = None,
                 log: Optional[Printer] = None, robustness: bool = False) -> Dict[str, Any]:
    """Accuracy and friends of ``model`` on ``dataset`` (or its ``rows``), in every normalisation;
    with ``robustness``, accuracy (speaker and after3) under each condition of conditions.py."""
    from emotion_sensing.calibration import expected_calibration_error
    from emotion_sensing.speech.train import CROSS_MODES, MODES, predict, standardise

    name = dataset.name
    if rows is not None and not rows.all():
        dataset = subset(dataset, rows)  # only the measured clips are featurised
    if log:
        log(f"extracting features of {len(dataset)} clips (cached after the first run)...")
    features = extract(dataset, log=log, blocks=model.blocks)
    usable = features.usable
    labels = np.asarray(dataset.labels)[usable]
    speakers = np.asarray(dataset.speakers)[usable]
    vectors = features.vectors[usable]
    if not len(labels):
        raise ValueError(f"{dataset.name}: no clip with speech to evaluate")
    modes = tuple(dict.fromkeys(MODES + CROSS_MODES))
    predicted = {mode: predict(model, vectors, speakers, mode) for mode in modes}
    result = evaluate(list(labels), predicted["speaker"])
    probs = model.probabilities(standardise(vectors, speakers, model.prior, "speaker"))
    truth = [LABELS.index(label) for label in labels]
    result.update(
        modality="voice",
        dataset=name,
        classifier=model.meta.get("label"),
        pruned=bool(model.meta.get("pruned")),
        normalisation="speaker",
        accuracy_by_normalisation={
            mode: round(float(np.mean(np.asarray(predicted[mode]) == labels)), 4) for mode in modes
        },
        ece=round(expected_calibration_error(probs, truth), 4),
        temperature=round(model.temperature, 4),
        n_speakers=int(len(set(speakers))),
        no_speech=int((~features.usable).sum()),
        skipped=dataset.skipped,
    )
    if robustness:
        result["robustness"] = _robustness(dataset, model, log)
    return result


def subset(dataset: SpeechSet, rows: np.ndarray) -> SpeechSet:
    """The clips of ``rows``, as a set of their own (its features are cached under its own name)."""
    picked = np.flatnonzero(rows)
    return SpeechSet(f"{dataset.name}-{len(picked)}of{len(dataset)}", [dataset.files[i] for i in picked],
                     [dataset.labels[i] for i in picked], [dataset.speakers[i] for i in picked], dataset.skipped)


def _robustness(dataset: SpeechSet, model: VoiceModel, log: Optional[Printer]) -> Dict[str, Any]:
    """Accuracy under each condition, each speaker standardised with their own degraded clips
    (a session on that microphone) and after three utterances; a clip the condition silences
    counts as wrong."""
    from emotion_sensing.speech.conditions import CONDITIONS
    from emotion_sensing.speech.train import predict

    out: Dict[str, Any] = {}
    labels = np.asarray(dataset.labels)
    speakers = np.asarray(dataset.speakers)
    for condition in CONDITIONS:
        features = extract(dataset, log=log, blocks=model.blocks, condition=condition)
        usable = features.usable
        entry: Dict[str, Any] = {"n": len(dataset), "no_speech": int((~usable).sum())}
        for mode in ("speaker", "after3"):
            predicted = np.array(predict(model, features.vectors[usable], speakers[usable], mode), dtype=object)
            entry[mode] = round(float(np.sum(predicted == labels[usable]) / max(len(dataset), 1)), 4)
        out[condition] = entry
        if log:
            log(f"  {condition:<10} accuracy {entry['speaker']:.3f} (after 3 utterances {entry['after3']:.3f})")
    clean = out["clean"]["speaker"]
    for entry in out.values():
        entry["drop"] = round(clean - entry["speaker"], 4)
    return out


def held_out_rows(dataset: SpeechSet, model: VoiceModel) -> np.ndarray:
    """The clips of the speakers ``model`` was measured on (its ``test_speakers``), else of
    those it was not trained on; ValueError if it heard them all."""
    speakers = np.asarray(dataset.speakers)
    test = model.meta.get("test_speakers") or []
    rows = np.isin(speakers, test) if test else ~np.isin(speakers, list(model.meta.get("train_speakers") or []))
    if not rows.any():
        raise ValueError(f"every {dataset.name} speaker was used to train this model: nothing held out to measure it on")
    return rows


def evaluate_ravdess(datasets_dir: Path, model_path: Path, log: Optional[Printer] = None,
                     robustness: bool = False) -> Dict[str, Any]:
    """The model on the RAVDESS actors it was not trained on (its ``test_speakers``)."""
    model = _load_model(model_path)
    dataset = load_ravdess(datasets_dir)
    rows = held_out_rows(dataset, model)
    result = evaluate_set(dataset, model, rows, log, robustness=robustness)
    held = sorted(set(np.asarray(dataset.speakers)[rows]))
    result["speakers"] = f"held-out actors {held[0]}..{held[-1]} ({len(held)}), never seen in training"
    result["model"] = str(model_path)
    return result


def evaluate_manifest(path: Path, model_path: Path, log: Optional[Printer] = None,
                      robustness: bool = False) -> Dict[str, Any]:
    """The model on a ``file,label[,speaker]`` CSV; without speakers all clips share one."""
    return _evaluate_listed(load_manifest(path), model_path, log, robustness, "the manifest", "no speaker column",
                            f"{path}: no rows with a readable file and a known label")


def evaluate_folders(root: Path, model_path: Path, log: Optional[Printer] = None,
                     robustness: bool = False) -> Dict[str, Any]:
    """The model on clips in class folders (:func:`datasets.load_folders`)."""
    return _evaluate_listed(load_folders(root), model_path, log, robustness, "the folder names",
                            "folders named by the label alone",
                            f"{root}: no clip in a folder named by an emotion (angry/, happy/, OAF_angry/ ...)")


def _evaluate_listed(dataset: SpeechSet, model_path: Path, log: Optional[Printer], robustness: bool,
                     speakers_from: str, no_speakers: str, nothing: str) -> Dict[str, Any]:
    """A user's clips (a manifest or folders): ``nothing`` is the error when none is usable, with why."""
    if not len(dataset):
        raise ValueError(nothing + (f" ({'; '.join(dataset.notes)})" if dataset.notes else ""))
    model = _load_model(model_path)
    result = evaluate_set(dataset, model, log=log, robustness=robustness)
    n_speakers = result["n_speakers"]
    result["speakers"] = f"{n_speakers} speaker(s) from {speakers_from}" if n_speakers > 1 or dataset.speakers[0] != "all" \
        else f"one speaker normaliser for all clips ({no_speakers})"
    # Why rows were left out: missing files (the first few) and labels, counted by name.
    result["skipped_notes"] = list(dataset.notes)
    result["skipped_labels"] = dataset.skipped_labels.as_dict() if dataset.skipped_labels is not None else None
    result["model"] = str(model_path)
    return result


def load_comparison(models_dir: Path) -> Optional[Dict[str, Any]]:
    """The comparison table saved by ``emobot train speech``, if any."""
    from emotion_sensing.speech.train import COMPARISON_FILE

    path = Path(models_dir) / COMPARISON_FILE
    return json.loads(path.read_text()) if path.exists() else None
