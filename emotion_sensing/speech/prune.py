"""Pruning an MLP's hidden layer by distinctiveness (Gedeon & Harris' method).

A hidden unit's function is its vector of outputs over the training patterns. Two units
whose vectors point the same way (angle below ``similar_deg``, e.g. 15°) do the same job:
one is removed and its outgoing weights are added to the other's. Two whose vectors point
in opposite directions (angle above ``opposite_deg``, e.g. 165°) cancel each other out:
with tanh units (outputs centred on 0) ``h_b ≈ -h_a``, so one is removed and the other's
outgoing weights become ``w_a - w_b``. The network is pruned after a first epoch of training
and then retrained from the pruned weights.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline

SIMILAR_DEG = 15.0
OPPOSITE_DEG = 165.0


@dataclass(frozen=True)
class PruneReport:
    """What pruning did to one network."""

    hidden_before: int
    hidden_after: int
    merged_similar: int
    merged_opposite: int

    def to_dict(self) -> Dict[str, int]:
        return dict(self.__dict__)


def unit_angles(activations: np.ndarray) -> np.ndarray:
    """Angles in degrees between every pair of hidden units' output vectors (columns)."""
    norms = np.linalg.norm(activations, axis=0)
    norms[norms == 0] = 1.0
    unit = activations / norms
    cosine = np.clip(unit.T @ unit, -1.0, 1.0)
    return np.degrees(np.arccos(cosine))


def prune_layer(
    w_in: np.ndarray, b_in: np.ndarray, w_out: np.ndarray, activations: np.ndarray,
    similar_deg: float = SIMILAR_DEG, opposite_deg: float = OPPOSITE_DEG,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, PruneReport]:
    """Pruned copies of a hidden layer's weights; the most similar pairs are merged first."""
    angles = unit_angles(activations)
    n = angles.shape[0]
    rows, cols = np.triu_indices(n, k=1)
    pair_angles = angles[rows, cols]
    # Closeness to "the same" (0°) or "the opposite" (180°), whichever is nearer.
    closeness = np.minimum(pair_angles, 180.0 - pair_angles)
    alive = np.ones(n, dtype=bool)
    w_out = w_out.copy()
    similar = opposite = 0
    limit = max(similar_deg, 180.0 - opposite_deg)
    for index in np.argsort(closeness, kind="stable"):
        if closeness[index] >= limit:
            break
        a, b, angle = rows[index], cols[index], pair_angles[index]
        if not (alive[a] and alive[b]):
            continue
        if angle < similar_deg:
            w_out[a] += w_out[b]
            similar += 1
        elif angle > opposite_deg:
            w_out[a] -= w_out[b]
            opposite += 1
        else:
            continue
        alive[b] = False
    kept = np.flatnonzero(alive)
    report = PruneReport(n, int(kept.size), similar, opposite)
    return w_in[:, kept], b_in[kept], w_out[kept], report


def train_pruned_mlp(
    pipeline: Pipeline, x: np.ndarray, y: np.ndarray,
    similar_deg: float = SIMILAR_DEG, opposite_deg: float = OPPOSITE_DEG, first_epochs: int = 1,
) -> PruneReport:
    """Fit a scaler+MLP pipeline (from model.build_classifier("mlp")) with pruning.

    Trains ``first_epochs`` epochs, prunes by distinctiveness, then retrains the smaller
    network from the pruned weights for the pipeline's ``max_iter`` epochs.
    """
    scaler, mlp = pipeline.named_steps["scale"], pipeline.named_steps["classifier"]
    if mlp.activation != "tanh":
        raise ValueError("distinctiveness pruning needs tanh hidden units (outputs centred on 0)")
    xs = scaler.fit_transform(x)
    epochs = mlp.max_iter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.set_params(max_iter=first_epochs, warm_start=False)
        mlp.fit(xs, y)
        activations = np.tanh(xs @ mlp.coefs_[0] + mlp.intercepts_[0])
        b_out = mlp.intercepts_[1].copy()
        w_in, b_in, w_out, report = prune_layer(
            mlp.coefs_[0], mlp.intercepts_[0], mlp.coefs_[1], activations, similar_deg, opposite_deg
        )
        # Shape the network to the kept units (one epoch builds the attributes), then
        # continue from the pruned weights.
        mlp.set_params(hidden_layer_sizes=(report.hidden_after,), max_iter=1)
        mlp.fit(xs, y)
        mlp.coefs_ = [w_in.copy(), w_out.copy()]
        mlp.intercepts_ = [b_in.copy(), b_out]
        mlp.loss_curve_, mlp.best_loss_, mlp._no_improvement_count = [], np.inf, 0
        mlp.set_params(max_iter=epochs, warm_start=True)
        mlp.fit(xs, y)
    mlp.set_params(warm_start=False)
    return report


def prune_thresholds(text: str) -> List[float]:
    """``"15,30,45"`` -> [15.0, 30.0, 45.0] (similarity thresholds in degrees)."""
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or any(not 0 < v < 90 for v in values):
        raise ValueError("pruning angles must be degrees between 0 and 90, e.g. 15,30,45")
    return values
