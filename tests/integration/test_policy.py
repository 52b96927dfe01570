"""The EmotionPolicy changes the path, not only the wording, when anger persists."""
from __future__ import annotations

import uuid

import pytest
import requests

from emobot.chat import RasaRestClient

pytestmark = pytest.mark.integration


def actions_after_last_user_message(stack, sender):
    tracker = requests.get(f"{stack.settings.rasa_url}/conversations/{sender}/tracker", timeout=10).json()
    events = tracker["events"]
    last_user = max(i for i, e in enumerate(events) if e["event"] == "user")
    return [e["name"] for e in events[last_user:] if e["event"] == "action"
            and e["name"] not in ("action_listen", "action_extract_slots")]


def test_sustained_anger_gets_an_offer_of_a_person_and_calm_does_not(stack):
    angry = RasaRestClient(stack.settings.rasa_url, f"angry-{uuid.uuid4().hex[:6]}")
    angry.send("Where is my order? I'm furious!")
    assert actions_after_last_user_message(stack, angry.sender_id) == ["utter_order_status"]
    angry.send("Where is my order? I'm furious!")
    assert actions_after_last_user_message(stack, angry.sender_id) == ["utter_order_status", "utter_offer_human"]
    # Offered once: a third angry turn is answered without repeating the offer.
    angry.send("Where is my order? I'm furious!")
    assert actions_after_last_user_message(stack, angry.sender_id) == ["utter_order_status"]

    calm = RasaRestClient(stack.settings.rasa_url, f"calm-{uuid.uuid4().hex[:6]}")
    for text in ("Where is my order?", "Could you tell me where my order is?", "When will my order arrive?"):
        calm.send(text)
        assert actions_after_last_user_message(stack, calm.sender_id) == ["utter_order_status"]
