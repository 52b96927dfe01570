#!/usr/bin/env python
"""Voice without speaker statistics: does training in the test's standardisation help?

The shipped voice model is trained on clips standardised with their own speaker's statistics and
is weak on SAVEE without them (one normaliser for the whole corpus, `pooled`, or a session's first
utterance, `after0`). This trains the same logistic regression on RAVDESS actors 1-18 standardised
each way (and several ways at once, every clip once per way) and tests each on actors 19-24 (per
speaker) and on SAVEE (per speaker, pooled, after0), for the shipped blocks together and each alone.

    .venv/bin/python scripts/speech_standardisation_regimes.py --data ../shared/datasets [--json out.json]

Measured and not built (models/speech_emotion.md, "Limits"). The features come from the feature
cache (~/.cache/emobot/speech, as `emobot train speech` extracts them): about 4 minutes on 2 cores
the first time, then a minute.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emotion_sensing.config import DEFAULT_DATASETS_DIR  # noqa: E402

BLOCKS = ("librosa", "egemaps", "whisper")
REGIMES = (("speaker",), ("pooled",), ("after0",), ("speaker", "pooled"), ("speaker", "after0"),
           ("speaker", "pooled", "after0"))


def score(x, labels, speakers, rows, regime):
    """Accuracies of a logistic regression trained on the ``train`` rows standardised each way of ``regime``."""
    from emotion_sensing.speech.model import build_classifier
    from emotion_sensing.speech.speaker import SpeakerPrior
    from emotion_sensing.speech.train import standardise

    train, test, held_out = rows
    prior = SpeakerPrior.fit(x[train], speakers[train])

    def standardised(where, mode):
        return standardise(x[where], speakers[where], prior, mode)

    classifier = build_classifier("logreg", seed=0).fit(
        np.vstack([standardised(train, mode) for mode in regime]), np.concatenate([labels[train]] * len(regime)))

    def accuracy(where, mode):
        return round(float((classifier.predict(standardised(where, mode)) == labels[where]).mean()), 4)

    return {"actors 19-24": accuracy(test, "speaker"),
            **{f"SAVEE {mode}": accuracy(held_out, mode) for mode in ("speaker", "pooled", "after0")}}


def main() -> int:
    from emotion_sensing.speech.datasets import extract, load_ravdess, load_savee
    from emotion_sensing.speech.train import protocol_rows
    from emotion_sensing.speech.vector import layout

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    ravdess, savee = load_ravdess(args.data), load_savee(args.data)
    log = lambda message: print(message, flush=True)  # noqa: E731
    vectors = np.vstack([extract(ravdess, log=log, blocks=BLOCKS).vectors, extract(savee, log=log, blocks=BLOCKS).vectors])
    rows = protocol_rows(ravdess, savee, usable=~np.isnan(vectors).any(axis=1))  # no speech, no vector
    labels, speakers, train, test, held_out = rows.labels, rows.speakers, rows.train, rows.test, rows.savee

    where = layout(BLOCKS)
    columns = {"+".join(BLOCKS): slice(None), **{block: where[block] for block in BLOCKS}}
    out = {}
    for name, cols in columns.items():
        for regime in REGIMES:
            row = score(vectors[:, cols].astype(np.float64), labels, speakers, (train, test, held_out), regime)
            out.setdefault(name, {})["+".join(regime)] = row
            log(f"{name:24s} trained {'+'.join(regime):22s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
