#!/usr/bin/env python
"""Voice without speaker statistics: which feature values carry the speaker rather than the emotion?

Without speaker identities (SAVEE `pooled`: one normaliser for the whole corpus) the shipped voice
vector reads SAVEE at 0.370, against 0.556 with each speaker's own statistics. A speaker's voice shows
most in the *levels* of the features (the mean of each MFCC and log-mel band over an utterance: the
vocal tract, the microphone), less in how they move (their standard deviations, pitch range, slopes).
This drops groups of level values and measures, with the protocol's logistic regression (trained on
RAVDESS actors 1-18, each standardised with their own statistics):

- RAVDESS actors 1-18 cross-validated by actor (6 folds), with speakers and pooled: the only figures a
  choice could be made on without looking at SAVEE;
- actors 19-24, with speakers and pooled; SAVEE with speakers, pooled, and a live session's first
  utterance and after 3 and 10 (`after0`, `after3`, `after10`).

    .venv/bin/python scripts/speech_level_features.py --data ../shared/datasets [--json out.json]

Measured and not built (models/speech_emotion.md, "Limits"). The features come from the feature
cache (~/.cache/emobot/speech, as `emobot train speech` extracts them): about 5 minutes on 2 cores
the first time, then 2.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
from script_arguments import arguments
from speech_protocol import FOLDERS, cached_vectors, report

BLOCKS = ("librosa", "egemaps", "whisper")
# librosa's frame features, in the order of speech/features.py (its vector: their means, then their
# standard deviations over the voiced frames).
LIBROSA_PARTS = {"mfcc": (0, 40), "mfcc_delta": (40, 80), "chroma": (80, 92), "mel": (92, 220), "rms": (220, 221),
                 "poly": (221, 224), "centroid..zcr": (224, 228)}
LIBROSA_FRAME_FEATURES = 228
# eGeMAPS functionals that describe movement or voice quality rather than a level.
MOVEMENT = ("stddevNorm", "pctlrange", "Slope", "PerSec", "SegmentLength", "jitter", "shimmer", "HNR")
FOLDS = 6


def subsets(n_columns: int) -> Dict[str, np.ndarray]:
    """Column sets of the shipped vector, each without one group of level values."""
    import opensmile

    from emotion_sensing.speech.vector import layout

    where = layout(BLOCKS)
    every = np.arange(n_columns)
    librosa, egemaps, whisper = (every[where[block]] for block in BLOCKS)
    names = list(opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                 feature_level=opensmile.FeatureLevel.Functionals).feature_names)
    assert len(names) == len(egemaps)
    egemaps_levels = egemaps[[i for i, name in enumerate(names) if not any(k in name for k in MOVEMENT)]]

    def means(*parts):
        return np.concatenate([librosa[slice(*LIBROSA_PARTS[part])] for part in parts])

    def without(*drop):
        return np.setdiff1d(every, np.concatenate(drop))

    librosa_means = librosa[:LIBROSA_FRAME_FEATURES]
    return {
        "all (shipped)": every,
        "without librosa's MFCC means": without(means("mfcc")),
        "without librosa's log-mel means": without(means("mel")),
        "without librosa's MFCC and log-mel means": without(means("mfcc", "mel")),
        "without librosa's means": without(librosa_means),
        "without librosa's means and eGeMAPS' levels": without(librosa_means, egemaps_levels),
        "without librosa's and Whisper's means": without(librosa_means, whisper[: len(whisper) // 2]),
    }


def main() -> int:
    from emotion_sensing.speech.train import accuracy_by_mode, fit

    args = arguments(__doc__, FOLDERS)
    log = lambda message: print(message, flush=True)  # noqa: E731
    vectors, rows = cached_vectors(args.data, BLOCKS)
    vectors = np.nan_to_num(vectors).astype(np.float32)
    actors = sorted(set(rows.speakers[rows.train]))
    folds = [actors[k::FOLDS] for k in range(FOLDS)]
    out = {}
    for name, columns in subsets(vectors.shape[1]).items():
        x = vectors[:, columns]
        right = {"speaker": 0.0, "pooled": 0.0}
        for fold in folds:
            held = rows.train & np.isin(rows.speakers, fold)
            kept = rows.train & ~held
            model = fit("logreg", x[kept], rows.labels[kept], rows.speakers[kept])
            for mode, accuracy in accuracy_by_mode(model, x[held], rows.labels[held], rows.speakers[held],
                                                   tuple(right)).items():
                right[mode] += accuracy * held.sum()
        model = fit("logreg", x[rows.train], rows.labels[rows.train], rows.speakers[rows.train])
        test = accuracy_by_mode(model, x[rows.test], rows.labels[rows.test], rows.speakers[rows.test], ("speaker", "pooled"))
        held_out = accuracy_by_mode(model, x[rows.savee], rows.labels[rows.savee], rows.speakers[rows.savee],
                                    ("speaker", "pooled", "after0", "after3", "after10"))
        out[name] = {"columns": int(len(columns)),
                     **{f"CV {mode}": round(total / rows.train.sum(), 4) for mode, total in right.items()},
                     **{f"test actors {mode}": value for mode, value in test.items()},
                     **{f"SAVEE {mode}": value for mode, value in held_out.items()}}
        log(f"{name:45s} " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in out[name].items()))
    return report(out, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
