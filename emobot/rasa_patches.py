"""Fixes for Rasa 3.6 on the sensing path, applied inside the Rasa process.

Speed: Rasa validates every action server response with ``jsonschema.validate(result, spec)``,
which re-checks the (large) schema itself on every call: measured with py-spy, that was
about half of a user turn's time once the sensing action runs on each turn. Here the
validator is built and its schema checked once; every response is still validated
against the same schema, with the same error. And each event is checked against the one
alternative of the schema's ``oneOf`` that its type can match, not all 23 (the sensing
action's five slots: 2.2 -> 0.32 ms); what that check does not accept goes to the whole schema.
Action calls go over kept connections (emobot/keepalive.py).

Tracker loading: every message makes Rasa load the conversation from the tracker store and
turn each stored event back into an object, and for each event ``Event.resolve_by_type``
walks the whole tree of event classes (measured with py-spy on a 120-turn conversation: a sixth
of the message's time). Here the type name -> class table is built once (and again only if
a name is not found, so event classes imported later still resolve), with the same answers.

Payload: Rasa sends every custom action the whole conversation (every event) and the whole
domain, so each turn's sensing call grew with the conversation's length (under load, a
conversation's 25th turn took noticeably longer than its first). The sensing action needs only
the sender id and the latest message: it gets the tracker without its events, and no domain.

Faults: Rasa waits up to 5 minutes for an action server, and when the sensing action cannot
run (action server down, hung or failing) ``action_extract_slots`` keeps the previous turn's
emotion slots. Here ``action_sense_emotion`` gets a deadline (the sensing budget plus
:data:`SENSE_GRACE_S`) and, when it fails, sets the emotion to ``unknown``, as the action does
itself when the emotion service is down: the turn goes on at once, adapted to nothing stale.
Other custom actions are untouched.

Misunderstood turns keep their emotion: ``action_default_fallback`` reverts the user's turn
(Rasa's ``UserUtteranceReverted``), and with it the emotion slots that turn's sensing set, so
the slots, the chat's status line and the EmotionPolicy went on with the previous turn's
emotion while replay showed the reverted one. Misunderstandings are where frustration builds:
here the fallback sets the emotion slots again after its revert, to what was sensed for the
turn it took back (the EmotionPolicy counts reverted turns too, emobot/policy.py).

SQL tracker stores: SQLite's write-ahead log; a conversation loaded without ORM objects and
saved without counting its stored events again (emobot/sql_tracker.py).

Start-up: DIET and TED load their weights without tracing a training step first
(emobot/tf_load.py), which took two thirds of loading the demo model.

Per prediction: TED does not predict where a rule's prediction is certain to win
(emobot/rule_first.py), and DIET and TED run their traced graph without tf.function's
per-call dispatch (emobot/tf_call.py).

Garbage collection: in ``rasa run``, once the model has loaded (or, where this module was
imported too late to see the load, at the first message), the process's start-up heap is frozen
out of the collector's full passes, which took 350-730 ms each under load and stalled every turn
of the process (emotion_sensing/processes.py: ``freeze_startup_heap``).

Text first: the moment a message reaches Rasa (any channel), its text is posted to the emotion
service (``POST /v1/sessions/{sender}/texts``), which starts reading it while Rasa runs its own
NLU and policies; the sensing action's turn call then collects the finished reading instead of
waiting for the text model. Rasa waits for the service's acknowledgement (a loopback round trip,
at most :data:`PREFETCH_ACK_S`) before it parses the message: left to race, the post lost to the
turn on a loaded machine (in CI, all four messages of a test; here, two in four with both cores
busy), and the text was read twice. A failed or slow post only means the turn reads the text
itself. ``EMOBOT_TEXT_PREFETCH=0`` turns it off.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import rasa.core.run
from jsonschema import ValidationError, validators
from rasa.core.actions.action import ActionDefaultFallback, RemoteAction
from rasa.core.processor import MessageProcessor
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core.events import Event, SlotSet
from rasa.shared.utils.common import all_subclasses

from emobot import keepalive, rasa_states, rule_first, sql_tracker, tf_call, tf_load
from emotion_sensing.config import Settings
from emotion_sensing.fusion import unknown_state
from emotion_sensing.processes import freeze_startup_heap, switched_off
from emotion_sensing.slots import SENSE_ACTION, SLOT_NAMES, is_intent_payload, slot_values

logger = logging.getLogger(__name__)
# Beyond the sensing budget, time for the action server round trip on a busy machine.
SENSE_GRACE_S = 2.0
_original_run = RemoteAction.run
_original_call_format = RemoteAction._action_call_format
_original_resolve_by_type = Event.resolve_by_type
_original_handle_message = MessageProcessor.handle_message
_original_load_agent_on_start = rasa.core.run.load_agent_on_start
_original_close_resources = rasa.core.run.close_resources
_original_fallback_run = ActionDefaultFallback.run
_event_classes: Dict[str, type] = {}


def _resolve_event_type(type_name: str, default=None):
    """Rasa's ``Event.resolve_by_type`` with its class lookup cached."""
    found = _event_classes.get(type_name)
    if found is None:
        _event_classes.clear()
        for cls in all_subclasses(Event):
            _event_classes.setdefault(cls.type_name, cls)  # the first match, as Rasa's loop returns
        found = _event_classes.get(type_name)
    if found is not None:
        return found
    return _original_resolve_by_type(type_name, default)  # "topic", a default, or Rasa's ValueError


