#!/usr/bin/env python
"""A lexical expert beside the text encoder, measured and not shipped (see models/text_emotion.md,
"Limits"). A product of experts: the shipped encoder's calibrated logits plus w x the log-probabilities
of a TF-IDF word 1-2-gram logistic regression (balanced classes, C=5).

    .venv/bin/python scripts/text_lexical_expert.py --data ../shared/datasets [--json out.json]

1. In-domain: the TF-IDF model trained on the training splits of all three corpora; the weight
   curve on the validation and test splits.
2. Held out: for each corpus, the TF-IDF model trained on the other two only, beside the shipped
   encoder (which saw all three), scored on the held-out corpus's test split: what the lexical
   expert adds on text it never saw.

About 12 minutes on 2 cores (four TF-IDF fits of 1-3 minutes, the encoder on 30,000 messages).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from script_arguments import arguments  # noqa: E402

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)


def _figures(result):
    return {k: result[k] for k in ("accuracy", "macro_f1", "micro_f1_emotions")}


def _tfidf(data: Path, corpora):
    from emotion_sensing.text.model import build_pipeline
    from emotion_sensing.text.train import load_split

    texts, labels = [], []
    for corpus in corpora:
        split = load_split(data, corpus, "train", curiosity=True)
        texts += split.texts
        labels += split.labels
    started = time.time()
    model = build_pipeline(c=5.0, class_weight="balanced")
    model.fit(texts, labels)
    print(f"TF-IDF on {', '.join(corpora)}: {len(texts):,} messages, {time.time() - started:.0f} s", flush=True)
    return model


def _log_probs(model, texts, labels):
    classes = [str(c) for c in model.classes_]
    probs = model.predict_proba(list(texts))
    out = np.full((len(texts), len(labels)), 1e-9)
    for j, label in enumerate(labels):
        if label in classes:
            out[:, j] = np.clip(probs[:, classes.index(label)], 1e-9, None)
    return np.log(out)


def main() -> int:
    from emotion_sensing.text.encoder import EncoderClassifier
    from emotion_sensing.text.train import CORPORA, load_split, score

    args = arguments(__doc__, ("dair_emotion", "goemotions", "dailydialog"), model="text_emotion.npz")
    encoder = EncoderClassifier(args.model)
    labels, temperature = encoder.labels, encoder.temperature
    splits = {(c, w): load_split(args.data, c, w, curiosity=(w != "test")) for c in CORPORA for w in ("val", "test")}
    logits = {}
    for key, split in splits.items():
        logits[key] = encoder.logits(split.texts) / temperature
        print(f"encoder: {split.name} ({len(split):,} messages)", flush=True)
    out = {"weights": WEIGHTS, "in_domain": [], "held_out": []}
    everything = _tfidf(args.data, CORPORA)
    lexical = {key: _log_probs(everything, split.texts, labels) for key, split in splits.items()}
    for w in WEIGHTS:
        row = {"weight": w}
        for (corpus, which), split in splits.items():
            row[split.name] = _figures(score(split, logits[(corpus, which)] + w * lexical[(corpus, which)], labels, 1.0))
        out["in_domain"].append(row)
        print(f"all three, w {w:g}: " + ", ".join(f"{name} {r['accuracy']:.4f}/{r['macro_f1']:.4f}"
                                                 for name, r in row.items() if name != "weight"), flush=True)
    for held in CORPORA:
        others = [c for c in CORPORA if c != held]
        model = _tfidf(args.data, others)
        split = splits[(held, "test")]
        lp = _log_probs(model, split.texts, labels)
        for w in WEIGHTS:
            result = _figures(score(split, logits[(held, "test")] + w * lp, labels, 1.0))
            out["held_out"].append({"held_out": held, "tfidf_trained_on": others, "weight": w, **result})
            print(f"{split.name}, TF-IDF without it, w {w:g}: accuracy {result['accuracy']:.4f}, "
                  f"macro-F1 {result['macro_f1']:.4f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
