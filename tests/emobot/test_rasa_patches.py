"""The Rasa patches: the cached validator refuses what Rasa's does; the sensing action's payload is small."""
from __future__ import annotations

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from emobot import rasa_patches


def test_valid_and_invalid_action_responses():
    original = RemoteAction._validate_action_result
    patched = RemoteAction._action_call_format, RemoteAction.run
    rasa_patches.apply()
    action = RemoteAction("action_sense_emotion", None)
    good = {"events": [{"event": "slot", "name": "user_emotion", "value": "angry"}], "responses": []}
    bad = {"events": [{"event": "slot", "name": 3}], "responses": "nope"}
    try:
        assert action._validate_action_result(good)
        with pytest.raises(ValidationError, match="Failed to validate Action server response"):
            action._validate_action_result(bad)
        with pytest.raises(ValidationError):
            original(action, bad)
    finally:
        RemoteAction._validate_action_result = original
        RemoteAction._action_call_format, RemoteAction.run = patched


def test_the_sensing_action_is_sent_the_latest_message_not_the_whole_conversation():
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    originals = RemoteAction._action_call_format, RemoteAction.run, RemoteAction._validate_action_result
    rasa_patches.apply()
    try:
        domain = Domain.from_yaml("version: '3.1'\nintents: [greet]\nresponses:\n  utter_greet:\n  - text: hi\n")
        events = []
        for i in range(50):
            events += [UserUttered(f"message {i}", {"name": "greet"}), ActionExecuted("utter_greet"),
                       BotUttered("hi"), ActionExecuted("action_listen")]
        events.append(UserUttered("I'm furious", {"name": "greet"}, metadata={"emobot": {"source": "web"}}))
        tracker = DialogueStateTracker.from_events("someone", events)
        sensing = RemoteAction("action_sense_emotion", None)._action_call_format(tracker, domain)
        other = RemoteAction("action_check_order", None)._action_call_format(tracker, domain)
    finally:
        RemoteAction._action_call_format, RemoteAction.run, RemoteAction._validate_action_result = originals
    assert sensing["sender_id"] == "someone" and "domain" not in sensing
    assert sensing["tracker"]["latest_message"]["text"] == "I'm furious"
    assert sensing["tracker"]["latest_message"]["metadata"] == {"emobot": {"source": "web"}}
    assert not sensing["tracker"].get("events")
    assert len(other["tracker"]["events"]) == len(events) and "domain" in other  # other actions untouched


def test_the_cached_event_lookup_answers_as_rasas_does():
    from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
    from rasa.shared.utils.common import all_subclasses

    original = Event.resolve_by_type
    rasa_patches.apply()
    try:
        for cls in all_subclasses(Event):
            assert Event.resolve_by_type(cls.type_name) is rasa_patches._original_resolve_by_type(cls.type_name)
        assert Event.resolve_by_type("topic") is None
        assert Event.resolve_by_type("no such event", default=SlotSet) is SlotSet
        with pytest.raises(ValueError, match="Unknown event name"):
            Event.resolve_by_type("no such event")
        events = [UserUttered("hi", {"name": "greet"}), SlotSet("user_emotion", "sad"), ActionExecuted("utter_greet")]
        assert [Event.from_parameters(e.as_dict()) for e in events] == events
    finally:
        Event.resolve_by_type = original


async def test_a_misunderstood_turn_keeps_its_emotion_for_the_slots_and_the_policy():
    """The fallback reverts the user's turn; the emotion sensed for it stays (slots, chat line,
    replay agree) and the EmotionPolicy counts the turn (misunderstandings are where anger builds)."""
    from rasa.core.actions.action import ActionDefaultFallback
    from rasa.core.channels import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from emobot.policy import _turns
    from emotion_sensing.trajectory import TrajectoryRule, should_step_in

    original = ActionDefaultFallback.run
    rasa_patches.apply()
    try:
        domain = Domain.from_yaml(
            "version: '3.1'\nintents: [order_status]\n"
            "slots:\n  user_emotion:\n    type: any\n    mappings: [{type: custom}]\n"
            "  emotion_valence:\n    type: any\n    mappings: [{type: custom}]\n"
            "responses:\n  utter_default:\n  - text: sorry?\n  utter_order_status:\n  - text: on its way\n")
        tracker = DialogueStateTracker.from_events("s1", [
            UserUttered("where is my order?", {"name": "order_status"}), SlotSet("user_emotion", "neutral"),
            SlotSet("emotion_valence", -0.4), ActionExecuted("utter_order_status"), ActionExecuted("action_listen"),
            UserUttered("no", {"name": "nlu_fallback"}), SlotSet("user_emotion", "angry"),
            SlotSet("emotion_valence", -0.8),
        ], slots=domain.slots)
        nlg = TemplatedNaturalLanguageGenerator(domain.responses)
        events = await ActionDefaultFallback().run(CollectingOutputChannel(), nlg, tracker, domain)
        kinds = [type(e).__name__ for e in events]
        assert kinds[:2] == ["BotUttered", "UserUtteranceReverted"] and "SlotSet" in kinds[2:]
        tracker.update(ActionExecuted("action_default_fallback"))
        for event in events:
            tracker.update(event)
        assert tracker.get_slot("user_emotion") == "angry" and tracker.get_slot("emotion_valence") == -0.8
        valences = [turn["valence"] for turn in _turns(tracker)]
        assert valences == [-0.4, -0.8]
        assert should_step_in(valences, TrajectoryRule(-0.3, 2)) is not None
    finally:
        ActionDefaultFallback.run = original
