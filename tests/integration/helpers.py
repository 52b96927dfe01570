"""Helpers for tests that talk to real processes on loopback."""
from __future__ import annotations

import json
import socket

import sqlalchemy as sa


def closed_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stored(url: str, sender_id: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(
                sa.text("SELECT type_name, action_name, data FROM events WHERE sender_id = :s ORDER BY id"),
                {"s": sender_id})]
    finally:
        engine.dispose()


def turns_of(events: list) -> list:
    """The stored events cut at each user message: [(text, [action names...]), ...]."""
    turns = []
    for type_name, action_name, data in events:
        if type_name == "user":
            turns.append((json.loads(data)["text"], []))
        elif type_name == "action" and turns:
            turns[-1][1].append(action_name)
    return turns