@functools.lru_cache(maxsize=1)
def _action_response_validator():
    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


@functools.lru_cache(maxsize=1)
def _event_validators() -> Dict[str, Any]:
    """One validator per event type: the schema of an event (type, timestamp, metadata) and the
    one ``oneOf`` alternative whose ``event`` constant is that type."""
    from rasa.shared.utils.schemas.events import EVENT_SCHEMA

    base = {key: value for key, value in EVENT_SCHEMA.items() if key != "oneOf"}
    found: Dict[str, Any] = {}
    for alternative in EVENT_SCHEMA["oneOf"]:
        name = alternative["properties"]["event"]["const"]
        schema = {"allOf": [base, alternative]}
        validator_class = validators.validator_for(schema)
        validator_class.check_schema(schema)
        found[name] = validator_class(schema)
    return found


def _plainly_valid(result: Any) -> bool:
    """Whether Rasa's response schema accepts ``result``, decided by each event's own alternative.

    The schema checks every event against all 23 event alternatives (``oneOf``: exactly one must
    match), 2.2 ms for the sensing action's five slots. Every alternative requires its own
    ``event`` constant and ``event`` is required, so an event can match only the alternative of
    its type: checking that one alone is the same test. Anything this does not accept (an unknown
    type, a missing field, a wrong shape) goes to the whole schema, which gives Rasa's own error.
    """
    if not isinstance(result, dict):
        return False
    events, responses = result.get("events", []), result.get("responses", [])
    if not isinstance(events, list) or not isinstance(responses, list):
        return False
    if not all(isinstance(response, dict) for response in responses):
        return False
    by_type = _event_validators()
    for event in events:
        kind = event.get("event") if isinstance(event, dict) else None
        validator = by_type.get(kind) if isinstance(kind, str) else None
        if validator is None or not validator.is_valid(event):
            return False
    return True


