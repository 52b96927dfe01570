"""Faults on the real stack: a process killed, hung or stopped; the chat goes on and nothing stored is lost.

- the emotion service killed mid-conversation: turns go on sensed as unknown; after a restart
  sensing resumes;
- Rasa killed (SIGKILL) and restarted, on SQLite and on PostgreSQL: every event stored before
  the kill is there, in order, and the conversation continues from it;
- the action server hung (SIGSTOP) or gone: the assistant answers at once, with the emotion
  unknown rather than the previous turn's, and sensing resumes when it is back.
"""
from __future__ import annotations

import os
import signal
import uuid

import pytest
import requests
import sqlalchemy as sa

from emobot.chat import RasaRestClient
from emobot.stack import Stack
from emotion_sensing.replay import store_url
from tests.integration.conftest import RECOVERY_BUDGET_MS, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """This module kills the stack's processes: it gets a stack of its own (conftest.py: the
    recovery budget)."""
    yield from running_stack(tmp_path_factory.mktemp("stack"), time_budget_ms=RECOVERY_BUDGET_MS)


ANGRY = "I'm furious, my order never arrived and nobody answers"
SAD = "I'm so sad, the gift I ordered for my mum is broken"


def new_client(stack: Stack, prefix: str) -> RasaRestClient:
    return RasaRestClient(stack.settings.rasa_url, sender_id=f"{prefix}-{uuid.uuid4().hex[:8]}")


def stored_events(url: str, sender_id: str) -> list:
    """(id, type, timestamp) of every stored event of the conversation, in store order."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, type_name, timestamp FROM events WHERE sender_id = :s ORDER BY id"),
                {"s": sender_id}).fetchall()
    finally:
        engine.dispose()
    return [tuple(row) for row in rows]


def api_events(stack: Stack, sender_id: str) -> list:
    response = requests.get(f"{stack.settings.rasa_url}/conversations/{sender_id}/tracker",
                            params={"include_events": "ALL"}, timeout=30)
    response.raise_for_status()
    return [(e["event"], e["timestamp"]) for e in response.json()["events"]]


def test_the_emotion_service_killed_mid_conversation(stack):
    client = new_client(stack, "svc-kill")
    assert client.send(ANGRY) and client.slots()["user_emotion"] == "angry"
    stack.process("emotion service").kill()
    try:
        replies = client.send(SAD)
        slots = client.slots()
    finally:
        stack.restart_process("emotion service")
    assert replies, "the assistant must answer without the emotion service"
    assert slots["user_emotion"] == "unknown" and slots["emotion_valence"] is None
    assert slots["emotion_reading"]["sensing"].startswith("unavailable")
    client.send(SAD)
    assert client.slots()["user_emotion"] == "sad", "sensing did not resume after the restart"


def test_a_hung_then_missing_action_server_leaves_every_turn_answered(stack):
    client = new_client(stack, "actions-down")
    assert client.send(ANGRY) and client.slots()["user_emotion"] == "angry"
    actions = stack.process("action server")
    os.killpg(actions.popen.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        hung = requests.post(f"{stack.settings.rasa_url}/webhooks/rest/webhook",
                             json={"sender": client.sender_id, "message": "where is my order?"}, timeout=20)
    finally:
        os.killpg(actions.popen.pid, signal.SIGCONT)
    assert hung.status_code == 200 and hung.json(), "no answer while the action server hung"
    slots = client.slots()
    assert slots["user_emotion"] == "unknown", "a hung sensing action must not leave the last turn's emotion"
    assert "did not answer" in slots["emotion_reading"]["sensing"]

    actions.kill()
    try:
        replies = client.send(ANGRY)
        slots = client.slots()
    finally:
        stack.restart_process("action server")
    assert replies and slots["user_emotion"] == "unknown"
    assert "failed" in slots["emotion_reading"]["sensing"]
    client.send(ANGRY)
    slots = client.slots()
    assert slots["emotion_reading"]["sensing"] == "ok", "sensing did not resume with the action server"
    assert slots["user_emotion"] == "angry", slots["emotion_reading"]


def _kill_rasa_and_check_nothing_is_lost(stack: Stack, url: str) -> None:
    client = new_client(stack, "rasa-kill")
    for message in ("hi there", ANGRY, "where is my order?"):
        assert client.send(message)
    before_api = api_events(stack, client.sender_id)
    before = stored_events(url, client.sender_id)
    emotion_before = client.slots()["user_emotion"]
    assert len(before) >= 15 and [e[1] for e in before].count("user") == 3

    stack.process("rasa").kill()  # right after the last reply: no clean shutdown
    assert stored_events(url, client.sender_id) == before
    # TensorFlow's autograph files, which a SIGKILL leaves, are in the stack's folder, not /tmp's
    left = list(stack.process("rasa").tmp_dir.glob("__autograph_generated_file*"))
    assert left, f"no autograph file in {stack.process('rasa').tmp_dir}: Rasa wrote them elsewhere"
    stack.restart_process("rasa")
    assert not any(path.exists() for path in left), "the killed Rasa's temporary files outlived the restart"

    after_api = api_events(stack, client.sender_id)
    assert after_api[:len(before_api)] == before_api, "the restarted Rasa sees another history"
    assert client.slots()["user_emotion"] == emotion_before  # the state the last turn left
    assert client.send(SAD), "the conversation does not go on after the restart"
    reading = client.slots()["emotion_reading"]
    assert reading["sensing"] == "ok" and reading["text"]["label"] == "sad", reading
    after = stored_events(url, client.sender_id)
    assert after[:len(before)] == before, "events stored before the kill changed or moved"
    assert [e[1] for e in after[len(before):]].count("user") == 1


def test_rasa_killed_and_restarted_on_sqlite_loses_no_event(stack):
    _kill_rasa_and_check_nothing_is_lost(stack, store_url(stack.tracker_store_config(), stack.run_dir))


def test_rasa_killed_and_restarted_on_postgresql_loses_no_event(postgres_stack):
    stack, server = postgres_stack
    _kill_rasa_and_check_nothing_is_lost(stack, server.url)
