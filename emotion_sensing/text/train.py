"""Reproduce and measure the shipped text emotion model (``emobot train|eval text``)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import joblib

from emotion_sensing.evaluation import evaluate, format_report
from emotion_sensing.labels import VALENCE
from emotion_sensing.text.datasets import (
    TextSplit,
    load_dair,
    load_goemotions_ekman,
    training_sets,
)
from emotion_sensing.text.model import build_pipeline, predict_labels
from emotion_sensing.text.recognizer import MODEL_FILE

C_GRID: Sequence[float] = (3.0, 10.0, 30.0, 100.0)
Printer = Callable[[str], None]


def _score(model, splits: Sequence[TextSplit]) -> Dict[str, Dict[str, Any]]:
    return {s.name: evaluate(s.labels, predict_labels(model, s.texts)) for s in splits}


def _selection_score(scores: Dict[str, Dict[str, Any]]) -> float:
    # Both corpora matter: dair's accuracy and GoEmotions' macro-F1 (its classes are skewed).
    return sum(r["accuracy"] if name.startswith("dair") else r["macro_f1"] for name, r in scores.items())


def train_text(
    datasets_dir: Path,
    models_dir: Path,
    c_grid: Sequence[float] = C_GRID,
    class_weight: Optional[str] = "balanced",
    log: Printer = print,
) -> Dict[str, Any]:
    """Fit on both corpora's training splits, choose C on their validation splits, save.

    Returns the validation scores; writes ``text_emotion.joblib`` and its metrics JSON.
    """
    train, _ = training_sets(datasets_dir)
    val_splits = [
        load_dair(Path(datasets_dir) / "dair_emotion", "val"),
        load_goemotions_ekman(Path(datasets_dir) / "goemotions", "dev"),
    ]
    log(f"training rows: {len(train)} ({train.skipped} multi-label or unmapped rows skipped)")
    best = None
    for c in c_grid:
        started = time.time()
        model = build_pipeline(c=c, class_weight=class_weight).fit(train.texts, train.labels)
        scores = _score(model, val_splits)
        summary = ", ".join(
            f"{name}: acc {r['accuracy']:.3f} macro-F1 {r['macro_f1']:.3f}" for name, r in scores.items()
        )
        log(f"C={c:g}  {summary}  ({time.time() - started:.0f} s)")
        if best is None or _selection_score(scores) > _selection_score(best[1]):
            best = (c, scores, model)
    c, scores, model = best
    log(f"chosen C={c:g}")
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / MODEL_FILE
    joblib.dump(model, path, compress=3)
    meta = {
        "C": c,
        "class_weight": class_weight,
        "train_rows": len(train),
        "validation": {name: {k: r[k] for k in ("n", "accuracy", "macro_f1")} for name, r in scores.items()},
        "size_bytes": path.stat().st_size,
        "vocabulary": len(model.named_steps["tfidf"].vocabulary_),
    }
    (models_dir / "text_emotion.train.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"saved {path} ({meta['size_bytes'] / 1e6:.1f} MB, {meta['vocabulary']} n-grams)")
    return meta


def vader_valence_agreement(split: TextSplit, recognizer) -> Dict[str, Any]:
    """How often VADER's compound sign matches the valence sign of the true label.

    Only labels with a clear sign count (neutral and surprise are skipped); a compound of
    exactly zero counts as disagreement.
    """
    agree = counted = model_agree = 0
    for text, label in zip(split.texts, split.labels):
        sign = VALENCE[label]
        if label in ("neutral", "surprise") or sign == 0:
            continue
        counted += 1
        compound = recognizer.vader(text)["compound"]
        agree += compound * sign > 0
        model_agree += recognizer.read(text).valence * sign > 0
    return {
        "n": counted,
        "vader_only": round(agree / counted, 4) if counted else None,
        "recognizer": round(model_agree / counted, 4) if counted else None,
    }


def eval_text(
    splits: Sequence[TextSplit], model_path: Path, log: Optional[Printer] = print
) -> Dict[str, Any]:
    """Accuracy and friends of the model at ``model_path`` on each split."""
    from emotion_sensing.text.recognizer import TextRecognizer

    recognizer = TextRecognizer(model_path)
    if not recognizer.has_classifier:
        raise FileNotFoundError(f"no text model at {model_path}; run `emobot train text` first")
    model = joblib.load(model_path)
    results = []
    for split in splits:
        result = evaluate(split.labels, predict_labels(model, split.texts))
        result.update(
            modality="text",
            dataset=split.name,
            skipped=split.skipped,
            valence_agreement=vader_valence_agreement(split, recognizer),
        )
        results.append(result)
        if log:
            log(f"== {split.name}")
            log(format_report(result))
            va = result["valence_agreement"]
            log(f"valence sign agreement on {va['n']} texts: VADER only {va['vader_only']}, recognizer {va['recognizer']}")
    return {"modality": "text", "model": str(model_path), "datasets": results}
