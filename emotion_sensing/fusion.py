"""Late fusion of recent readings into one emotional state that explains itself.

Two stages, so a modality that streams many readings (30 face frames a second) does not
outvote one that speaks once a turn (text):

1. within a modality, readings in the window are averaged with weights
   ``confidence * 0.5 ** (age / half_life)``; turn-based modalities keep only their latest;
2. across modalities, each modality's average is weighted by its measured reliability and
   by how fresh and confident its best reading is.

The result keeps every modality's share of the decision, for replay and for the policy.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from emotion_sensing.labels import LABELS, UNKNOWN
from emotion_sensing.reading import Reading


@dataclass(frozen=True)
class FusionConfig:
    """Weights and windows of fusion. Reliability is relative trust per modality."""

    reliability: Mapping[str, float] = field(
        default_factory=lambda: {"text": 1.0, "face": 0.8, "voice": 0.6}
    )
    half_life_s: Mapping[str, float] = field(
        default_factory=lambda: {"text": 30.0, "face": 3.0, "voice": 8.0}
    )
    window_s: float = 20.0
    # Text arrives once per turn and describes that turn: older turns belong to the
    # trajectory (the tracker keeps it), not to the present state.
    latest_only: frozenset = frozenset({"text"})
    # Below this agreement the fused state is reported as unknown.
    min_confidence: float = 0.15


@dataclass(frozen=True)
class Contribution:
    """How one modality took part in a fused state."""

    modality: str
    share: float
    label: str
    confidence: float
    probs: tuple[float, ...]
    n_readings: int

    def to_dict(self) -> Dict[str, Any]:
        return {
            "modality": self.modality,
            "share": round(self.share, 4),
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "probs": {label: round(p, 4) for label, p in zip(LABELS, self.probs)},
            "n_readings": self.n_readings,
        }


@dataclass(frozen=True)
class FusedState:
    """The fused emotional state of one session at one moment."""

    label: str
    probs: tuple[float, ...]
    confidence: float
    valence: float
    arousal: float
    contributions: tuple[Contribution, ...]
    timestamp: float

    @property
    def known(self) -> bool:
        return self.label != UNKNOWN

    def to_dict(self) -> Dict[str, Any]:
        return {
            "label": self.label,
            "probs": {label: round(p, 4) for label, p in zip(LABELS, self.probs)},
            "confidence": round(self.confidence, 4),
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
            "contributions": [c.to_dict() for c in self.contributions],
            "timestamp": self.timestamp,
        }


def unknown_state(timestamp: Optional[float] = None) -> FusedState:
    """The state reported when nothing is known (no readings, or sensing unavailable)."""
    uniform = tuple(1.0 / len(LABELS) for _ in LABELS)
    return FusedState(UNKNOWN, uniform, 0.0, 0.0, 0.0, (), timestamp or time.time())


@dataclass(frozen=True)
class _ModalitySummary:
    """One modality's readings reduced to what fusion needs, with one set of weights."""

    probs: tuple[float, ...]
    strength: float  # the strongest confidence x decay
    fresh: float  # the decay factor of the newest reading
    valence: float
    arousal: float
    n: int


def _summarise(readings: Sequence[Reading], now: float, half_life: float) -> _ModalitySummary:
    """Decay- and confidence-weighted means of a modality's distribution, valence and arousal."""
    sums = [0.0] * len(LABELS)
    total = strongest = freshest = valence = arousal = 0.0
    for reading in readings:
        age = max(0.0, now - reading.timestamp)
        decay = 0.5 ** (age / half_life) if half_life > 0 else 1.0
        weight = reading.confidence * decay
        strongest = max(strongest, weight)
        freshest = max(freshest, decay)
        total += weight
        valence += weight * float(reading.valence)
        arousal += weight * float(reading.arousal)
        for i, p in enumerate(reading.probs):
            sums[i] += weight * p
    if total <= 0:
        uniform = tuple(1.0 / len(LABELS) for _ in LABELS)
        return _ModalitySummary(uniform, 0.0, freshest, 0.0, 0.0, len(readings))
    return _ModalitySummary(
        tuple(s / total for s in sums), strongest, freshest, valence / total, arousal / total, len(readings)
    )


def fuse(
    readings: Iterable[Reading],
    now: Optional[float] = None,
    config: FusionConfig = FusionConfig(),
) -> FusedState:
    """Fuse readings into one state; modalities with no reading in the window drop out."""
    now = time.time() if now is None else now
    by_modality: Dict[str, List[Reading]] = {}
    for reading in readings:
        if now - reading.timestamp <= config.window_s and config.reliability.get(reading.modality, 0) > 0:
            by_modality.setdefault(reading.modality, []).append(reading)
    for modality in config.latest_only & by_modality.keys():
        by_modality[modality] = [max(by_modality[modality], key=lambda r: r.timestamp)]

    parts = []
    for modality, group in sorted(by_modality.items()):
        summary = _summarise(group, now, config.half_life_s.get(modality, 10.0))
        weight = config.reliability[modality] * summary.strength
        if weight > 0:
            parts.append((modality, weight, summary))
    total = sum(weight for _, weight, _ in parts)
    if total <= 0:
        return unknown_state(now)

    fused = [0.0] * len(LABELS)
    for _, weight, summary in parts:
        for i, p in enumerate(summary.probs):
            fused[i] += weight / total * p
    top = max(range(len(LABELS)), key=fused.__getitem__)
    # Agreement: how strongly, share by share, the fresh modalities back the winning label.
    # One fresh reading alone gives its own probability of the label.
    confidence = sum(weight / total * m.fresh * m.probs[top] for _, weight, m in parts)
    contributions = tuple(
        Contribution(
            modality=modality,
            share=weight / total,
            label=LABELS[max(range(len(LABELS)), key=m.probs.__getitem__)],
            confidence=m.strength,
            probs=m.probs,
            n_readings=m.n,
        )
        for modality, weight, m in parts
    )
    label = LABELS[top] if confidence >= config.min_confidence else UNKNOWN
    # Valence and arousal: recognizers may measure them directly (VADER for text), so
    # combine theirs rather than recomputing from the fused labels.
    valence = sum(weight / total * m.valence for _, weight, m in parts)
    arousal = sum(weight / total * m.arousal for _, weight, m in parts)
    return FusedState(label, tuple(fused), confidence, valence, arousal, contributions, now)
