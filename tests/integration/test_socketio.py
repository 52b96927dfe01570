"""The socket.io channel (the web widget's) delivers replies and keeps the session id."""
from __future__ import annotations

import asyncio
import uuid

import pytest
import requests
import socketio

pytestmark = pytest.mark.integration


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
    tracker = requests.get(f"{stack.settings.rasa_url}/conversations/{session_id}/tracker", timeout=10).json()
    assert tracker["slots"]["user_emotion"] == "angry"
    user_events = [e for e in tracker["events"] if e["event"] == "user"]
    assert user_events[-1]["metadata"]["source"] == "test"
