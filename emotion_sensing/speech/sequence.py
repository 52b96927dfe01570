"""A sequence model for comparison: an LSTM (TensorFlow) over an utterance's MFCC frames.

Input: the 40 MFCCs of each voiced frame (features.py), every second frame (32 ms apart),
at most :data:`MAX_STEPS` steps, standardised per speaker (each coefficient's mean and
standard deviation over all of that speaker's frames: per-speaker cepstral mean and variance
normalisation, the frame-level counterpart of speaker.py). Zero-padded and masked.
It is reported beside the fixed-vector classifiers; it is not shipped (it would make
TensorFlow a run-time dependency of the service).
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence

import numpy as np

from emotion_sensing.labels import LABELS

MAX_STEPS = 96
STRIDE = 2
UNITS = 64
Printer = Callable[[str], None]


def speaker_cmvn(frames: Sequence[np.ndarray], speakers: Sequence[str]) -> List[np.ndarray]:
    """Each clip's frames standardised with its speaker's frame statistics."""
    speakers = np.asarray(speakers)
    out: List[np.ndarray] = [np.zeros((0, 0), dtype=np.float32)] * len(frames)
    for speaker in np.unique(speakers):
        rows = np.flatnonzero(speakers == speaker)
        stacked = np.concatenate([frames[i] for i in rows if len(frames[i])])
        mean, std = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6
        for i in rows:
            out[i] = ((frames[i] - mean) / std).astype(np.float32)
    return out


def pad(frames: Sequence[np.ndarray]) -> np.ndarray:
    """``(clips, MAX_STEPS, coefficients)``: every STRIDE-th frame, zero-padded at the end."""
    width = next((f.shape[1] for f in frames if f.ndim == 2 and f.shape[1]), 40)
    out = np.zeros((len(frames), MAX_STEPS, width), dtype=np.float32)
    for i, clip in enumerate(frames):
        steps = clip[::STRIDE][:MAX_STEPS]
        out[i, : len(steps)] = steps
    return out


def build_lstm(n_features: int = 40, n_classes: int = len(LABELS), seed: int = 0):
    """Masking -> LSTM(64) -> dropout -> softmax."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Input((MAX_STEPS, n_features)),
            tf.keras.layers.Masking(mask_value=0.0),
            tf.keras.layers.LSTM(UNITS),
            tf.keras.layers.Dropout(0.3),
            tf.keras.layers.Dense(n_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_predict(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, epochs: int = 30, seed: int = 0
) -> np.ndarray:
    """Train an LSTM on padded sequences and predict label indices for others."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model = build_lstm(train_x.shape[2], seed=seed)
    model.fit(train_x, train_y, epochs=epochs, batch_size=32, verbose=0)
    return model.predict(test_x, verbose=0).argmax(axis=1)


def cross_validate_lstm(
    frames: Sequence[np.ndarray], labels: Sequence[str], speakers: Sequence[str], folds: np.ndarray,
    epochs: int = 30, log: Optional[Printer] = None, test_folds: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """Predicted label per clip, each by a model that never heard its speaker (None outside
    ``test_folds``, which defaults to every fold)."""
    x = pad(speaker_cmvn(frames, speakers))
    y = np.array([LABELS.index(label) for label in labels])
    predicted = np.full(len(y), None, dtype=object)
    for fold in np.unique(folds) if test_folds is None else test_folds:
        train, test = folds != fold, folds == fold
        predicted[test] = [LABELS[i] for i in fit_predict(x[train], y[train], x[test], epochs, seed=int(fold))]
        if log:
            log(f"  lstm fold {fold}: accuracy {np.mean(predicted[test] == np.asarray(labels)[test]):.3f}")
    return predicted
