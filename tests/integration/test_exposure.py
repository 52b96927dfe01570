"""What the stack exposes: loopback only by default; off loopback nothing without credentials.

- the three processes of a default stack listen on loopback addresses only (read from the
  kernel's socket table, not from our own settings);
- asked to listen off loopback without a service token, a socket.io JWT key and a Rasa API
  token, the stack refuses before starting anything and says what to set;
- a real Rasa on 0.0.0.0 refuses socket.io clients without a valid JWT, serves one with it,
  has no unauthenticated REST channel, and wants the token on its HTTP API.
"""
from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from dataclasses import replace
from pathlib import Path

import jwt
import pytest
import requests
import yaml

from emobot.stack import Stack, StackError

pytestmark = pytest.mark.integration


def listening(port: int) -> set:
    """Local addresses with a socket in LISTEN state on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # The kernel writes each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(ipaddress.ip_address(raw if width == 16 else raw[:4]))
    return found


def test_a_default_stack_listens_on_loopback_only(stack):
    s = stack.settings
    for name, port in (("rasa", s.rasa_port), ("action server", s.actions_port), ("emotion service", s.service_port)):
        addresses = listening(port)
        assert addresses, f"{name}: nothing listens on port {port}"
        assert all(a.is_loopback for a in addresses), f"{name} listens on {sorted(map(str, addresses))}"


def test_off_loopback_the_stack_refuses_without_credentials(tmp_path):
    stack = Stack.on_free_ports(tmp_path)
    stack.settings = replace(stack.settings, host="0.0.0.0", service_token=None, socketio_jwt_key=None, rasa_token=None)
    with pytest.raises(StackError) as refused:
        stack.start(timeout=30)
    message = str(refused.value)
    assert "refusing to listen on 0.0.0.0" in message
    for name in ("EMOBOT_SERVICE_TOKEN", "EMOBOT_SOCKETIO_JWT_KEY", "EMOBOT_RASA_TOKEN"):
        assert name in message
    assert not stack.processes or not any(p.alive() for p in stack.processes)


@pytest.fixture(scope="module")
def exposed_rasa(tmp_path_factory):
    """Rasa alone on 0.0.0.0 with the three credentials (its sensing action server is absent:
    the turn goes on with an unknown emotion)."""
    settings = replace(Stack.on_free_ports(tmp_path_factory.mktemp("exposed")).settings, host="0.0.0.0",
                       service_token="service-secret", socketio_jwt_key="jwt-secret-key", rasa_token="rasa-secret")
    stack = Stack(settings=settings, run_dir=tmp_path_factory.mktemp("exposed-run"), components=("rasa",),
                  tracker_db=tmp_path_factory.mktemp("exposed-db") / "tracker.db")
    stack.start(timeout=240)
    yield stack
    stack.stop()


async def _socketio_chat(url: str, token, text: str) -> list:
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    replies: list = []
    session = f"jwt-{uuid.uuid4().hex[:8]}"
    confirmed = asyncio.Event()
    client.on("session_confirm", lambda *_: confirmed.set())
    client.on("bot_uttered", lambda data: replies.append(data))
    try:
        await client.connect(url, transports=["websocket"], socketio_path="/socket.io",
                             auth={"token": token} if token else None, wait_timeout=20)
    except socketio.exceptions.ConnectionError:
        return ["refused"]
    try:
        await client.emit("session_request", {"session_id": session})
        await asyncio.wait_for(confirmed.wait(), 20)
        await client.emit("user_uttered", {"message": text, "session_id": session})
        deadline = time.time() + 60
        while not replies and time.time() < deadline:
            await asyncio.sleep(0.2)
    finally:
        await client.disconnect()
    return replies


def test_an_exposed_rasa_wants_a_jwt_on_socketio_and_a_token_on_its_api(exposed_rasa):
    s = exposed_rasa.settings
    local = f"http://127.0.0.1:{s.rasa_port}"
    assert listening(s.rasa_port) == {ipaddress.ip_address("0.0.0.0")}
    credentials = yaml.safe_load((exposed_rasa.run_dir / "credentials.yml").read_text())
    assert "rest" not in credentials
    assert asyncio.run(_socketio_chat(local, None, "hi there")) == ["refused"]
    forged = jwt.encode({"user": "mallory"}, "not-the-key", algorithm="HS256")
    assert asyncio.run(_socketio_chat(local, forged, "hi there")) == ["refused"]
    signed = jwt.encode({"user": "alice", "exp": int(time.time()) + 600}, "jwt-secret-key", algorithm="HS256")
    replies = asyncio.run(_socketio_chat(local, signed, "hi there"))
    assert replies and replies[0].get("text"), replies

    assert requests.post(f"{local}/webhooks/rest/webhook", json={"sender": "x", "message": "hi"},
                         timeout=30).status_code == 404
    assert requests.get(f"{local}/status", timeout=30).status_code == 401
    assert requests.get(f"{local}/status", params={"token": "rasa-secret"}, timeout=30).status_code == 200

