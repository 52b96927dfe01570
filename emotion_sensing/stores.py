"""Where a service keeps its sessions: the factory that picks the session store by URL.

Its own module so that neither store depends on the other: ``session`` defines the in-memory
store and the Session, ``redis_sessions`` builds on them, and this module knows both.
"""
from __future__ import annotations

from typing import Optional

from emotion_sensing.session import SessionStore


def open_store(url: str = "memory", max_sessions: int = 10_000, max_readings: int = 512,
               max_age_s: Optional[float] = None) -> SessionStore:
    """The session store named by ``url``: ``memory`` (this process only, the default) or
    ``redis://host:port/db`` (shared by every service worker pointed at the same Redis)."""
    if url in ("", "memory"):
        return SessionStore(max_sessions=max_sessions, max_readings=max_readings, max_age_s=max_age_s)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from emotion_sensing.redis_sessions import RedisSessionStore

        return RedisSessionStore(url, max_sessions=max_sessions, max_readings=max_readings, max_age_s=max_age_s)
    raise ValueError(f"unknown session store {url!r}: use 'memory' or a redis:// URL (EMOBOT_SESSION_STORE)")
