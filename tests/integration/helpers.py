"""Helpers for tests that talk to real processes on loopback."""
from __future__ import annotations

import socket


def closed_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
