"""Per-speaker standardisation of utterance vectors: the speaker is the session.

Voices differ more between people (pitch, timbre, microphone, loudness) than one person's
voice differs between emotions, so a classifier trained on some speakers misreads others.
Standardising each feature with the speaker's own statistics — from their unlabelled
utterances — removes most of that (FINDINGS.md, "Voice": about 45% -> 61% on held-out
RAVDESS actors). In a live system the speaker is the session: :class:`SpeakerStats` keeps a
running mean and variance of the session's utterance vectors (derived numbers only, no
audio) and the recognizer standardises each new utterance with them.

With few utterances the running statistics are shrunk towards a population prior
(:class:`SpeakerPrior`: the training speakers' mean vector and average within-speaker
variance), weighted as ``prior_weight`` utterances, so the first utterance of a session is
standardised with population figures and later ones increasingly with the speaker's own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Sequence

import numpy as np

EPSILON = 1e-6


@dataclass(frozen=True)
class SpeakerPrior:
    """What a speaker's statistics are assumed to be before any utterance is heard."""

    mean: np.ndarray
    var: np.ndarray
    weight: float = 3.0

    @classmethod
    def fit(cls, vectors: np.ndarray, speakers: Sequence[str], weight: float = 3.0) -> SpeakerPrior:
        """Mean of all vectors and the average of each speaker's own variance."""
        speakers = np.asarray(speakers)
        variances = [vectors[speakers == s].var(axis=0) for s in np.unique(speakers)]
        return cls(vectors.mean(axis=0), np.mean(variances, axis=0), weight)

    def to_dict(self) -> Dict[str, object]:
        return {"mean": self.mean.astype(np.float32), "var": self.var.astype(np.float32), "weight": self.weight}

    @classmethod
    def from_dict(cls, data: Dict[str, object]) -> SpeakerPrior:
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["var"], dtype=np.float64),
                   float(data["weight"]))


class SpeakerStats:
    """Running mean and variance of one speaker's utterance vectors (Welford's method)."""

    def __init__(self, prior: SpeakerPrior) -> None:
        self.prior = prior
        self.count = 0
        self._mean = np.zeros_like(prior.mean, dtype=np.float64)
        self._m2 = np.zeros_like(prior.mean, dtype=np.float64)

    def update(self, vector: np.ndarray) -> None:
        """Add one utterance vector."""
        vector = np.asarray(vector, dtype=np.float64)
        self.count += 1
        delta = vector - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (vector - self._mean)

    def extend(self, vectors: Iterable[np.ndarray]) -> SpeakerStats:
        for vector in vectors:
            self.update(vector)
        return self

    @property
    def mean(self) -> np.ndarray:
        """The speaker's mean, shrunk towards the prior by its weight."""
        w = self.prior.weight
        return (self.count * self._mean + w * self.prior.mean) / (self.count + w)

    @property
    def var(self) -> np.ndarray:
        w = self.prior.weight
        return (self._m2 + w * self.prior.var) / (self.count + w)

    def standardise(self, vectors: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` with this speaker's (shrunk) statistics; rows or one vector."""
        return ((np.asarray(vectors, dtype=np.float64) - self.mean) / np.sqrt(self.var + EPSILON)).astype(np.float32)


def standardise_by_speaker(vectors: np.ndarray, speakers: Sequence[str], prior: SpeakerPrior) -> np.ndarray:
    """Each speaker's vectors standardised with statistics of all their own vectors (enrolled)."""
    speakers = np.asarray(speakers)
    out = np.empty_like(vectors, dtype=np.float32)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        out[rows] = SpeakerStats(prior).extend(vectors[rows]).standardise(vectors[rows])
    return out


def standardise_running(
    vectors: np.ndarray, speakers: Sequence[str], prior: SpeakerPrior, seed: int = 0
) -> np.ndarray:
    """As a live session would: each speaker's clips in a random order, each standardised
    with the statistics of the clips heard so far, itself included."""
    speakers = np.asarray(speakers)
    rng = np.random.default_rng(seed)
    out = np.empty_like(vectors, dtype=np.float32)
    for speaker in np.unique(speakers):
        rows = np.flatnonzero(speakers == speaker)
        stats = SpeakerStats(prior)
        for row in rng.permutation(rows):
            stats.update(vectors[row])
            out[row] = stats.standardise(vectors[row])
    return out
