"""Several Rasa processes on one port (``EMOBOT_RASA_WORKERS``) behind emobot.front, on the
plugin's file lock store and the stack's SQLite tracker store: what ``emobot run`` starts to use
more than one core for the chat (README "Under load").

- both processes run and answer;
- socket.io clients that start with long-polling (rasa-webchat's way) keep their session on one
  process: every message is answered, over polling and after the upgrade to a websocket;
- many conversations at once are all answered, each turn stored complete and in order;
- two messages of one conversation at the same moment are handled one after the other (the
  lock store), neither lost nor interleaved.
"""
from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import replace

import pytest
import requests
import socketio

from emobot.chat import RasaRestClient
from emobot.load import child_pids
from emobot.stack import Stack
from tests.integration.helpers import stored, turns_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    stack = Stack.on_free_ports(tmp_path_factory.mktemp("workers"))
    stack.settings = replace(stack.settings, modalities=("text",), rasa_workers=2)
    stack.start(timeout=300)
    yield stack
    stack.stop()


def store_url(stack: Stack) -> str:
    return f"sqlite:///{stack.tracker_db}"


def test_two_rasa_processes_serve_the_port_on_the_file_lock_store(workers):
    rasa = next(p for p in workers.processes if p.name == "rasa")
    assert len(child_pids(rasa.popen.pid)) == 2, rasa.log_tail()  # under emobot.front
    assert workers.endpoints()["lock_store"]["type"] == "emobot.lock_store.FileLockStore"
    assert RasaRestClient(workers.settings.rasa_url, "hello-workers").send("hi there")


def test_many_conversations_at_once_are_all_answered_and_stored_in_order(workers):
    messages = ["hi there", "where is my order?", "I want a refund", "thanks"]
    senders = [f"many-{n}-{uuid.uuid4().hex[:6]}" for n in range(8)]
    answered = {}

    def talk(sender: str) -> None:
        client = RasaRestClient(workers.settings.rasa_url, sender, timeout=120)
        answered[sender] = [bool(client.send(message)) for message in messages]

    threads = [threading.Thread(target=talk, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert answered == {s: [True] * len(messages) for s in senders}
    for sender in senders:
        turns = turns_of(stored(store_url(workers), sender))
        assert [text for text, _ in turns] == messages, sender
        assert all(actions and actions[-1] == "action_listen" for _, actions in turns), turns


def test_simultaneous_messages_of_one_conversation_are_handled_one_after_the_other(workers):
    for attempt in range(3):
        sender = f"race-{attempt}-{uuid.uuid4().hex[:8]}"
        RasaRestClient(workers.settings.rasa_url, sender).send("hi there")
        barrier = threading.Barrier(2)
        answers = {}

        def send(text: str, sender=sender, barrier=barrier, answers=answers) -> None:
            barrier.wait()
            answers[text] = RasaRestClient(workers.settings.rasa_url, sender, timeout=120).send(text)

        threads = [threading.Thread(target=send, args=(t,)) for t in ("where is my order?", "I want a refund")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert all(answers.get(t) for t in ("where is my order?", "I want a refund")), answers
        turns = turns_of(stored(store_url(workers), sender))
        assert [t for t, _ in turns][0] == "hi there"
        assert sorted(t for t, _ in turns[1:]) == ["I want a refund", "where is my order?"], turns
        for text, actions in turns:
            assert actions[-1] == "action_listen" and actions.count("action_listen") == 1, (text, actions)


async def _chat_over_socketio(url: str, transports, messages) -> list:
    """One socket.io client: a session, then each message and the reply it gets."""
    session_id = f"sticky-{uuid.uuid4().hex[:8]}"
    replies: asyncio.Queue = asyncio.Queue()
    confirmed: asyncio.Queue = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False)
    client.on("bot_uttered", lambda data: replies.put_nowait(data))
    client.on("session_confirm", lambda data: confirmed.put_nowait(data))
    await client.connect(url, socketio_path="/socket.io", transports=transports)
    answered = []
    try:
        await client.emit("session_request", {"session_id": session_id})
        assert await asyncio.wait_for(confirmed.get(), 20) == session_id
        for message in messages:
            await client.emit("user_uttered", {"message": message, "session_id": session_id})
            reply = await asyncio.wait_for(replies.get(), 60)
            answered.append(bool(reply.get("text")))
            while not replies.empty():  # a turn may send several messages
                replies.get_nowait()
    finally:
        await client.disconnect()
    return answered


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"], ["websocket"]],
                         ids=["polling", "polling-then-websocket", "websocket"])
async def test_socketio_clients_keep_their_session_on_one_process(workers, transports):
    """Without the front's sticky routing a polling client's requests reach both processes and
    the other one answers 400 (CI caught rasa-webchat's page never getting a reply)."""
    messages = ["hi there", "where is my order?", "thanks"]
    results = await asyncio.gather(*(_chat_over_socketio(workers.settings.rasa_url, transports, messages)
                                     for _ in range(4)))
    assert results == [[True] * len(messages)] * 4


def test_every_request_of_a_polling_session_reaches_its_process(workers):
    """Each request of an engine.io long-polling session on a new connection (as a browser may
    open them), from several sessions at once: all reach the process holding the session."""
    url = f"{workers.settings.rasa_url}/socket.io/"
    closing = {"Connection": "close"}

    def session(codes: list) -> None:
        opened = requests.get(url, params={"EIO": "4", "transport": "polling"}, headers=closing, timeout=20)
        sid = opened.text[opened.text.index("{"):].split('"sid":"', 1)[1].split('"', 1)[0]
        for _ in range(15):  # a pong: accepted at any time by the session's process, 400 elsewhere
            answer = requests.post(url, params={"EIO": "4", "transport": "polling", "sid": sid}, data="3",
                                   headers=closing, timeout=20)
            codes.append(answer.status_code)

    codes: list = []
    threads = [threading.Thread(target=session, args=(codes,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(codes) == 90 and set(codes) == {200}, sorted(set(codes))


def test_a_stopped_stack_leaves_no_connection_open_in_rasa(workers):
    """Last in this module: it stops the stack. Each Rasa process posted texts to the emotion
    service (the prefetch); stopping closes those connections, so asyncio has no "Unclosed client
    session" to log from either process (it had, from both, at every shutdown)."""
    for sender in (f"stop-{n}-{uuid.uuid4().hex[:6]}" for n in range(4)):
        assert RasaRestClient(workers.settings.rasa_url, sender).send("where is my order?")
    rasa = next(p for p in workers.processes if p.name == "rasa")
    workers.stop()
    log = rasa.log_path.read_text(errors="replace")
    assert "Unclosed client session" not in log and "Unclosed connector" not in log, rasa.log_tail(60)
