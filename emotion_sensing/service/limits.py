"""Per-session rate limits: a session that sends too fast gets 429, not a slower service.

Each session has token buckets: one for requests (every ``/v1/sessions/{id}/...`` request
but DELETE, and the stream's text messages), one for camera frames (REST and stream), and
one for seconds of streamed audio. A bucket holds ``BURST_S`` seconds' worth, so short
bursts pass. The buckets are kept for the most recently active sessions only (bounded).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from aiohttp import web

from emotion_sensing.config import Settings
from emotion_sensing.service.errors import ApiError
from emotion_sensing.session import valid_session_id

# A bucket holds this many seconds of its rate, so a short burst is not refused.
BURST_S = 2.0
# Streamed audio may arrive at most this many times faster than real time.
AUDIO_REALTIME_FACTOR = 4.0
REQUESTS, FRAMES, AUDIO = "requests", "frames", "audio"
_SETTING = {REQUESTS: "EMOBOT_SESSION_REQUESTS_PER_S", FRAMES: "EMOBOT_SESSION_FRAMES_PER_S"}
_UNIT = {REQUESTS: "requests", FRAMES: "frames", AUDIO: "seconds of audio"}


@dataclass
class _Bucket:
    tokens: float
    updated: float


class SessionLimits:
    """Token buckets per (session, kind); at most ``max_sessions`` sessions' buckets kept."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.rates = {REQUESTS: settings.session_requests_per_s, FRAMES: settings.session_frames_per_s,
                      AUDIO: AUDIO_REALTIME_FACTOR}
        self.max_sessions = max(1, settings.max_sessions)
        self.clock = clock
        self.refused: Dict[str, int] = {kind: 0 for kind in self.rates}
        self._buckets: OrderedDict[Tuple[str, str], _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, session_id: str, kind: str, cost: float = 1.0) -> bool:
        """Take ``cost`` from the session's ``kind`` bucket; False (and nothing taken) when it is short."""
        rate = self.rates[kind]
        if rate <= 0:  # 0 switches the limit off
            return True
        now = self.clock()
        key = (session_id, kind)
        capacity = max(rate * BURST_S, cost)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, now)
            while len(self._buckets) > 3 * self.max_sessions:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        if bucket.tokens < cost:
            self.refused[kind] += 1
            return False
        bucket.tokens -= cost
        return True

    def message(self, kind: str) -> str:
        rate = self.rates[kind]
        setting = f" ({_SETTING[kind]})" if kind in _SETTING else ""
        return f"this session sends more than {rate:g} {_UNIT[kind]} per second{setting}; slow down"

    def check(self, session_id: str, kind: str, cost: float = 1.0) -> None:
        """Raise a 429 ApiError when the session is over its ``kind`` limit."""
        if not self.allow(session_id, kind, cost):
            raise ApiError(429, "rate_limited", self.message(kind))

    def forget(self, session_id: str) -> None:
        for kind in self.rates:
            self._buckets.pop((session_id, kind), None)


LIMITS = web.AppKey("session_limits", SessionLimits)


def _kind(request: web.Request) -> Optional[str]:
    if request.method == "DELETE":
        return None  # forgetting is always allowed
    return FRAMES if request.path.endswith("/frames") else REQUESTS


@web.middleware
async def session_rate_limits(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> Any:
    """429 for a session's request beyond its rate; other routes pass untouched."""
    session_id = request.match_info.get("session_id")
    kind = _kind(request)
    if session_id and kind and valid_session_id(session_id) and request.path.startswith("/v1/sessions/"):
        request.app[LIMITS].check(session_id, kind)
    return await handler(request)


def setup(app: web.Application, settings: Settings) -> None:
    app[LIMITS] = SessionLimits(settings)
