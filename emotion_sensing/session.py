"""Per-conversation state: a bounded buffer of recent readings and the last fused state.

Only derived readings are kept, never raw frames or audio. The store is bounded in
sessions (least recently used are evicted) and in readings per session, by count and, when
``max_age_s`` is set (the service sets fusion's window), by age: a reading fusion would
ignore is not kept, so a session streaming for hours holds as much as one streaming for a
minute.
"""
from __future__ import annotations

import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, Iterator, List, Optional

from emotion_sensing.fusion import FusedState, FusionConfig, fuse
from emotion_sensing.reading import Reading

SESSION_ID = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,128}$")


def valid_session_id(session_id: str) -> bool:
    """Session ids are Rasa sender ids: 1-128 characters of a safe, printable set."""
    return bool(SESSION_ID.match(session_id))


@dataclass
class Session:
    """One conversation's sensing state."""

    session_id: str
    max_readings: int = 512
    max_age_s: Optional[float] = None
    created: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    turns: int = 0
    readings: Deque[Reading] = field(init=False)
    last_state: Optional[FusedState] = None
    # The fused state at the last turn: fusion's prior for the next (the mood carries across turns).
    mood: Optional[FusedState] = None
    # Per-modality derived state (e.g. running feature statistics); never raw frames or audio.
    extras: Dict[str, Any] = field(default_factory=dict)
    # When the person last clicked (a button's payload): text readings up to then are left out of
    # every fusion, the turn's and the live one between turns, until they write again. Their earlier
    # words are the mood's by then; read again, they pulled the state toward them.
    words_before: float = 0.0

    def __post_init__(self) -> None:
        self.readings = deque(maxlen=self.max_readings)

    def add(self, reading: Reading) -> None:
        self.readings.append(reading)
        self.last_seen = time.time()
        self.drop_old(self.last_seen)

    def drop_old(self, now: float) -> None:
        """Forget readings older than ``max_age_s`` (oldest first)."""
        if self.max_age_s is None:
            return
        limit = now - self.max_age_s
        while self.readings and self.readings[0].timestamp < limit:
            self.readings.popleft()

    def fuse(self, config: FusionConfig, now: Optional[float] = None) -> FusedState:
        """The fused state of the readings in the window and the mood (less the words before a click)."""
        readings = self.readings
        if self.words_before:
            readings = [r for r in readings if r.modality != "text" or r.timestamp > self.words_before]
        self.last_state = fuse(readings, now=now, config=config, mood=self.mood)
        return self.last_state

    def end_turn(self, state: FusedState) -> None:
        """A turn was fused into ``state``: it becomes the mood the next turn starts from."""
        if state.known:
            self.mood = state

    def counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for reading in self.readings:
            counts[reading.modality] = counts.get(reading.modality, 0) + 1
        return counts


class SessionStore:
    """In-memory sessions, LRU-bounded; the interface a shared backend will implement."""

    def __init__(self, max_sessions: int = 10_000, max_readings: int = 512,
                 max_age_s: Optional[float] = None) -> None:
        self.max_sessions = max_sessions
        self.max_readings = max_readings
        self.max_age_s = max_age_s
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._sessions))

    def get(self, session_id: str) -> Optional[Session]:
        session = self._sessions.get(session_id)
        if session is not None:
            self._sessions.move_to_end(session_id)
        return session

    def get_or_create(self, session_id: str) -> Session:
        session = self.get(session_id)
        if session is None:
            session = Session(session_id, max_readings=self.max_readings, max_age_s=self.max_age_s)
            self._sessions[session_id] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return session

    def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def recent(self, session_id: str, limit: int = 50) -> List[Reading]:
        session = self._sessions.get(session_id)
        return list(session.readings)[-limit:] if session else []
