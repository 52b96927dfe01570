"""The voice emotion classifiers compared by ``emobot train speech``, and the shipped bundle.

Every classifier is a scikit-learn pipeline that scales its input first. Its input is the
utterance vector (features.py) already standardised per speaker (speaker.py); the scaler
then puts the per-speaker z-scores of all speakers on one scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from emotion_sensing.labels import LABELS
from emotion_sensing.speech.speaker import SpeakerPrior

MODEL_FILE = "speech_emotion.joblib"
CARD_FILE = "speech_emotion.md"
BUNDLE_FORMAT = "emobot-voice/1"
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
class VoiceModel:
    """What the voice recognizer loads: the pipeline, the speaker prior and how it was made."""

    pipeline: Pipeline
    prior: SpeakerPrior
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        classes = [str(c) for c in self.pipeline.classes_]
        self._order = np.array([classes.index(label) if label in classes else -1 for label in LABELS])

    def probabilities(self, standardised: np.ndarray) -> np.ndarray:
        """Probabilities over LABELS for rows of speaker-standardised utterance vectors."""
        raw = self.pipeline.predict_proba(np.atleast_2d(standardised))
        out = np.where(self._order >= 0, raw[:, np.maximum(self._order, 0)], 0.0)
        return out / out.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        import joblib

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(
            {"format": BUNDLE_FORMAT, "pipeline": self.pipeline, "prior": self.prior.to_dict(), "meta": self.meta},
            path,
            compress=3,
        )

    @classmethod
    def load(cls, path: Path) -> VoiceModel:
        import joblib

        bundle = joblib.load(path)
        if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{path} is not a voice emotion model ({BUNDLE_FORMAT})")
        return cls(bundle["pipeline"], SpeakerPrior.from_dict(bundle["prior"]), dict(bundle.get("meta") or {}))

    @property
    def name(self) -> Optional[str]:
        return self.meta.get("classifier")
