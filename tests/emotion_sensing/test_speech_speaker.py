"""Per-speaker standardisation: a speaker's own statistics, learnt from their utterances."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.speech.speaker import SpeakerPrior, SpeakerStats, standardise_by_speaker, standardise_running


def test_running_statistics_match_the_batch_ones():
    rng = np.random.default_rng(0)
    vectors = rng.normal(5.0, 2.0, size=(200, 4))
    stats = SpeakerStats(SpeakerPrior(np.zeros(4), np.ones(4), weight=0.0)).extend(vectors)
    assert stats.count == 200
    np.testing.assert_allclose(stats.mean, vectors.mean(axis=0))
    np.testing.assert_allclose(stats.var, vectors.var(axis=0))


def test_a_new_speaker_starts_from_the_prior_and_moves_towards_their_own_voice():
    prior = SpeakerPrior(np.zeros(2), np.ones(2), weight=3.0)
    stats = SpeakerStats(prior)
    np.testing.assert_allclose(stats.standardise(np.array([1.0, -1.0])), [1.0, -1.0], atol=1e-5)
    for _ in range(3):
        stats.update(np.array([10.0, 10.0]))
    np.testing.assert_allclose(stats.mean, [5.0, 5.0])  # three utterances weigh as much as the prior


def test_speaker_offsets_disappear():
    rng = np.random.default_rng(1)
    emotion = rng.normal(size=(60, 3))
    loud_low = emotion * 2 + np.array([20.0, -5.0, 3.0])  # another microphone, another voice
    vectors = np.vstack([emotion, loud_low])
    speakers = ["a"] * 60 + ["b"] * 60
    prior = SpeakerPrior.fit(vectors, speakers, weight=0.0)
    out = standardise_by_speaker(vectors, speakers, prior)
    np.testing.assert_allclose(out[:60], out[60:], atol=1e-4)
    running = standardise_running(vectors, speakers, prior)
    assert running.shape == vectors.shape and np.isfinite(running).all()


def test_prior_round_trips():
    prior = SpeakerPrior(np.arange(3.0), np.ones(3), 2.0)
    again = SpeakerPrior.from_dict(prior.to_dict())
    assert again.weight == 2.0 and np.allclose(again.mean, prior.mean)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_standardise_is_finite_for_constant_features(n):
    stats = SpeakerStats(SpeakerPrior(np.zeros(2), np.zeros(2), weight=1.0))
    for _ in range(n):
        stats.update(np.array([1.0, 1.0]))
    assert np.isfinite(stats.standardise(np.array([1.0, 2.0]))).all()
