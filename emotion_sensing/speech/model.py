"""The voice emotion classifiers compared by ``emobot train speech``, and the shipped bundle.

Every classifier is a scikit-learn pipeline that scales its input first. Its input is the
utterance vector (vector.py: feature blocks side by side) already standardised per speaker
(speaker.py); the scaler then puts the per-speaker z-scores of all speakers on one scale.

The shipped model is a **product of experts**: one classifier per feature block, each reading
only its block's columns, their log-probabilities summed and divided by a temperature fitted
on validation speakers (calibration.py). An expert per block keeps a block with many values
(Whisper's 768) from drowning out a small, robust one (eGeMAPS's 88).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from emotion_sensing.labels import LABELS
from emotion_sensing.speech.speaker import SpeakerPrior
from emotion_sensing.speech.vector import columns

MODEL_FILE = "speech_emotion.joblib"
CARD_FILE = "speech_emotion.md"
BUNDLE_FORMAT = "emobot-voice/2"
# Format 1: one pipeline over the librosa block, no temperature (read for old files).
OLD_FORMATS = ("emobot-voice/1",)
# Each expert of the shipped product: logistic regression, strongly regularised (chosen by
# cross-validation by actor; weaker regularisation fits RAVDESS's two sentences, not emotion).
EXPERT_C = 0.003
# name -> what it is, for tables and --classifiers.
CLASSIFIERS: Dict[str, str] = {
    "knn": "k-nearest neighbours (k=10, distance-weighted)",
    "logreg": "logistic regression (C=0.05)",
    "hgb": "histogram gradient boosting (100 iterations, at most 15 leaves per tree)",
    "svc": "support vector classifier (RBF, C=10)",
    "forest": "random forest (300 trees)",
    "mlp": "multi-layer perceptron (one hidden layer of 256 tanh units)",
}
SEQUENCE_MODEL = "lstm"


def build_expert(seed: int = 0) -> Pipeline:
    """An untrained expert: scaler + logistic regression with C = :data:`EXPERT_C`."""
    from sklearn.linear_model import LogisticRegression

    return Pipeline([("scale", StandardScaler()),
                     ("classifier", LogisticRegression(C=EXPERT_C, max_iter=3000, random_state=seed))])


def build_classifier(name: str, seed: int = 0) -> Pipeline:
    """An untrained pipeline (scaler + classifier) for one name of :data:`CLASSIFIERS`."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    classifiers = {
        "knn": lambda: KNeighborsClassifier(n_neighbors=10, weights="distance"),
        "logreg": lambda: LogisticRegression(C=0.05, max_iter=3000, random_state=seed),
        "hgb": lambda: HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.1, max_depth=6, max_leaf_nodes=15, early_stopping=False, random_state=seed
        ),
        "svc": lambda: SVC(C=10.0, gamma="scale", probability=True, random_state=seed),
        "forest": lambda: RandomForestClassifier(n_estimators=300, min_samples_leaf=2, n_jobs=1, random_state=seed),
        "mlp": lambda: MLPClassifier(
            hidden_layer_sizes=(256,), activation="tanh", alpha=1.0, max_iter=500, random_state=seed
        ),
    }
    if name not in classifiers:
        raise KeyError(f"unknown classifier {name!r}; choose from {', '.join(classifiers)}")
    return Pipeline([("scale", StandardScaler()), ("classifier", classifiers[name]())])


@dataclass
class Expert:
    """One classifier of the product and the feature blocks whose columns it reads."""

    blocks: Tuple[str, ...]
    pipeline: Pipeline


def _renamed_blocks(meta: Dict[str, Any]) -> Dict[str, str]:
    """What a model's block names mean today, for a model trained on older features: before
    vector version 3, ``whisper`` was the encoder's final states, today's ``whisper_final``."""
    version = meta.get("feature_version")
    if version is not None and int(version) % 1000 < 3:
        return {"whisper": "whisper_final"}
    return {}


class VoiceModel:
    """What the voice recognizer loads: the experts, the speaker prior, the temperature and how
    it was made. ``blocks`` names the utterance vector's blocks in order; ``prior`` covers all."""

    def __init__(self, experts: Union[Pipeline, Sequence[Expert]], prior: SpeakerPrior,
                 meta: Optional[Dict[str, Any]] = None, blocks: Sequence[str] = ("librosa",),
                 temperature: float = 1.0) -> None:
        self.blocks = tuple(blocks)
        self.experts: List[Expert] = (
            [Expert(self.blocks, experts)] if isinstance(experts, Pipeline) else list(experts)
        )
        self.prior = prior
        self.meta: Dict[str, Any] = dict(meta or {})
        self.temperature = float(temperature)
        # An expert over every block reads the whole row (whatever its width: tests use small ones).
        self._columns = [slice(None) if tuple(e.blocks) == self.blocks else columns(e.blocks, self.blocks)
                         for e in self.experts]
        self._orders = []
        for expert in self.experts:
            classes = [str(c) for c in expert.pipeline.classes_]
            self._orders.append(np.array([classes.index(label) if label in classes else -1 for label in LABELS]))

    @property
    def pipeline(self) -> Pipeline:
        """The first expert's pipeline (the only one of a single-classifier model)."""
        return self.experts[0].pipeline

    def log_scores(self, standardised: np.ndarray) -> np.ndarray:
        """Summed log-probabilities of the experts over LABELS, before the temperature."""
        x = np.atleast_2d(standardised)
        total = np.zeros((x.shape[0], len(LABELS)))
        for expert, cols, order in zip(self.experts, self._columns, self._orders):
            raw = np.clip(expert.pipeline.predict_proba(x[:, cols]), 1e-9, None)
            total += np.where(order >= 0, np.log(raw[:, np.maximum(order, 0)]), np.log(1e-9))
        return total

    def probabilities(self, standardised: np.ndarray) -> np.ndarray:
        """Probabilities over LABELS for rows of speaker-standardised utterance vectors."""
        from emotion_sensing.calibration import softmax

        return softmax(self.log_scores(standardised), self.temperature)

    def save(self, path: Path) -> None:
        import joblib

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(
            {"format": BUNDLE_FORMAT, "blocks": list(self.blocks), "temperature": self.temperature,
             "experts": [{"blocks": list(e.blocks), "pipeline": e.pipeline} for e in self.experts],
             "prior": self.prior.to_dict(), "meta": self.meta},
            path,
            compress=3,
        )

    @classmethod
    def load(cls, path: Path) -> VoiceModel:
        import joblib

        bundle = joblib.load(path)
        fmt = bundle.get("format") if isinstance(bundle, dict) else None
        if fmt in OLD_FORMATS:
            return cls(bundle["pipeline"], SpeakerPrior.from_dict(bundle["prior"]), dict(bundle.get("meta") or {}))
        if fmt != BUNDLE_FORMAT:
            raise ValueError(f"{path} is not a voice emotion model ({BUNDLE_FORMAT})")
        meta = dict(bundle.get("meta") or {})
        renamed = _renamed_blocks(meta)
        experts = [Expert(tuple(renamed.get(b, b) for b in e["blocks"]), e["pipeline"]) for e in bundle["experts"]]
        return cls(experts, SpeakerPrior.from_dict(bundle["prior"]), meta,
                   blocks=tuple(renamed.get(b, b) for b in bundle["blocks"]),
                   temperature=float(bundle.get("temperature", 1.0)))

    @property
    def name(self) -> Optional[str]:
        return self.meta.get("classifier")
