"""The same words take a different path through the dialogue when the sensed emotion differs.

End to end: a face reading is posted to the emotion service (as a camera would) just before
the user's message; the sensing action fuses it with the text, Rasa's rules branch on
user_emotion, and the tracker shows which actions ran.
"""
from __future__ import annotations

import uuid
from typing import Dict, List, Optional

import pytest
import requests

from emobot.chat import RasaRestClient

pytestmark = pytest.mark.integration

SKIPPED = ("action_listen", "action_extract_slots")


def face(stack, sender: str, emotion: str) -> None:
    """Post a confident face reading of one emotion for the conversation."""
    probs = {emotion: 1.0} if emotion == "neutral" else {emotion: 0.95, "neutral": 0.05}
    response = requests.post(
        f"{stack.settings.service_listen_url}/v1/sessions/{sender}/readings",
        json={"modality": "face", "probs": probs, "confidence": 0.95},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def converse(stack, messages: List[str], first_face: Optional[str]) -> Dict[str, list]:
    """Send the messages (with a face reading before the first); actions and emotion per turn."""
    client = RasaRestClient(stack.settings.rasa_url, f"path-{first_face}-{uuid.uuid4().hex[:6]}")
    actions, emotions = [], []
    for number, message in enumerate(messages):
        if number == 0 and first_face:
            face(stack, client.sender_id, first_face)
        client.send(message)
        tracker = requests.get(f"{stack.settings.rasa_url}/conversations/{client.sender_id}/tracker", timeout=10).json()
        events = tracker["events"]
        last_user = max(i for i, e in enumerate(events) if e["event"] == "user")
        actions.append([e["name"] for e in events[last_user:] if e["event"] == "action" and e["name"] not in SKIPPED])
        emotions.append(tracker["slots"]["user_emotion"])
    return {"actions": actions, "emotions": emotions, "sender": client.sender_id}


def test_the_same_complaint_is_handled_by_emotion(stack):
    # Words the text model reads as mildly neutral (0.6), so the face decides: "I want to make a
    # complaint" reads angry on its own (DailyDialog files complaints under anger).
    messages = ["I have a complaint", "no"]
    neutral = converse(stack, messages, "neutral")
    angry = converse(stack, messages, "angry")
    sad = converse(stack, messages, "sad")

    assert [neutral["emotions"][0], angry["emotions"][0], sad["emotions"][0]] == ["neutral", "angry", "sad"]
    # Calm: the complaint is logged, a person offered, and "no" ends it there.
    assert neutral["actions"] == [["utter_complaint", "utter_offer_human"], ["utter_anything_else"]]
    # Angry: an apology and a person first; "no" and only then is the complaint logged.
    assert angry["actions"] == [["utter_apologise", "utter_offer_human_or_log"], ["utter_complaint"]]
    # Sad: asked whether they want to talk first; "no" goes to business.
    assert sad["actions"] == [["utter_ask_talk"], ["utter_complaint"]]


def test_a_happy_thank_you_is_asked_for_a_rating_and_a_neutral_one_is_not(stack):
    messages = ["thx"]
    happy = converse(stack, messages, "happy")
    neutral = converse(stack, messages, "neutral")
    assert happy["emotions"] == ["happy"] and neutral["emotions"] == ["neutral"]
    assert happy["actions"] == [["utter_thanks", "utter_ask_feedback"]]
    assert neutral["actions"] == [["utter_thanks"]]


def test_the_service_shows_the_conversation_as_a_replay_page(stack):
    sender = converse(stack, ["I want to make a complaint"], "angry")["sender"]
    listing = requests.get(f"{stack.settings.service_listen_url}/replay", params={"format": "json"}, timeout=30)
    assert sender in [c["sender_id"] for c in listing.json()["conversations"]]
    page = requests.get(f"{stack.settings.service_listen_url}/replay/{sender}", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "I want to make a complaint" in page.text and '<svg id="timeline"' in page.text
    assert ">angry</span>" in page.text and "face angry" in page.text  # the face's share is shown
