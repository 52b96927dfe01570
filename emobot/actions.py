"""action_sense_emotion: run by Rasa on every user turn through the emotion slots' custom
mapping. It asks the emotion service about the turn and sets the emotion slots."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from emotion_sensing.config import Settings
from emotion_sensing.fusion import unknown_state
from emotion_sensing.labels import UNKNOWN
from emotion_sensing.service.client import EmotionClient
from emotion_sensing.slots import CLICK_UNSENSED, SENSE_ACTION, is_intent_payload, slot_values

logger = logging.getLogger(__name__)


class ActionSenseEmotion(Action):
    """Sets user_emotion, emotion_confidence/valence/arousal and emotion_reading."""

    def __init__(self) -> None:
        settings = Settings.from_env()
        self._client: Optional[EmotionClient] = EmotionClient(settings.service_url, settings.time_budget_ms,
                                                                  token=settings.service_token)

    def name(self) -> str:
        return SENSE_ACTION

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        text = (tracker.latest_message or {}).get("text") or ""
        if not text.strip():
            # A message without text has nothing to read. (A button's payload, /rate{...}, goes to the
            # service, which reads no words in it but still fuses the face and the voice.)
            answer = {"state": unknown_state().to_dict(), "sensing": "no text"}
        else:
            answer = await self._client.turn_or_unknown(tracker.sender_id, text)
            if answer.get("sensing") == "ok" and is_intent_payload(text) and answer["state"].get("label") == UNKNOWN:
                answer["sensing"] = CLICK_UNSENSED
        values = slot_values(answer)
        logger.info(
            "sender %s: %s (confidence %.2f, sensing %s)",
            tracker.sender_id, values["user_emotion"], values["emotion_confidence"], answer.get("sensing"),
        )
        return [SlotSet(name, value) for name, value in values.items()]