def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
    try:
        if _plainly_valid(result):
            return True
        _action_response_validator().validate(result)
        return True
    except ValidationError as error:
        error.message += (
            ". Failed to validate Action server response from API, make sure your response "
            f"from the Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise


@functools.lru_cache(maxsize=1)
def sense_deadline_s() -> float:
    return Settings.from_env().time_budget_ms / 1000.0 + SENSE_GRACE_S


def unknown_emotion_events(reason: str) -> List[SlotSet]:
    """The emotion slots of a turn whose sensing could not run."""
    values = slot_values({"state": unknown_state().to_dict(), "sensing": f"unavailable: {reason}"})
    return [SlotSet(name, value) for name, value in values.items()]


def _sensing_call_format(self: RemoteAction, tracker, domain) -> Dict[str, Any]:
    if self.name() != SENSE_ACTION:
        return _original_call_format(self, tracker, domain)
    import rasa
    from rasa.shared.core.trackers import EventVerbosity

    return {"next_action": self.name(), "sender_id": tracker.sender_id,
            "tracker": tracker.current_state(EventVerbosity.NONE), "version": rasa.__version__}


async def _run_sensing_with_deadline(self: RemoteAction, output_channel, nlg, tracker, domain) -> List[Any]:
    if self.name() != SENSE_ACTION:
        return await _original_run(self, output_channel, nlg, tracker, domain)
    try:
        return await asyncio.wait_for(_original_run(self, output_channel, nlg, tracker, domain), sense_deadline_s())
    except asyncio.TimeoutError:
        reason = f"the action server did not answer within {sense_deadline_s():.1f} s"
    except Exception as error:  # noqa: BLE001 - any failure of sensing must leave the turn going
        reason = f"the action server failed ({error})"
    logger.warning("%s: %s; this turn's emotion is unknown", SENSE_ACTION, reason)
    return unknown_emotion_events(reason)


async def _fallback_keeping_emotion(self: ActionDefaultFallback, output_channel, nlg, tracker, domain) -> List[Any]:
    """Rasa's fallback (utter_default, then revert the user's turn), with the emotion sensed for
    that turn set again after the revert."""
    events = await _original_fallback_run(self, output_channel, nlg, tracker, domain)
    return events + [SlotSet(name, tracker.get_slot(name)) for name in SLOT_NAMES if name in tracker.slots]


PREFETCH_ACK_S = 0.1  # the longest Rasa waits for the service to take a message's text


class _TextPrefetch:
    """Posts each message's text to the emotion service as it arrives (see the module's docstring)."""

    def __init__(self) -> None:
        self._client = None
        self._tasks: set = set()

    def enabled(self) -> bool:
        return not switched_off("EMOBOT_TEXT_PREFETCH")

    def start(self, message) -> Optional[asyncio.Task]:
        """The task posting the message's text, or None where there is nothing to post."""
        text = getattr(message, "text", None) or ""
        sender = getattr(message, "sender_id", None)
        if not sender or not text.strip() or is_intent_payload(text) or not self.enabled():
            return None
        if self._client is None:
            from emotion_sensing.service.client import EmotionClient

            settings = Settings.from_env()
            self._client = EmotionClient(settings.service_url, settings.time_budget_ms, token=settings.service_token)
        task = asyncio.get_running_loop().create_task(self._client.prefetch(sender, text))
        self._tasks.add(task)  # held until done, so the loop does not drop it
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Close the connection pool to the service (when the server stops)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()


text_prefetch = _TextPrefetch()


_heap = {"frozen": False}


def _rasa_server() -> bool:
    """Whether this process is ``rasa run`` (the server), not a test or a script."""
    return Path(sys.argv[0]).name == "rasa" and sys.argv[1:2] == ["run"]


def _freeze_heap_once() -> None:
    if not _heap["frozen"] and _rasa_server():
        _heap["frozen"] = True
        freeze_startup_heap()


async def _load_agent_then_freeze(*args: Any, **kwargs: Any):
    agent = await _original_load_agent_on_start(*args, **kwargs)
    _freeze_heap_once()
    return agent


async def _close_resources_and_prefetch(app: Any, loop: Any) -> None:
    """Rasa's own clean-up when the server stops, after closing the text prefetch's connections
    (left open, asyncio logged "Unclosed client session" from every Rasa process at shutdown)."""
    try:
        await text_prefetch.close()
    except Exception as error:  # noqa: BLE001 - shutting down: Rasa's clean-up must still run
        logger.debug("text prefetch client not closed: %s", error)
    await _original_close_resources(app, loop)


async def _handle_message_reading_text_first(self: MessageProcessor, message):
    _freeze_heap_once()
    try:
        posting = text_prefetch.start(message)
        if posting is not None:  # the service has the text before Rasa's turn can reach it
            await asyncio.wait({posting}, timeout=PREFETCH_ACK_S)
    except Exception as error:  # noqa: BLE001 - an optimisation must never cost a message
        logger.debug("text prefetch not started: %s", error)
    return await _original_handle_message(self, message)


def apply() -> None:
    """Install the cached validator and event lookup, the sensing payload and deadline, the
    text prefetch, the SQL tracker store's speed-ups, the quicker model load, TED's rule-first
    prediction, the direct TF calls and the kept connections (idempotent)."""
    sql_tracker.install()
    rasa_states.install()
    tf_load.install()
    tf_call.install()
    rule_first.install()
    keepalive.install()
    Event.resolve_by_type = staticmethod(_resolve_event_type)
    RemoteAction._validate_action_result = _validate_action_result
    RemoteAction._action_call_format = _sensing_call_format
    RemoteAction.run = _run_sensing_with_deadline
    MessageProcessor.handle_message = _handle_message_reading_text_first
    rasa.core.run.load_agent_on_start = _load_agent_then_freeze
    rasa.core.run.close_resources = _close_resources_and_prefetch
    ActionDefaultFallback.run = _fallback_keeping_emotion
