#!/usr/bin/env python
"""Voice without speaker statistics: does training in the test's standardisation help, or
finding the voices, or removing what tells speakers apart?

The shipped voice model is trained on clips standardised with their own speaker's statistics and
is weak on SAVEE without them (one normaliser for the whole corpus, `pooled`, or a session's first
utterance, `after0`). This measures three ways, each with the same logistic regression trained on
RAVDESS actors 1-18 and tested on actors 19-24 and on SAVEE:

1. Regimes: trained on the clips standardised each way (and several ways at once, every clip once
   per way), for the shipped blocks together and each alone.
2. Voices found without identities: the test clips clustered (Ward, on their mean MFCCs 1-19,
   standardised) into k groups, each group standardised as one speaker; and each SAVEE speaker's
   clips clustered on their own into 2, which is what a one-person session would do to itself.
3. Nuisance projection: the k directions along which the training speakers' mean vectors differ
   most, projected out of every vector before training and testing.

    .venv/bin/python scripts/speech_standardisation_regimes.py --data ../shared/datasets [--json out.json]

Measured and not built (models/speech_emotion.md, "Limits"). The features come from the feature
cache (~/.cache/emobot/speech, as `emobot train speech` extracts them): about 4 minutes on 2 cores
the first time, then a minute.
"""
from __future__ import annotations

import numpy as np
from speech_protocol import accuracies, arguments, corpora, report

BLOCKS = ("librosa", "egemaps", "whisper")
REGIMES = (("speaker",), ("pooled",), ("after0",), ("speaker", "pooled"), ("speaker", "after0"),
           ("speaker", "pooled", "after0"))
CLUSTERS = (2, 3, 4, 5, 6)
PROJECTED = (2, 5, 10, 17)  # 18 training speakers: at most 17 directions between their means


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


def voices(vectors: np.ndarray, k: int) -> np.ndarray:
    """Each clip's group when the clips are clustered into ``k`` voices by their mean MFCCs 1-19."""
    from sklearn.cluster import AgglomerativeClustering

    from emotion_sensing.speech.features import feature_names

    mfcc = [i for i, name in enumerate(feature_names())
            if name.startswith("mean.mfcc.") and 1 <= int(name.rsplit(".", 1)[1]) <= 19]
    x = vectors[:, mfcc]
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    return AgglomerativeClustering(k, linkage="ward").fit_predict(x).astype(str)


def purity(groups: np.ndarray, speakers: np.ndarray) -> float:
    """The share of clips whose group's most common speaker is their own."""
    return round(float(sum(np.unique(speakers[groups == g], return_counts=True)[1].max()
                           for g in np.unique(groups)) / len(groups)), 4)


def found_voices(vectors: np.ndarray, rows) -> dict:
    """Accuracies with the test clips' speakers replaced by clusters (section 2 of the doc)."""
    from emotion_sensing.speech.train import accuracy_by_mode, fit

    model = fit("logreg", vectors[rows.train], rows.labels[rows.train], rows.speakers[rows.train], blocks=BLOCKS)
    out = {}
    for name, where in (("actors 19-24", rows.test), ("SAVEE", rows.savee)):
        x, labels, speakers = vectors[where], rows.labels[where], rows.speakers[where]
        row = {"speakers known": accuracy_by_mode(model, x, labels, speakers, ("speaker",))["speaker"],
               "pooled": accuracy_by_mode(model, x, labels, speakers, ("pooled",))["pooled"]}
        for k in CLUSTERS:
            groups = voices(x, k)
            row[f"{k} voices"] = accuracy_by_mode(model, x, labels, groups, ("speaker",))["speaker"]
            row[f"{k} voices purity"] = purity(groups, speakers)
        out[name] = row
    # One person's clips split into 2 "voices", as a one-person session would split itself.
    where = rows.savee
    x, labels, speakers = vectors[where], rows.labels[where], rows.speakers[where]
    groups = np.empty(len(x), dtype=object)
    for speaker in np.unique(speakers):
        mine = speakers == speaker
        groups[mine] = [f"{speaker}-{g}" for g in voices(x[mine], 2)]
    out["SAVEE, each speaker split in 2"] = accuracy_by_mode(model, x, labels, groups.astype(str), ("speaker",))["speaker"]
    return out


def projected(vectors: np.ndarray, rows) -> dict:
    """Accuracies with the directions between training speakers projected out (section 3 of the doc)."""
    train = rows.train
    z = (vectors - vectors[train].mean(axis=0)) / (vectors[train].std(axis=0) + 1e-6)
    speakers = rows.speakers[train]
    means = np.stack([z[train][speakers == s].mean(axis=0) for s in np.unique(speakers)])
    directions = np.linalg.svd(means - means.mean(axis=0), full_matrices=False)[2]
    out = {"none": accuracies(vectors, rows, BLOCKS)}
    for k in PROJECTED:
        v = directions[:k]
        out[f"{k} directions"] = accuracies((z - (z @ v.T) @ v).astype(np.float32), rows, BLOCKS)
    return out


def main() -> int:
    from emotion_sensing.speech.datasets import extract
    from emotion_sensing.speech.train import protocol_rows
    from emotion_sensing.speech.vector import layout

    args = arguments(__doc__)
    ravdess, savee = corpora(args.data)
    log = lambda message: print(message, flush=True)  # noqa: E731
    vectors = np.vstack([extract(ravdess, log=log, blocks=BLOCKS).vectors, extract(savee, log=log, blocks=BLOCKS).vectors])
    rows = protocol_rows(ravdess, savee, usable=~np.isnan(vectors).any(axis=1))  # no speech, no vector
    labels, speakers, train, test, held_out = rows.labels, rows.speakers, rows.train, rows.test, rows.savee

    where = layout(BLOCKS)
    columns = {"+".join(BLOCKS): slice(None), **{block: where[block] for block in BLOCKS}}
    out = {"regimes": {}}
    for name, cols in columns.items():
        for regime in REGIMES:
            row = score(vectors[:, cols].astype(np.float64), labels, speakers, (train, test, held_out), regime)
            out["regimes"].setdefault(name, {})["+".join(regime)] = row
            log(f"{name:24s} trained {'+'.join(regime):22s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    vectors = np.nan_to_num(vectors).astype(np.float32)
    out["found voices"] = found_voices(vectors, rows)
    for name, row in out["found voices"].items():
        log(f"found voices, {name}: {row}")
    out["nuisance projection"] = projected(vectors, rows)
    for name, row in out["nuisance projection"].items():
        log(f"nuisance projection, {name}: {row}")
    return report(out, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
