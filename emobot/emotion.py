"""The person's emotion as your own custom actions (or policies) see it: one call on the tracker.

The sensing action leaves the fused state in five slots (emotion_sensing/slots.py). Read raw, they
have traps: valence and arousal are ``None`` when the emotion is unknown (unknown is no evidence of
calm), a slot is missing where sensing was never installed, and which senses decided the state is
inside ``emotion_reading``. :func:`user_emotion` reads them into one value that is safe to test::

    from emobot.emotion import user_emotion

    class ActionLogComplaint(Action):
        def name(self) -> str:
            return "action_log_complaint"

        async def run(self, dispatcher, tracker, domain):
            emotion = user_emotion(tracker)
            if emotion.feels("angry", "disgust", min_confidence=0.5) or emotion.negative():
                dispatcher.utter_message(response="utter_apologise")
            ticket = {"text": tracker.latest_message.get("text"), "emotion": emotion.label,
                      "valence": emotion.valence, "sensed_by": emotion.modalities}
            ...

It takes anything with ``get_slot`` (rasa_sdk's ``Tracker``, Rasa's ``DialogueStateTracker``) and needs
no Rasa import itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from emotion_sensing.labels import LABELS, UNKNOWN
from emotion_sensing.slots import AROUSAL, CONFIDENCE, READING, USER_EMOTION, VALENCE, slot_number

NOT_SENSED = "not sensed"


@dataclass(frozen=True)
class UserEmotion:
    """The fused emotion at the latest user turn."""

    label: str = UNKNOWN
    confidence: float = 0.0
    valence: Optional[float] = None  # -1 (negative) to +1; None when unknown
    arousal: Optional[float] = None  # 0 (calm) to 1; None when unknown
    probs: Dict[str, float] = field(default_factory=dict)
    modalities: Tuple[str, ...] = ()  # the senses that decided it, largest share first ("text", "face", "voice")
    mood_share: float = 0.0  # how much of it the earlier turns carried
    sensing: str = NOT_SENSED  # "ok", or why it is unknown ("timeout", "unavailable: ...", ...)

    @property
    def known(self) -> bool:
        return self.label != UNKNOWN

    def feels(self, *labels: str, min_confidence: float = 0.0) -> bool:
        """Whether the label is one of ``labels`` with at least ``min_confidence``."""
        unknown = sorted(set(labels) - set(LABELS))
        if unknown:
            raise ValueError(f"unknown emotion label(s) {', '.join(unknown)}; labels are {', '.join(LABELS)}")
        return self.label in labels and self.confidence >= min_confidence

    def negative(self, at_most: float = -0.3) -> bool:
        """Whether the valence is known and at or below ``at_most`` (the EmotionPolicy's default)."""
        return self.valence is not None and self.valence <= at_most


def user_emotion(tracker: Any) -> UserEmotion:
    """The emotion the sensing action set at the latest user turn (unknown where it set none)."""
    label = tracker.get_slot(USER_EMOTION)
    reading = tracker.get_slot(READING)
    reading = reading if isinstance(reading, dict) else {}
    if label not in LABELS:
        sensing = reading.get("sensing") if label == UNKNOWN else None
        return UserEmotion(sensing=str(sensing) if sensing else NOT_SENSED)
    contributions = [c for c in reading.get("contributions") or [] if isinstance(c, dict)]
    decided = sorted((c for c in contributions if (slot_number(c.get("share")) or 0.0) > 0),
                     key=lambda c: -(slot_number(c.get("share")) or 0.0))
    probs = reading.get("probs") if isinstance(reading.get("probs"), dict) else {}
    return UserEmotion(
        label=label,
        confidence=slot_number(tracker.get_slot(CONFIDENCE)) or 0.0,
        valence=slot_number(tracker.get_slot(VALENCE)),
        arousal=slot_number(tracker.get_slot(AROUSAL)),
        probs={k: float(v) for k, v in probs.items() if k in LABELS and slot_number(v) is not None},
        modalities=tuple(str(c.get("modality")) for c in decided),
        mood_share=slot_number(reading.get("mood_share")) or 0.0,
        sensing=str(reading.get("sensing") or "ok"),
    )
