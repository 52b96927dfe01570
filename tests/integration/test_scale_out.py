"""Scale-out on existing engines, end to end: two Rasa servers on one PostgreSQL tracker store
and one Redis lock store, two emotion-service workers on one Redis session store.

- a conversation served by both Rasa servers in turn keeps every event, in order, and both
  servers see the same history;
- two messages of one conversation arriving at both servers at the same moment are handled
  one after the other (the lock store), neither turn lost nor interleaved with the other;
- readings posted to one service worker decide the emotion of a turn that Rasa senses
  through the other.
"""
from __future__ import annotations

import threading
import uuid
from dataclasses import replace

import pytest
import requests

from emobot.chat import RasaRestClient
from emobot.stack import Stack, free_port
from tests.integration import postgres, redis_server
from tests.integration.helpers import stored, turns_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    for reason in (postgres.unavailable_reason(), redis_server.unavailable_reason()):
        if reason:
            pytest.skip(reason)
    pg = postgres.LocalPostgres().start()
    redis = redis_server.LocalRedis().start()
    stacks = []
    try:
        root = tmp_path_factory.mktemp("cluster")
        with pytest.MonkeyPatch.context() as env:
            # Face and voice only, so the fused state is what the sensors posted (no text reading).
            env.setenv("EMOBOT_MODALITIES", "face,voice")
            first = Stack.on_free_ports(root / "a", tracker_store=pg.tracker_store(), lock_store=redis.lock_store())
            first.settings = replace(first.settings, session_store=redis.url(2))
            second_rasa = Stack(settings=replace(first.settings, rasa_port=free_port()), run_dir=root / "b",
                                components=("rasa",), tracker_store=pg.tracker_store(),
                                lock_store=redis.lock_store(), shared_actions_url=first.settings.actions_url)
            second_service = Stack(settings=replace(first.settings, service_port=free_port()), run_dir=root / "c",
                                   components=("service",))
            # Launched side by side, then waited for.
            for stack in (first, second_rasa, second_service):
                stacks.append(stack)
                stack.launch()
            for stack in stacks:
                stack.wait_ready(timeout=300)
        yield {"rasa": [first.settings.rasa_url, second_rasa.settings.rasa_url],
               "services": [first.settings.service_listen_url, second_service.settings.service_listen_url],
               "store": pg.url}
    finally:
        for stack in reversed(stacks):
            stack.stop()
        redis.stop()
        pg.stop()


def test_one_conversation_served_by_two_rasa_servers_in_turn(cluster):
    sender = f"alt-{uuid.uuid4().hex[:8]}"
    messages = ["hi there", "where is my order?", "I want a refund", "thanks", "how are you?", "bye"]
    for i, message in enumerate(messages):
        replies = RasaRestClient(cluster["rasa"][i % 2], sender).send(message)
        assert replies, f"no reply to {message!r} from Rasa #{i % 2 + 1}"
    turns = turns_of(stored(cluster["store"], sender))
    assert [text for text, _ in turns] == messages
    for text, actions in turns:
        assert actions and actions[-1] == "action_listen", (text, actions)
    trackers = [requests.get(f"{url}/conversations/{sender}/tracker", timeout=30).json()["events"]
                for url in cluster["rasa"]]
    assert trackers[0] == trackers[1], "the two servers see different histories"


def test_simultaneous_messages_to_both_servers_are_handled_one_after_the_other(cluster):
    for attempt in range(3):
        sender = f"race-{attempt}-{uuid.uuid4().hex[:8]}"
        RasaRestClient(cluster["rasa"][0], sender).send("hi there")
        barrier = threading.Barrier(2)
        answers = {}

        def send(index: int, text: str, sender=sender, barrier=barrier, answers=answers) -> None:
            barrier.wait()
            answers[text] = RasaRestClient(cluster["rasa"][index], sender).send(text)

        threads = [threading.Thread(target=send, args=(0, "where is my order?")),
                   threading.Thread(target=send, args=(1, "I want a refund"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert all(answers.get(t) for t in ("where is my order?", "I want a refund")), answers
        turns = turns_of(stored(cluster["store"], sender))
        assert [t for t, _ in turns][0] == "hi there"
        assert sorted(t for t, _ in turns[1:]) == ["I want a refund", "where is my order?"], turns
        for text, actions in turns:
            # Each turn complete before the next began: its actions end with action_listen
            # and hold it only once.
            assert actions[-1] == "action_listen" and actions.count("action_listen") == 1, (text, actions)


def test_readings_sent_to_one_service_worker_decide_a_turn_sensed_by_the_other(cluster):
    sender = f"workers-{uuid.uuid4().hex[:8]}"
    reading = {"modality": "face", "probs": {"angry": 0.9, "neutral": 0.1}, "confidence": 0.95}
    for _ in range(3):  # to the second worker; Rasa's action server asks the first
        response = requests.post(f"{cluster['services'][1]}/v1/sessions/{sender}/readings", json=reading, timeout=30)
        assert response.status_code == 200, response.text
    client = RasaRestClient(cluster["rasa"][0], sender)
    assert client.send("hi there")
    slots = client.slots()
    assert slots["user_emotion"] == "angry", slots["emotion_reading"]
    assert {c["modality"] for c in slots["emotion_reading"]["contributions"]} == {"face"}
    states = [requests.get(f"{url}/v1/sessions/{sender}", timeout=30).json() for url in cluster["services"]]
    assert states[0]["turns"] == states[1]["turns"] == 1
    assert states[0]["state"]["label"] == states[1]["state"]["label"] == "angry"
