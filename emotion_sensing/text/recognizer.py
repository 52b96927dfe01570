"""TextRecognizer: VADER's four sentiment scores plus a 7-label emotion classifier."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Dict, Optional

import joblib
import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from emotion_sensing.labels import LABELS, valence_of
from emotion_sensing.reading import Reading
from emotion_sensing.text.model import CURIOSITY

logger = logging.getLogger(__name__)

MODEL_FILE = "text_emotion.joblib"


class TextRecognizer:
    """Turns a message into a text Reading.

    Valence blends the classifier's expected valence with VADER's compound score, which
    reads negation and intensifiers ("not bad at all!!") better than bag-of-words.
    Without a trained model (e.g. a checkout whose models/ was removed) it falls back to a
    VADER-only reading and says so once.
    """

    def __init__(self, model_path: Optional[Path] = None, vader_weight: float = 0.5) -> None:
        self._vader = SentimentIntensityAnalyzer()
        self._vader_weight = vader_weight
        self.model_path = Path(model_path) if model_path else None
        self._model = None
        if self.model_path is not None and self.model_path.exists():
            self._model = joblib.load(self.model_path)
            # predict_proba's input checks cost more than the arithmetic on one message:
            # keep the vectorizer and the multinomial weights for a direct softmax.
            vectorizer = self._model.named_steps["tfidf"]
            self._analyse = vectorizer.build_analyzer()
            self._vocabulary = vectorizer.vocabulary_
            self._idf = vectorizer.idf_
            self._sublinear = vectorizer.sublinear_tf
            classifier = self._model.named_steps["classifier"]
            self._coef = classifier.coef_.T.astype(np.float64)
            self._intercept = classifier.intercept_.astype(np.float64)
            classes = [str(c) for c in self._model.classes_]
            self._order = [classes.index(label) for label in LABELS]
            # Curiosity (questions) is no emotion: its probability counts as neutral.
            self._curiosity = classes.index(CURIOSITY) if CURIOSITY in classes else None
        elif self.model_path is not None:
            logger.warning("text emotion model %s not found: VADER-only readings", self.model_path)

    @property
    def model(self):
        """The loaded scikit-learn pipeline (None without a model file)."""
        return self._model

    @property
    def has_classifier(self) -> bool:
        return self._model is not None

    def class_probabilities(self, text: str) -> np.ndarray:
        """The classifier's probabilities in its own class order (== predict_proba)."""
        counts: Dict[int, int] = {}
        for term in self._analyse(text):
            index = self._vocabulary.get(term)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        scores = self._intercept.copy()
        if counts:
            indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if self._sublinear:
                tf = 1.0 + np.log(tf)
            values = tf * self._idf[indices]
            values /= np.linalg.norm(values)
            scores += values @ self._coef[indices]
        scores -= scores.max()
        exp = np.exp(scores)
        return exp / exp.sum()

    def vader(self, text: str) -> Dict[str, float]:
        """VADER's neg, neu, pos and compound scores."""
        return dict(self._vader.polarity_scores(text))

    def read(self, text: str, timestamp: Optional[float] = None) -> Reading:
        """A Reading for ``text``; raises ValueError on empty text."""
        if not text or not text.strip():
            raise ValueError("text is empty")
        scores = self.vader(text)
        if self._model is not None:
            raw = self.class_probabilities(text)
            probs = [float(raw[i]) for i in self._order]
            if self._curiosity is not None:
                probs[LABELS.index("neutral")] += float(raw[self._curiosity])
            probs = tuple(probs)
        else:
            probs = _probs_from_vader(scores)
        confidence = max(probs)
        valence = (1 - self._vader_weight) * valence_of(probs) + self._vader_weight * scores["compound"]
        return Reading(
            modality="text",
            probs=probs,
            confidence=confidence,
            timestamp=time.time() if timestamp is None else timestamp,
            valence=valence,
            extras={"vader": scores, "classifier": self.has_classifier},
        )


def _probs_from_vader(scores: Dict[str, float]) -> tuple[float, ...]:
    """A coarse distribution from sentiment alone: positive -> happy, negative -> angry/sad."""
    weights = {label: 0.02 for label in LABELS}
    weights["neutral"] += scores["neu"]
    weights["happy"] += scores["pos"]
    weights["angry"] += scores["neg"] / 2
    weights["sad"] += scores["neg"] / 2
    return tuple(weights[label] for label in LABELS)
