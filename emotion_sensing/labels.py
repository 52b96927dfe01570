"""The one emotion vocabulary of the project and the tables that map every source onto it.

Labels follow FER2013's order so a face model's output index is the label index.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
UNKNOWN = "unknown"
LABEL_INDEX: Dict[str, int] = {label: i for i, label in enumerate(LABELS)}

# Russell-circumplex coordinates per label: valence in -1..1, arousal in 0..1.
# Approximate centroids from the affective-norms literature; used to summarise a
# distribution over labels as one (valence, arousal) point.
VALENCE: Dict[str, float] = {
    "angry": -0.7, "disgust": -0.6, "fear": -0.7, "happy": 0.8,
    "sad": -0.7, "surprise": 0.2, "neutral": 0.0,
}
AROUSAL: Dict[str, float] = {
    "angry": 0.85, "disgust": 0.5, "fear": 0.8, "happy": 0.6,
    "sad": 0.25, "surprise": 0.85, "neutral": 0.2,
}

# Source label -> canonical label. None means "no counterpart: skip and count".
DAIR_EMOTION: Dict[str, Optional[str]] = {
    "anger": "angry", "fear": "fear", "joy": "happy", "love": "happy",
    "sadness": "sad", "surprise": "surprise",
}
# monologg/GoEmotions-pytorch data/ekman/labels.txt order.
GOEMOTIONS_EKMAN: Sequence[str] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
# DailyDialog's seven utterance labels (its README: "no emotion" is neutral).
DAILYDIALOG: Dict[str, Optional[str]] = {
    "no emotion": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
    "anger": "angry", "disgust": "disgust", "fear": "fear",
}
RAVDESS: Dict[str, Optional[str]] = {
    "neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad",
    "angry": "angry", "fearful": "fear", "disgust": "disgust", "surprised": "surprise",
}
# Folder names seen in common face datasets (FER2013 folders, CK+, AffectNet, RAF-DB).
FOLDER_NAMES: Dict[str, Optional[str]] = {
    "anger": "angry", "angry": "angry", "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "happy": "happy",
    "happiness": "happy", "joy": "happy", "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise", "neutral": "neutral", "calm": "neutral",
    "contempt": None,
}


def canonical(name: str, table: Mapping[str, Optional[str]] = FOLDER_NAMES) -> Optional[str]:
    """Map a source label onto the canonical vocabulary; None when it has no counterpart.

    Raises KeyError for a name the table does not know, so typos are not silently dropped.
    """
    key = name.strip().lower()
    if key in LABEL_INDEX:
        return key
    return table[key]


def valence_of(probs: Sequence[float]) -> float:
    """Expected valence of a distribution over LABELS."""
    return float(sum(p * VALENCE[label] for p, label in zip(probs, LABELS)))


def arousal_of(probs: Sequence[float]) -> float:
    """Expected arousal of a distribution over LABELS."""
    return float(sum(p * AROUSAL[label] for p, label in zip(probs, LABELS)))
