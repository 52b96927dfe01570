"""The Rasa patches: the cached validator refuses what Rasa's does; the sensing action's payload is small."""
from __future__ import annotations

import sys

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


def _demo_story_trackers():
    """Trackers of every story and rule of the demo, with the demo's domain."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

    from emobot.paths import DEMO_DIR

    domain = Domain.load(str(DEMO_DIR / "domain.yml"))
    trackers = []
    for name in ("stories.yml", "rules.yml"):
        for step in YAMLStoryReader(domain).read_from_file(str(DEMO_DIR / "data" / name)):
            events = [e for e in step.explicit_events(domain) if not (isinstance(e, ActionExecuted) and not e.action_name
                                                                         and not e.action_text)]
            trackers.append(DialogueStateTracker.from_events(step.block_name, events, domain.slots))
    return domain, trackers


def test_cached_dialogue_states_are_rasas_for_every_story_and_option():
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered

    from emobot import rasa_states

    domain, trackers = _demo_story_trackers()
    assert len(trackers) > 10
    rule_only = {"slots": ["user_emotion"], "loops": []}
    options = [dict(), dict(omit_unset_slots=True), dict(ignore_rule_only_turns=True, rule_only_data=rule_only)]
    original = rasa_states._original
    try:
        rasa_states.install()
        for tracker in trackers:
            for option in options:
                expected = original(domain, tracker, **option)
                first = domain.states_for_tracker_history(tracker, **option)
                assert first == expected, (tracker.sender_id, option)
                first[-1].clear()  # Rasa's featurizers edit the states they are given
                assert domain.states_for_tracker_history(tracker, **option) == expected
        # A new event is a new answer, not the cached one.
        tracker = trackers[0]
        before = domain.states_for_tracker_history(tracker)
        tracker.update(UserUttered("I'm furious", {"name": "complaint"}))
        tracker.update(SlotSet("user_emotion", "angry"))
        tracker.update(ActionExecuted("utter_apologise"))
        after = domain.states_for_tracker_history(tracker)
        assert after == original(domain, tracker) and len(after) == len(before) + 1
        # A copy of a tracker is computed afresh, never handed the original's answers.
        assert domain.states_for_tracker_history(tracker.copy()) == after
    finally:
        Domain.states_for_tracker_history = original


def test_a_conversation_replayed_turn_by_turn_from_the_store_gets_rasas_states():
    """As under Rasa: every message reloads the conversation (new event objects) and the kept
    replay goes on from where it was; reverts and restarts are replayed afresh."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event, Restarted, UserUtteranceReverted
    from rasa.shared.core.trackers import DialogueStateTracker

    from emobot import rasa_states

    domain, stories = _demo_story_trackers()
    rule_only = {"slots": ["user_emotion"], "loops": []}
    options = [dict(), dict(ignore_rule_only_turns=True, rule_only_data=rule_only)]
    original = rasa_states._original
    longest = max(stories, key=lambda t: len(t.events))
    stored = [e.as_dict() for e in longest.events]
    # At run time the actions the RulePolicy predicted are hidden from the ML policies' states.
    for number, event in enumerate(e for e in stored if e["event"] == "action" and e["name"] != "action_listen"):
        event["hide_rule_turn"] = number % 2 == 0
    stored += [UserUtteranceReverted().as_dict(), *stored[-3:], Restarted().as_dict(), *stored[:5]]

    def reloaded(count: int) -> DialogueStateTracker:
        return DialogueStateTracker.from_events("someone", [Event.from_parameters(e) for e in stored[:count]],
                                                domain.slots)

    try:
        rasa_states.install()
        for count in range(1, len(stored) + 1):
            for option in options:
                assert domain.states_for_tracker_history(reloaded(count), **option) == \
                    original(domain, reloaded(count), **option), (count, option)
        # Another history for the same sender (shorter, then different) is not served the kept one.
        for count in (3, len(stored)):
            assert domain.states_for_tracker_history(reloaded(count)) == original(domain, reloaded(count))
        other = DialogueStateTracker.from_events("someone", stories[0].events, domain.slots)
        assert domain.states_for_tracker_history(other) == original(domain, other)
        # A tracker asked again after a longer one of the same sender moved the kept replay on.
        short, longer = reloaded(len(longest.events) // 2), reloaded(len(longest.events))
        domain.states_for_tracker_history(short)
        domain.states_for_tracker_history(longer)
        assert domain.states_for_tracker_history(short, **options[1]) == original(domain, short, **options[1])
    finally:
        Domain.states_for_tracker_history = original


def test_rasa_run_freezes_its_start_up_heap_once_after_loading_the_model(monkeypatch):
    import asyncio

    from emobot import rasa_patches

    frozen = []
    loaded = []

    async def load_agent(*args, **kwargs):
        loaded.append(args)
        return "agent"

    monkeypatch.setattr(rasa_patches, "freeze_startup_heap", lambda: frozen.append(True) or True)
    monkeypatch.setattr(rasa_patches, "_original_load_agent_on_start", load_agent)
    monkeypatch.setattr(rasa_patches, "_heap", {"frozen": False})

    monkeypatch.setattr(sys, "argv", ["/usr/bin/python", "-m", "pytest"])
    assert asyncio.run(rasa_patches._load_agent_then_freeze("model")) == "agent"
    assert loaded and not frozen, "a test or a script is not frozen"

    monkeypatch.setattr(sys, "argv", ["/srv/assistant/.venv/bin/rasa", "run", "--enable-api"])
    assert asyncio.run(rasa_patches._load_agent_then_freeze("model")) == "agent"
    rasa_patches._freeze_heap_once()  # the first message: already frozen
    assert frozen == [True]


def test_the_text_prefetch_closes_its_connections_when_the_server_stops(monkeypatch):
    """Rasa's after_server_stop clean-up closes the prefetch's pool to the emotion service first (left
    open, asyncio logged "Unclosed client session" from every Rasa process at shutdown), then runs."""
    import asyncio

    from emotion_sensing.service.client import EmotionClient

    closed_by_rasa = []

    async def close_resources(app, loop):
        closed_by_rasa.append(app)

    prefetch = rasa_patches._TextPrefetch()
    monkeypatch.setattr(rasa_patches, "text_prefetch", prefetch)
    monkeypatch.setattr(rasa_patches, "_original_close_resources", close_resources)

    async def serve_then_stop():
        prefetch._client = EmotionClient("http://127.0.0.1:9")
        session = await prefetch._client._http()  # as the first message's post opens it
        await rasa_patches._close_resources_and_prefetch("app", asyncio.get_running_loop())
        return session

    session = asyncio.run(serve_then_stop())
    assert session.closed and prefetch._client is None
    assert closed_by_rasa == ["app"]
    asyncio.run(rasa_patches._close_resources_and_prefetch("again", None))  # no client: Rasa's clean-up only
    assert closed_by_rasa == ["app", "again"]


def _events_of_every_kind():
    from datetime import datetime

    from rasa.shared.core import events as e

    return [
        e.UserUttered("hi", {"name": "greet", "confidence": 0.9}, [{"entity": "x", "value": 1, "start": 0, "end": 1}],
                      parse_data={"text": "hi", "intent": {"name": "greet", "confidence": 0.9},
                                  "intent_ranking": [{"name": "greet", "confidence": 0.9}], "entities": []}),
        e.ActionExecuted("action_listen", policy="RulePolicy", confidence=1.0), e.SlotSet("user_emotion", "angry"),
        e.SlotSet("emotion_reading", {"label": "sad", "modalities": {"face": [0.1, 0.9]}}),
        e.EntitiesAdded([{"entity": "order", "value": "12345"}]), e.BotUttered("hello", {"buttons": []}),
        e.SessionStarted(), e.FollowupAction("utter_greet"), e.Restarted(), e.AllSlotsReset(),
        e.ActiveLoop("a_form"), e.LoopInterrupted(True), e.ActionExecutionRejected("a_form"),
        e.ConversationPaused(), e.ConversationResumed(), e.ActionReverted(), e.UserUtteranceReverted(),
        e.ReminderScheduled("intent", datetime(2026, 12, 4)), e.ReminderCancelled(name="r"), e.StoryExported(),
        e.AgentUttered("hi"),
    ]


def test_the_quick_check_accepts_only_what_the_whole_schema_accepts():
    """Each event checked against its own alternative of Rasa's schema: the same verdict as the
    schema's oneOf over all alternatives, for every kind of event and for broken ones."""
    import copy
    import random

    validator = rasa_patches._action_response_validator()
    events = [event.as_dict() for event in _events_of_every_kind()]
    # Every kind of event Rasa writes is taken by the quick check (so it is the path responses take).
    for event in events:
        response = {"events": [event], "responses": [{"text": "ok"}]}
        assert validator.is_valid(response), event
        assert rasa_patches._plainly_valid(response), event
    # Broken responses: the quick check never accepts one the schema refuses.
    rng = random.Random(4)
    junk = [None, 3, "x", 1.5, [], {}, {"name": 3}, True]
    checked = refused = 0
    for _ in range(3000):
        response = {"events": copy.deepcopy(rng.sample(events, rng.randint(0, 4))), "responses": []}
        for _ in range(rng.randint(1, 3)):
            target = rng.choice(["event", "response", "top"]) if response["events"] else "top"
            if target == "event":
                event = rng.choice(response["events"])
                key = rng.choice(sorted(event) + ["event", "entities", "name", "value", "parse_data"])
                if rng.random() < 0.3:
                    event.pop(key, None)
                else:
                    event[key] = rng.choice(junk + ["slot", "bot", "user", "topic", "nonsense"])
            elif target == "response":
                response["responses"] = rng.choice([[{"text": 1}], ["x"], "nope", [None], [{}]])
            else:
                response = rng.choice([response, {"events": "x"}, [response], {"events": [1]}, None])
                break
        valid = validator.is_valid(response)
        checked += 1
        refused += not valid
        if rasa_patches._plainly_valid(response):
            assert valid, response
    assert refused > 1000 and checked - refused > 100  # both verdicts were exercised
