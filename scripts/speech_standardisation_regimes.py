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
   Then with a distance threshold instead of k (the smallest at which no training actor splits), and
   as a live session would have to: each utterance, in arrival order, joins the nearest voice within
   a radius or starts one, each voice with its own running statistics (5 random orders).
3. Nuisance projection: the k directions along which the training speakers' mean vectors differ
   most, projected out of every vector before training and testing.

    .venv/bin/python scripts/speech_standardisation_regimes.py --data ../shared/datasets [--json out.json]

Measured and not built (models/speech_emotion.md, "Limits"). The features come from the feature
cache (~/.cache/emobot/speech, as `emobot train speech` extracts them): about 4 minutes on 2 cores
the first time, then a minute.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
from script_arguments import arguments
from speech_protocol import FOLDERS, accuracies, cached_vectors, report

BLOCKS = ("librosa", "egemaps", "whisper")
REGIMES = (("speaker",), ("pooled",), ("after0",), ("speaker", "pooled"), ("speaker", "after0"),
           ("speaker", "pooled", "after0"))
CLUSTERS = (2, 3, 4, 5, 6)
THRESHOLDS = (10, 15, 20, 25, 30, 40, 50, 60)
RADII = (6.0, 7.0, 8.0, 9.0, 10.0)
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


def mean_mfccs(vectors: np.ndarray) -> np.ndarray:
    """Each clip's mean MFCCs 1-19 (the librosa block leads the vector): what tells voices apart here."""
    from emotion_sensing.speech.features import feature_names

    return vectors[:, [i for i, name in enumerate(feature_names())
                       if name.startswith("mean.mfcc.") and 1 <= int(name.rsplit(".", 1)[1]) <= 19]]


def each_alone(where: np.ndarray, speakers: np.ndarray, group) -> np.ndarray:
    """Groups for the clips ``where`` when each speaker's clips are grouped on their own by ``group``
    (a function of the clips' indices), as a one-person session groups itself."""
    groups = np.empty(len(where), dtype=object)
    for speaker in np.unique(speakers[where]):
        mine = speakers[where] == speaker
        groups[mine] = [f"{speaker}-{g}" for g in group(where[mine])]
    return groups.astype(str)


def voices(vectors: np.ndarray, k: int) -> np.ndarray:
    """Each clip's group when the clips are clustered into ``k`` voices by their mean MFCCs 1-19."""
    from sklearn.cluster import AgglomerativeClustering

    x = mean_mfccs(vectors)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    return AgglomerativeClustering(k, linkage="ward").fit_predict(x).astype(str)


def purity(groups: np.ndarray, speakers: np.ndarray) -> float:
    """The share of clips whose group's most common speaker is their own."""
    return round(float(sum(np.unique(speakers[groups == g], return_counts=True)[1].max()
                           for g in np.unique(groups)) / len(groups)), 4)


def found_voices(model, vectors: np.ndarray, rows) -> dict:
    """Accuracies of ``model`` with the test clips' speakers replaced by clusters (section 2 of the doc)."""
    from emotion_sensing.speech.train import accuracy_by_mode

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
    where = np.flatnonzero(rows.savee)
    groups = each_alone(where, rows.speakers, lambda mine: voices(vectors[mine], 2))
    out["SAVEE, each speaker split in 2"] = accuracy_by_mode(model, vectors[where], rows.labels[where], groups,
                                                             ("speaker",))["speaker"]
    return out


def voice_prints(vectors: np.ndarray, rows) -> np.ndarray:
    """Each clip's mean MFCCs 1-19, standardised by the training clips (a session has no other scale)."""
    x = mean_mfccs(vectors)
    return (x - x[rows.train].mean(axis=0)) / (x[rows.train].std(axis=0) + 1e-9)


def below(prints: np.ndarray, threshold: float) -> np.ndarray:
    """Groups of clips whose Ward merge distance stays below ``threshold`` (one group for one clip)."""
    from sklearn.cluster import AgglomerativeClustering

    if len(prints) < 2:
        return np.zeros(len(prints), int)
    return AgglomerativeClustering(None, linkage="ward", distance_threshold=threshold).fit_predict(prints)


