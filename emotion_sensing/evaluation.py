"""Metrics shared by every modality's ``emobot eval``: one JSON shape for all."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from emotion_sensing.labels import LABELS


def evaluate(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = LABELS
) -> Dict[str, Any]:
    """Accuracy, macro-F1 over the labels present in ``truth``, per-class figures, confusion.

    ``confusion[i][j]`` counts items of true label ``labels[i]`` predicted as ``labels[j]``.
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    index = {label: i for i, label in enumerate(labels)}
    confusion: List[List[int]] = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, predicted):
        confusion[index[t]][index[p]] += 1
    n = len(truth)
    correct = sum(confusion[i][i] for i in range(len(labels)))
    per_class: Dict[str, Dict[str, Optional[float]]] = {}
    f1s = []
    for i, label in enumerate(labels):
        support = sum(confusion[i])
        predicted_n = sum(row[i] for row in confusion)
        tp = confusion[i][i]
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if recall is not None and precision + recall > 0
            else (0.0 if recall is not None else None)
        )
        per_class[label] = {
            "precision": round(precision, 4),
            "recall": None if recall is None else round(recall, 4),
            "f1": None if f1 is None else round(f1, 4),
            "support": support,
        }
        if support:
            f1s.append(f1 or 0.0)
    return {
        "n": n,
        "accuracy": round(correct / n, 4) if n else None,
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "per_class": per_class,
        "labels": list(labels),
        "confusion": confusion,
    }


def micro_f1_emotions(truth: Sequence[str], predicted: Sequence[str], none: str = "neutral") -> Optional[float]:
    """Micro-F1 over the emotion classes, "no emotion" excluded (DailyDialog's usual figure):
    a hit is a text with an emotion predicted as that emotion."""
    hits = sum(t == p != none for t, p in zip(truth, predicted))
    predicted_n = sum(p != none for p in predicted)
    true_n = sum(t != none for t in truth)
    return round(2 * hits / (predicted_n + true_n), 4) if predicted_n + true_n else None


def format_report(result: Dict[str, Any]) -> str:
    """A human-readable table of an :func:`evaluate` result."""
    lines = [
        f"n={result['n']}  accuracy={result['accuracy']}  macro-F1={result['macro_f1']}",
        f"{'label':<10}{'precision':>10}{'recall':>10}{'f1':>8}{'support':>9}",
    ]
    for label, row in result["per_class"].items():
        if not row["support"]:
            continue
        lines.append(
            f"{label:<10}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>8.3f}{row['support']:>9}"
        )
    labels = result["labels"]
    lines.append("confusion (rows: true, columns: predicted)")
    lines.append(" " * 10 + "".join(f"{label[:7]:>8}" for label in labels))
    for label, row in zip(labels, result["confusion"]):
        if sum(row):
            lines.append(f"{label:<10}" + "".join(f"{v:>8}" for v in row))
    return "\n".join(lines)
