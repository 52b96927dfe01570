"""The Rasa slots the plugin fills, and how a fused state becomes their values.

Pure Python (no Rasa import) so the mapping is testable on its own and shared by the
action, replay and the `add-to` installer.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

from emotion_sensing.labels import LABELS, UNKNOWN

USER_EMOTION = "user_emotion"
CONFIDENCE = "emotion_confidence"
VALENCE = "emotion_valence"
AROUSAL = "emotion_arousal"
READING = "emotion_reading"
SLOT_NAMES = (USER_EMOTION, CONFIDENCE, VALENCE, AROUSAL, READING)
EMOTION_VALUES = (*LABELS, UNKNOWN)
SENSE_ACTION = "action_sense_emotion"
# Rasa reads a message that starts with this as an intent, with entities, and runs no NLU on it.
INTENT_PREFIX = "/"
# emotion_reading's "sensing" where a click sensed nothing (no camera or microphone on to read it).
CLICK_UNSENSED = "a button's payload, no words to read"


def slot_number(value: Any, from_text: bool = False) -> Optional[float]:
    """A slot value as a finite number, else None: a number (not a bool), or with ``from_text`` also
    what ``float()`` reads ("4", the rating a payload sets as text). NaN and infinities are None."""
    if isinstance(value, bool) or (not from_text and not isinstance(value, (int, float))):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def is_intent_payload(text: str) -> bool:
    """Whether Rasa takes ``text`` as an intent payload (a button's ``/rate{"rating": "4"}``): the
    person clicked, and there are no words of theirs to read emotion from."""
    return text.startswith(INTENT_PREFIX)


def slot_values(answer: Mapping[str, Any]) -> Dict[str, Any]:
    """Slot values from the service's answer to a turn (or an unknown-state answer)."""
    state = answer.get("state") or {}
    label = state.get("label", UNKNOWN)
    if label not in EMOTION_VALUES:
        label = UNKNOWN
    reading = {
        "label": label,
        "confidence": state.get("confidence", 0.0),
        "valence": state.get("valence", 0.0),
        "arousal": state.get("arousal", 0.0),
        "probs": state.get("probs", {}),
        "contributions": state.get("contributions", []),
        "mood_share": state.get("mood_share", 0.0),
        "sensing": answer.get("sensing", "ok"),
        "elapsed_ms": answer.get("elapsed_ms"),
    }
    text_reading = answer.get("reading")
    if text_reading:
        reading["text"] = {
            "label": text_reading.get("label"),
            "confidence": text_reading.get("confidence"),
            "vader": (text_reading.get("extras") or {}).get("vader"),
        }
    known = label != UNKNOWN
    # Unknown is no evidence of calm: valence and arousal stay empty rather than 0.
    return {
        USER_EMOTION: label,
        CONFIDENCE: float(state.get("confidence", 0.0)),
        VALENCE: float(state.get("valence", 0.0)) if known else None,
        AROUSAL: float(state.get("arousal", 0.0)) if known else None,
        READING: reading,
    }
