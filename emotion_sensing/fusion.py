"""Late fusion of recent readings into one emotional state that explains itself.

Two stages, so a modality that streams many readings (30 face frames a second) does not
outvote one that speaks once a turn (text):

1. within a modality, readings in the window are averaged with weights
   ``confidence * 0.5 ** (age / half_life)``; turn-based modalities keep only their latest;
2. across modalities, the averages are combined by the learned fusion model
   (fusion_model.py, fitted by ``emobot train fusion`` on validation splits), each modality
   present in proportion to the freshness of its newest reading (beside a message, aged face
   and voice readings count through a mixture with the words' own reading: see
   ``LearnedFusion.terms``), with the previous turn's state (the mood) as a decaying prior.
   Without a fitted model (``FusionConfig.model`` None, or ``EMOBOT_FUSION=hand``) each modality's average is weighted by a hand-set reliability
   and by how fresh and confident its best reading is, as before the model existed.

The result keeps every modality's share of the decision, for replay and for the policy.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from emotion_sensing.calibration import softmax
from emotion_sensing.fusion_model import MODALITIES as MODEL_MODALITIES
from emotion_sensing.fusion_model import MODEL_FILE, LearnedFusion, changed_recognizers, log_probs
from emotion_sensing.labels import LABELS, UNKNOWN
from emotion_sensing.reading import Reading

logger = logging.getLogger(__name__)


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
    # Below this agreement the fused state is reported as unknown (hand-set fusion only; the
    # learned model carries its own threshold, chosen on validation).
    min_confidence: float = 0.15
    # The learned combination (None: the hand-set weights above).
    model: Optional[LearnedFusion] = field(default=None, compare=False, hash=False)


def load_fusion_model(models_dir: Path) -> Optional[LearnedFusion]:
    """The fitted fusion model in ``models_dir``, or None when there is none (hand-set fusion).
    Logs a warning when a recognizer has changed since the fusion was fitted on its readings."""
    path = Path(models_dir) / MODEL_FILE
    if not path.exists():
        return None
    model = LearnedFusion.load(path)
    changed = changed_recognizers(model, models_dir)
    if changed:
        logger.warning("%s was fitted on other recognizer files than those in %s (%s changed): its weights "
                       "may not suit their readings; refit it with `emobot train fusion`", path, models_dir,
                       ", ".join(changed))
    return model


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
    # How much of the decision the previous turn's state (the mood) made (learned fusion only).
    mood_share: float = 0.0

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
            "mood_share": round(self.mood_share, 4),
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
    mood: Optional[FusedState] = None,
) -> FusedState:
    """Fuse readings into one state; modalities with no reading in the window drop out.
    ``mood``: the state at the previous turn, the learned model's decaying prior."""
    now = time.time() if now is None else now
    by_modality: Dict[str, List[Reading]] = {}
    for reading in readings:
        if now - reading.timestamp <= config.window_s and config.reliability.get(reading.modality, 0) > 0:
            by_modality.setdefault(reading.modality, []).append(reading)
    for modality in config.latest_only & by_modality.keys():
        by_modality[modality] = [max(by_modality[modality], key=lambda r: r.timestamp)]

    summaries = {modality: _summarise(group, now, config.half_life_s.get(modality, 10.0))
                 for modality, group in sorted(by_modality.items())}
    if config.model is not None:
        return _fuse_learned(summaries, now, config.model, mood)
    parts = []
    for modality, summary in summaries.items():
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


def _fuse_learned(summaries: Mapping[str, _ModalitySummary], now: float, model: LearnedFusion,
                  mood: Optional[FusedState]) -> FusedState:
    """The learned combination of the modalities' summaries (fusion_model.py), with the mood prior.

    Presence of a modality is the decay of its newest reading (a fresh reading counts fully); a
    modality with no confident reading drops out. Each modality's share is how far its term lifts
    the winning label above its mean over labels (the mood's share is reported the same way);
    modalities that argued against the winner get none (all of them equally when none lifts it).
    Valence and arousal: each deciding modality's own (VADER's blend for text) and the mood's, by
    share, so a state the evidence leaves near-even is not pushed negative by the four negative
    labels among seven.
    """
    present = [m for m in MODEL_MODALITIES if m in summaries and summaries[m].strength > 0]
    if not present:
        return unknown_state(now)
    logp = np.zeros((len(MODEL_MODALITIES), len(LABELS)))
    presence = np.zeros(len(MODEL_MODALITIES))
    for i, modality in enumerate(MODEL_MODALITIES):
        if modality in present:
            logp[i] = log_probs(summaries[modality].probs)
            presence[i] = summaries[modality].fresh
    factor = model.mood_factor(now - mood.timestamp) if mood is not None and mood.known else 0.0
    z, parts = model.terms(logp, presence, mood.probs if factor > 0 else None, factor)
    probs = softmax(z)
    top = int(probs.argmax())
    lifts = {m: max(0.0, float(term[top] - term.mean())) for m, term in parts.items()}
    total = sum(lifts.values())
    shares = {m: (lift / total if total > 0 else (1.0 / len(present) if m in present else 0.0))
              for m, lift in lifts.items()}
    # Valence and arousal: those the modalities that carried the decision measured (VADER's for
    # text), by share; the mood's by its share. A near-even distribution has no valence of its own.
    valence = sum(shares[m] * summaries[m].valence for m in present)
    arousal = sum(shares[m] * summaries[m].arousal for m in present)
    if "mood" in shares:
        valence += shares["mood"] * mood.valence
        arousal += shares["mood"] * mood.arousal
    contributions = tuple(
        Contribution(
            modality=modality,
            share=shares[modality],
            label=LABELS[max(range(len(LABELS)), key=summaries[modality].probs.__getitem__)],
            confidence=summaries[modality].strength,
            probs=summaries[modality].probs,
            n_readings=summaries[modality].n,
        )
        for modality in present
    )
    confidence = float(probs[top])
    label = LABELS[top] if confidence >= model.unknown_below else UNKNOWN
    return FusedState(label, tuple(float(p) for p in probs), confidence, min(1.0, max(-1.0, float(valence))),
                      min(1.0, max(0.0, float(arousal))), contributions, now, mood_share=shares.get("mood", 0.0))
