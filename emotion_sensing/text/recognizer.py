"""TextRecognizer: VADER's four sentiment scores plus the encoder's calibrated emotions."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from emotion_sensing.labels import LABELS, valence_of
from emotion_sensing.reading import Reading
from emotion_sensing.text.datasets import CURIOSITY

logger = logging.getLogger(__name__)

MODEL_FILE = "text_emotion.npz"


class TextRecognizer:
    """Turns a message into a text Reading.

    The emotion distribution comes from the fine-tuned sentence encoder
    (emotion_sensing/text/encoder.py), temperature-calibrated so that its confidence means what
    it says; its ``curiosity`` class (questions) counts as neutral. Valence blends the
    distribution's expected valence with VADER's compound score, which reads negation and
    intensifiers ("not bad at all!!") well. Without the model or the encoder's weights it falls
    back to a VADER-only reading and says why once.
    """

    def __init__(self, model_path: Optional[Path] = None, vader_weight: float = 0.5,
                 threads: Optional[int] = None) -> None:
        self._vader = SentimentIntensityAnalyzer()
        self._vader_weight = vader_weight
        self.model_path = Path(model_path) if model_path else None
        self._classifier = None
        self.unavailable: Optional[str] = None
        if self.model_path is None:
            self.unavailable = "no model file given"
        elif not self.model_path.exists():
            self.unavailable = f"text emotion model {self.model_path} not found"
        else:
            from emotion_sensing.text.encoder import EncoderClassifier, EncoderMissing

            try:
                self._classifier = EncoderClassifier(self.model_path, threads=threads)
            except EncoderMissing as error:
                self.unavailable = str(error)
        if self.unavailable and self.model_path is not None:
            logger.warning("%s: VADER-only text readings", self.unavailable)
        if self._classifier is not None:
            labels = self._classifier.labels
            self._order = [labels.index(label) for label in LABELS]
            self._curiosity = labels.index(CURIOSITY) if CURIOSITY in labels else None

    @property
    def has_classifier(self) -> bool:
        return self._classifier is not None

    @property
    def classifier(self):
        """The EncoderClassifier (None without one)."""
        return self._classifier

    def probabilities(self, text: str) -> tuple[float, ...]:
        """Calibrated probabilities over LABELS (curiosity counted as neutral)."""
        return self.canonical(self._classifier.probabilities(text))

    def canonical(self, raw: Sequence[float]) -> tuple[float, ...]:
        """The classifier's calibrated probabilities (over its own labels) as probabilities over
        LABELS, curiosity counted as neutral."""
        probs = [float(raw[i]) for i in self._order]
        if self._curiosity is not None:
            probs[LABELS.index("neutral")] += float(raw[self._curiosity])
        return tuple(probs)

    def vader(self, text: str) -> Dict[str, float]:
        """VADER's neg, neu, pos and compound scores."""
        return dict(self._vader.polarity_scores(text))

    def read(self, text: str, timestamp: Optional[float] = None) -> Reading:
        """A Reading for ``text``; raises ValueError on empty text."""
        if not text or not text.strip():
            raise ValueError("text is empty")
        scores = self.vader(text)
        probs = self.probabilities(text) if self._classifier is not None else _probs_from_vader(scores)
        confidence = max(probs)
        valence = self.valence(probs, scores)
        return Reading(
            modality="text",
            probs=probs,
            confidence=confidence,
            timestamp=time.time() if timestamp is None else timestamp,
            valence=valence,
            extras={"vader": scores, "classifier": self.has_classifier},
        )

    def valence(self, probs: Sequence[float], scores: Dict[str, float]) -> float:
        """The reading's valence: the distribution's expected valence blended with VADER's compound."""
        return (1 - self._vader_weight) * valence_of(probs) + self._vader_weight * scores["compound"]


def _probs_from_vader(scores: Dict[str, float]) -> tuple[float, ...]:
    """A coarse distribution from sentiment alone: positive -> happy, negative -> angry/sad."""
    weights = {label: 0.02 for label in LABELS}
    weights["neutral"] += scores["neu"]
    weights["happy"] += scores["pos"]
    weights["angry"] += scores["neg"] / 2
    weights["sad"] += scores["neg"] / 2
    total = float(np.sum(list(weights.values())))
    return tuple(weights[label] / total for label in LABELS)
