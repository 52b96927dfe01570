"""The socket.io channel (the web widget's) delivers replies and keeps the session id."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import requests
import socketio

pytestmark = pytest.mark.integration


def stored_turn(stack, session_id: str, timeout: float = 15.0) -> dict:
    """The tracker once the turn is stored. socket.io sends the replies as the turn runs, before
    Rasa saves it; with several Rasa processes another one may answer the tracker request at once."""
    deadline = time.time() + timeout
    while True:
        tracker = requests.get(f"{stack.settings.rasa_url}/conversations/{session_id}/tracker", timeout=10).json()
        events = tracker.get("events") or []
        done = events and events[-1].get("event") == "action" and events[-1].get("name") == "action_listen"
        if (done and any(e["event"] == "user" for e in events)) or time.time() > deadline:
            return tracker
        time.sleep(0.2)


async def test_socketio_replies_reach_the_client_and_sensing_runs(stack):
    session_id = f"web-{uuid.uuid4().hex[:8]}"
    replies: asyncio.Queue = asyncio.Queue()
    confirmed: asyncio.Queue = asyncio.Queue()
    client = socketio.AsyncClient()
    client.on("bot_uttered", lambda data: replies.put_nowait(data))
    client.on("session_confirm", lambda data: confirmed.put_nowait(data))
    await client.connect(stack.settings.rasa_url, socketio_path="/socket.io", transports=["websocket"])
    try:
        await client.emit("session_request", {"session_id": session_id})
        assert await asyncio.wait_for(confirmed.get(), 10) == session_id
        await client.emit(
            "user_uttered",
            {"message": "I'm furious, my order never arrived and nobody answers", "session_id": session_id,
             "customData": {"source": "test"}},
        )
        reply = await asyncio.wait_for(replies.get(), 30)
    finally:
        await client.disconnect()
    assert reply["text"]
    tracker = stored_turn(stack, session_id)
    assert tracker["slots"]["user_emotion"] == "angry"
    user_events = [e for e in tracker["events"] if e["event"] == "user"]
    assert user_events[-1]["metadata"]["source"] == "test"
