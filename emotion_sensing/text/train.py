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
)
from emotion_sensing.text.model import build_pipeline, predict_labels
from emotion_sensing.text.recognizer import MODEL_FILE

C_GRID: Sequence[float] = (5.0, 10.0, 20.0)
# dair-ai texts ("i feel ...") are first-person statements of feeling, the register of a
# support chat; GoEmotions' Reddit comments are mostly neutral. Weighting dair rows 3x keeps
# the combined model's dair accuracy at the single-corpus level (val 0.872 -> 0.892) while
# GoEmotions macro-F1 stays at 0.53.
DAIR_WEIGHT = 3.0
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
    dair_weight: float = DAIR_WEIGHT,
    log: Printer = print,
) -> Dict[str, Any]:
    """Fit on both corpora's training splits, choose C on their validation splits, save.

    Returns the validation scores; writes ``text_emotion.joblib`` and its metrics JSON.
    """
    dair_train = load_dair(Path(datasets_dir) / "dair_emotion", "train")
    goemotions_train = load_goemotions_ekman(Path(datasets_dir) / "goemotions", "train", curiosity=True)
    texts = dair_train.texts + goemotions_train.texts
    labels = dair_train.labels + goemotions_train.labels
    weights = [dair_weight] * len(dair_train) + [1.0] * len(goemotions_train)
    val_splits = [
        load_dair(Path(datasets_dir) / "dair_emotion", "val"),
        load_goemotions_ekman(Path(datasets_dir) / "goemotions", "dev"),
    ]
    skipped = dair_train.skipped + goemotions_train.skipped
    log(f"training rows: {len(texts)} ({skipped} multi-label or unmapped rows skipped); dair weight {dair_weight:g}")
    best = None
    for c in c_grid:
        started = time.time()
        model = build_pipeline(c=c, class_weight=class_weight)
        model.fit(texts, labels, classifier__sample_weight=weights)
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
        "dair_weight": dair_weight,
        "train_rows": len(texts),
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
    model = recognizer.model
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


def _confusion_table(result: Dict[str, Any]) -> str:
    labels = [label for label, row in zip(result["labels"], result["confusion"]) if sum(row)]
    predicted = [
        label for i, label in enumerate(result["labels"]) if any(row[i] for row in result["confusion"])
    ]
    index = {label: i for i, label in enumerate(result["labels"])}
    lines = ["| true \\ predicted | " + " | ".join(predicted) + " |", "|---" * (len(predicted) + 1) + "|"]
    for label in labels:
        row = result["confusion"][index[label]]
        lines.append(f"| **{label}** | " + " | ".join(str(row[index[p]]) for p in predicted) + " |")
    return "\n".join(lines)


def write_card(models_dir: Path, meta: Dict[str, Any], evaluation: Dict[str, Any]) -> Path:
    """models/text_emotion.md from the training metadata and the test-split evaluation."""
    sections = []
    for result in evaluation["datasets"]:
        per_class = "\n".join(
            f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
            for label, row in result["per_class"].items()
            if row["support"]
        )
        va = result["valence_agreement"]
        sections.append(
            f"### {result['dataset']} (n = {result['n']})\n\n"
            f"accuracy **{result['accuracy']:.4f}**, macro-F1 **{result['macro_f1']:.4f}**; "
            f"valence sign agreement on {va['n']} texts with a clearly signed label: "
            f"VADER alone {va['vader_only']:.4f}, this recognizer (classifier + VADER) {va['recognizer']:.4f}\n\n"
            f"| label | precision | recall | F1 | support |\n|---|---|---|---|---|\n{per_class}\n\n"
            f"{_confusion_table(result)}\n"
        )
    validation = ", ".join(
        f"{name}: accuracy {v['accuracy']:.4f}, macro-F1 {v['macro_f1']:.4f}" for name, v in meta["validation"].items()
    )
    card = f"""# Model card: text emotion classifier (`text_emotion.joblib`)

A scikit-learn pipeline: TF-IDF over word 1–2-grams (lower-cased, apostrophes dropped,
sublinear tf, min_df 2; {meta['vocabulary']:,} n-grams) and multinomial logistic regression
(C = {meta['C']:g}, class_weight = {meta['class_weight']}). Output: probabilities over the
7 canonical labels (angry, disgust, fear, happy, sad, surprise, neutral) plus `curiosity`.

Why curiosity: GoEmotions' Ekman grouping files curiosity and confusion under "surprise",
so a model trained on it reads every question ("where is my order?") as surprise. This
model keeps those rows apart; on the Ekman test split curiosity counts as surprise (as the
grouping does), and at run time the TextRecognizer counts it as neutral. It then adds
VADER's neg/neu/pos/compound scores and blends VADER's compound into the reading's valence.

- **Size:** {meta['size_bytes'] / 1e6:.1f} MB on disk (joblib, compressed).
- **Speed:** about a millisecond per message on one core (see `emobot bench turn`).

## Data and split

Trained on the training splits of two corpora together ({meta['train_rows']:,} rows):

- **dair-ai emotion** (CARER; English tweets; 16,000 train / 2,000 val / 2,000 test), labels
  mapped anger→angry, fear→fear, joy→happy, love→happy, sadness→sad, surprise→surprise.
  Its rows are weighted {meta['dair_weight']:g}× in training (first-person statements of
  feeling, the register of a support chat).
- **GoEmotions, Ekman grouping** (Reddit comments; monologg/GoEmotions-pytorch `data/ekman`,
  the official 43,410 / 5,426 / 5,427 split), single-label rows only (multi-label rows skipped),
  anger→angry, joy→happy, sadness→sad, the rest by name; in training, "surprise" rows whose
  fine labels (`data/original`) are only curiosity/confusion become `curiosity`.

C and the class weighting were chosen on the two validation splits ({validation});
the test splits below were not used for any choice. Both corpora are for research use;
dair-ai emotion has no licence file and is for educational/research use only.

## Accuracy on the test splits

Measured by `emobot eval text --json` (the same code `emobot train text` runs after fitting).

{chr(10).join(sections)}
## Limits

- Trained on tweets and Reddit comments; short support-chat messages differ (politeness,
  questions). "neutral" and "disgust" come only from GoEmotions.
- dair-ai emotion has no neutral class, so its accuracy ignores neutral texts entirely.
- English only.

## Retrain

```bash
.venv/bin/emobot train text --data ../shared/datasets   # writes models/text_emotion.joblib and this card
.venv/bin/emobot eval text --data ../shared/datasets --json
```
"""
    path = Path(models_dir) / "text_emotion.md"
    path.write_text(card)
    return path