def by_threshold(model, vectors: np.ndarray, rows) -> dict:
    """Section 2, a distance threshold instead of k: the smallest of THRESHOLDS at which no training
    actor's clips split, then the test clips grouped by it and read by ``model``."""
    from emotion_sensing.speech.train import accuracy_by_mode

    prints, speakers = voice_prints(vectors, rows), rows.speakers
    train = np.flatnonzero(rows.train)
    threshold = next(t for t in THRESHOLDS
                     if all(len(np.unique(below(prints[train[speakers[train] == a]], t))) == 1
                            for a in np.unique(speakers[train])))

    def read(where, groups):
        return accuracy_by_mode(model, vectors[where], rows.labels[where], groups.astype(str), ("speaker",))["speaker"]

    out = {"threshold": threshold}
    for name, where in (("actors 19-24 pooled", np.flatnonzero(rows.test)), ("SAVEE pooled", np.flatnonzero(rows.savee))):
        groups = below(prints[where], threshold)
        out[name] = {"accuracy": read(where, groups), "voices": int(len(np.unique(groups)))}
    where = np.flatnonzero(rows.savee)
    groups = each_alone(where, speakers, lambda mine: below(prints[mine], threshold))
    out["SAVEE, each speaker alone"] = {"accuracy": read(where, groups), "voices": int(len(np.unique(groups)))}
    return out


def live(model, vectors: np.ndarray, rows) -> dict:
    """Section 2 as a live session, read by ``model``: voices found utterance by utterance (see the doc)."""
    from emotion_sensing.labels import LABELS
    from emotion_sensing.speech.speaker import SpeakerStats

    prints, speakers, labels = voice_prints(vectors, rows), rows.speakers, rows.labels

    def session(clips: np.ndarray, radius: Optional[float], seed: int) -> Tuple[int, int]:
        voices: List[list] = []  # [sum of prints, count, running statistics]
        right = 0
        for i in np.random.default_rng(seed).permutation(clips):
            distances = [np.linalg.norm(prints[i] - total / n) for total, n, _ in voices]
            near = int(np.argmin(distances)) if distances and (radius is None or min(distances) < radius) else None
            if near is None:
                voices.append([np.zeros(prints.shape[1]), 0, SpeakerStats(model.prior)])
                near = len(voices) - 1
            voice = voices[near]
            voice[0], voice[1] = voice[0] + prints[i], voice[1] + 1
            voice[2].update(vectors[i])
            right += LABELS[int(model.probabilities(voice[2].standardise(vectors[i])[np.newaxis])[0].argmax())] == labels[i]
        return right, len(voices)

    def sessions(groups: List[np.ndarray], radius: Optional[float]) -> dict:
        runs = [[session(g, radius, seed) for g in groups] for seed in range(5)]
        n = sum(len(g) for g in groups)
        return {"accuracy": round(float(np.mean([sum(r for r, _ in run) / n for run in runs])), 4),
                "voices per session": round(float(np.mean([np.mean([v for _, v in run]) for run in runs])), 2)}

    savee, test = np.flatnonzero(rows.savee), np.flatnonzero(rows.test)
    out = {}
    for radius in (None, *RADII):
        out["one voice" if radius is None else f"radius {radius:g}"] = {
            "SAVEE as one session": sessions([savee], radius),
            "actors 19-24 as one session": sessions([test], radius),
            "each SAVEE speaker alone": sessions([savee[speakers[savee] == s] for s in np.unique(speakers[savee])], radius),
            "each test actor alone": sessions([test[speakers[test] == s] for s in np.unique(speakers[test])], radius)}
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
    from emotion_sensing.speech.train import fit
    from emotion_sensing.speech.vector import layout

    args = arguments(__doc__, FOLDERS)
    log = lambda message: print(message, flush=True)  # noqa: E731
    vectors, rows = cached_vectors(args.data, BLOCKS)
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
    # Section 2 reads with the one model the protocol trains (per-speaker standardisation).
    model = fit("logreg", vectors[rows.train], rows.labels[rows.train], rows.speakers[rows.train], blocks=BLOCKS)
    out["found voices"] = found_voices(model, vectors, rows)
    for name, row in out["found voices"].items():
        log(f"found voices, {name}: {row}")
    out["voices by threshold"] = by_threshold(model, vectors, rows)
    log(f"voices by threshold: {out['voices by threshold']}")
    out["voices found live"] = live(model, vectors, rows)
    for name, row in out["voices found live"].items():
        log(f"voices found live, {name}: {row}")
    out["nuisance projection"] = projected(vectors, rows)
    for name, row in out["nuisance projection"].items():
        log(f"nuisance projection, {name}: {row}")
    return report(out, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
