"""Text readings started before their turn asks for them.

Rasa posts a message's text here the moment the message arrives (emobot/rasa_patches.py), so
the text model runs while Rasa's own NLU and policies do; when the sensing action then asks
for the turn, the reading is already done (or nearly) instead of starting then. A reading
nobody asks for is dropped after :data:`TTL_S`; at most :data:`MAX_PENDING` wait at once. A post
that arrives after its turn has read the text itself (a loaded machine) is dropped rather than
read a second time.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Awaitable, Callable, Optional, Tuple

from emotion_sensing.reading import Reading

TTL_S = 60.0
MAX_PENDING = 1000


class PendingTexts:
    """(session id, text) -> the task computing its reading."""

    def __init__(self, ttl_s: float = TTL_S, max_pending: int = MAX_PENDING) -> None:
        self.ttl_s = ttl_s
        self.max_pending = max_pending
        self._tasks: OrderedDict[Tuple[str, str], Tuple[float, asyncio.Task]] = OrderedDict()
        self._late: OrderedDict[Tuple[str, str], float] = OrderedDict()  # turns that read without a post
        self.started = 0
        self.used = 0
        self.late = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, session_id: str, text: str, read: Callable[[str], Awaitable[Reading]]) -> None:
        """Begin reading ``text`` for ``session_id`` (a repeat of a waiting one is a no-op)."""
        self._expire(time.monotonic())
        key = (session_id, text)
        if key in self._tasks:
            return
        if self._late.pop(key, None) is not None:  # its turn came first and read the text itself
            self.late += 1
            return
        task = asyncio.get_running_loop().create_task(read(text))
        task.add_done_callback(_consume_exception)
        self._tasks[key] = (time.monotonic(), task)
        self.started += 1
        while len(self._tasks) > self.max_pending:
            _, (_, oldest) = self._tasks.popitem(last=False)
            oldest.cancel()

    async def take(self, session_id: str, text: str) -> Optional[Reading]:
        """The reading started for exactly this text, or None (then the caller reads it)."""
        entry = self._tasks.pop((session_id, text), None)
        if entry is None:
            return None
        try:
            reading = await entry[1]
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the caller reads it again
            return None
        self.used += 1
        return reading

    async def collect(self, session_id: str, text: str, read: Callable[[str], Awaitable[Reading]]) -> Reading:
        """The turn's reading: the one started for it, else read now (and its post, should it
        still come, is then dropped)."""
        reading = await self.take(session_id, text)
        if reading is not None:
            return reading
        self._late[(session_id, text)] = time.monotonic()
        while len(self._late) > self.max_pending:
            self._late.popitem(last=False)
        return await read(text)

    def _expire(self, now: float) -> None:
        while self._late and now - next(iter(self._late.values())) > self.ttl_s:
            self._late.popitem(last=False)
        while self._tasks:
            created, task = next(iter(self._tasks.values()))
            if now - created <= self.ttl_s:
                break
            self._tasks.popitem(last=False)
            task.cancel()

    def counts(self) -> dict:
        return {"pending": len(self._tasks), "prefetched": self.started, "prefetch_used": self.used,
                "prefetch_late": self.late}


def _consume_exception(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so an unused failed reading is not logged as "never retrieved"
