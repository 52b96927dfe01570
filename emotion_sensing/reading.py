"""A Reading: what one recognizer concluded about one moment of one person."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence

from emotion_sensing.labels import LABELS, arousal_of, valence_of

MODALITIES: tuple[str, ...] = ("text", "face", "voice")


@dataclass(frozen=True)
class Reading:
    """One recognizer's estimate: a distribution over LABELS plus its summary.

    ``confidence`` is the recognizer's own trust in this reading (0..1), separate from
    the modality's measured reliability, which fusion applies.
    """

    modality: str
    probs: tuple[float, ...]
    confidence: float
    timestamp: float = field(default_factory=time.time)
    valence: Optional[float] = None
    arousal: Optional[float] = None
    extras: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"unknown modality {self.modality!r}; expected one of {MODALITIES}")
        if len(self.probs) != len(LABELS):
            raise ValueError(f"probs must have {len(LABELS)} values, got {len(self.probs)}")
        total = sum(self.probs)
        if total <= 0 or any(p < 0 for p in self.probs):
            raise ValueError("probs must be non-negative and not all zero")
        object.__setattr__(self, "probs", tuple(float(p) / total for p in self.probs))
        object.__setattr__(self, "confidence", min(1.0, max(0.0, float(self.confidence))))
        if self.valence is None:
            object.__setattr__(self, "valence", valence_of(self.probs))
        if self.arousal is None:
            object.__setattr__(self, "arousal", arousal_of(self.probs))

    @property
    def label(self) -> str:
        """The most probable label."""
        return LABELS[max(range(len(LABELS)), key=self.probs.__getitem__)]

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form, with probabilities keyed by label."""
        return {
            "modality": self.modality,
            "label": self.label,
            "probs": {label: round(p, 4) for label, p in zip(LABELS, self.probs)},
            "confidence": round(self.confidence, 4),
            "valence": round(float(self.valence), 4),
            "arousal": round(float(self.arousal), 4),
            "timestamp": self.timestamp,
            "extras": self.extras,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reading:
        """Inverse of :meth:`to_dict`; accepts probs as a mapping or a sequence."""
        probs = data["probs"]
        if isinstance(probs, Mapping):
            probs = [float(probs.get(label, 0.0)) for label in LABELS]
        return cls(
            modality=data["modality"],
            probs=tuple(float(p) for p in probs),
            confidence=float(data.get("confidence", 1.0)),
            timestamp=float(data.get("timestamp", time.time())),
            valence=data.get("valence"),
            arousal=data.get("arousal"),
            extras=dict(data.get("extras") or {}),
        )


def normalise(probs: Sequence[float]) -> tuple[float, ...]:
    """Scale non-negative scores to sum to one."""
    total = float(sum(probs))
    return tuple(float(p) / total for p in probs)
