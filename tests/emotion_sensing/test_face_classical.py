"""Seed 004's classical route: LBP and PHOG descriptors and the two networks on them."""
from __future__ import annotations

import numpy as np

from emotion_sensing.face.classical import features, lbp, phog, run_baseline


def test_lbp_is_one_histogram_per_cell_and_phog_one_per_pyramid_level():
    face = np.random.default_rng(0).integers(0, 255, (48, 48)).astype(np.uint8)
    codes = lbp(face)
    assert codes.shape == (36 * 59,) and np.allclose(codes.reshape(36, 59).sum(1), 1.0)
    pyramid = phog(face)
    assert pyramid.shape == (8 * (1 + 4 + 16),)
    assert np.allclose([pyramid[:8].sum(), pyramid[8:40].sum(), pyramid[40:].sum()], 1.0, atol=1e-5)


def test_phog_sees_the_direction_of_edges():
    vertical = np.zeros((48, 48), np.uint8)
    vertical[:, 24:] = 255  # a vertical edge: the gradient points along x (orientation 0)
    horizontal = vertical.T.copy()  # gradient along y (90 degrees)
    assert phog(vertical)[:8].argmax() == 0
    assert phog(horizontal)[:8].argmax() == 4


def test_both_networks_train_and_are_scored_on_every_set():
    rng = np.random.default_rng(1)

    def faces(n):
        # Two classes the descriptors can tell apart: vertical against horizontal stripes, in noise.
        labels = rng.integers(0, 2, n) * 3  # angry (0) or happy (3)
        images = rng.integers(0, 60, (n, 48, 48)).astype(np.uint8)
        stripes = (np.arange(48) // 4 % 2 * 150).astype(np.uint8)
        for image, label in zip(images, labels):
            image += stripes[None, :] if label else stripes[:, None]
        return {"images": images, "labels": labels}

    sets = {"train": faces(600), "selection": faces(60), "held_out": faces(60)}
    assert features(sets["train"]["images"][:3])["lbp"].shape == (3, 2124)
    report = run_baseline(sets, log=lambda m: None, prune_angles=(15.0, 45.0))
    for model in ("shallow", "two_stream"):
        assert report[model]["held_out"]["accuracy"] > 0.9
        assert "train" not in report[model]
    assert set(report["shallow"]["pruning_sweep"]) == {"15", "45"}
    assert report["shallow"]["pruning"]["hidden_after"] <= report["shallow"]["pruning"]["hidden_before"]
