"""Rasa's HTTP endpoints (the action server above all) over kept connections (installed in
Rasa's process by rasa_patches).

Rasa 3.6's ``EndpointConfig.request`` opens a new ``aiohttp.ClientSession`` for every request,
so every custom action call (the sensing action runs on every turn) set up a client session
and a TCP connection and tore both down again, in Rasa and in the action server. Measured on
one process (client and a loopback server, 500 calls): 1.84 ms of CPU a call with a session
each, 0.78 ms over a kept connection. Here ``EndpointConfig.session()`` hands out one session
per event loop and endpoint settings (headers, basic auth), which ``async with`` leaves open;
requests, their timeouts, headers, parameters and errors are Rasa's own.

Idle connections are closed after :data:`KEEPALIVE_S`, before the action server's Sanic
closes them (5 s), so a request never goes out on a connection the server is closing. A
server that restarts closes its connections, and the next request opens a new one.
``EMOBOT_KEEPALIVE=0`` turns it off.
"""
from __future__ import annotations

import asyncio
import atexit
from typing import Any, Dict, Tuple

from emotion_sensing.processes import switched_off

# Seconds an idle kept connection stays open (Sanic, the action server's, closes at 5 s).
KEEPALIVE_S = 2.0

_ORIGINAL = None
_sessions: Dict[Tuple[Any, ...], Any] = {}


def enabled() -> bool:
    return not switched_off("EMOBOT_KEEPALIVE")


class _Kept:
    """``async with`` a kept session: enters as the session, leaves it open."""

    def __init__(self, session) -> None:
        self.session = session

    async def __aenter__(self):
        return self.session

    async def __aexit__(self, *exc_info: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:  # used without ``async with``: the session itself
        return getattr(self.session, name)


def _session(self) -> Any:
    """Rasa's ``EndpointConfig.session``: the kept session for this loop and these settings."""
    import aiohttp
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _ORIGINAL(self)
    auth = (self.basic_auth.get("username"), self.basic_auth.get("password")) if self.basic_auth else None
    key = (loop, tuple(sorted((str(k), str(v)) for k, v in self.headers.items())), auth)
    session = _sessions.get(key)
    if session is None or session.closed:
        for old in [k for k, s in _sessions.items() if k[0].is_closed() or s.closed]:
            _close(_sessions.pop(old))
        session = aiohttp.ClientSession(
            headers=self.headers,
            auth=aiohttp.BasicAuth(*auth) if auth else None,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            # No cap on connections (aiohttp's default is 100): a session per request had none,
            # and a cap would queue action calls behind each other under load.
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S, limit=0),
        )
        _sessions[key] = session
    return _Kept(session)


def _close(session) -> None:
    """Close a session's connections without a running loop (its loop may be gone)."""
    connector = session.connector
    if connector is not None and not connector.closed:
        connector._close()


@atexit.register
def close_all() -> None:
    while _sessions:
        _close(_sessions.popitem()[1])


def install() -> None:
    """Patch ``EndpointConfig.session`` (idempotent; nothing when switched off)."""
    global _ORIGINAL
    from rasa.utils.endpoints import EndpointConfig

    if _ORIGINAL is not None or not enabled():
        return
    _ORIGINAL = EndpointConfig.session
    EndpointConfig.session = _session
