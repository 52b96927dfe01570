"""Sessions in Redis, so several emotion-service workers share them (EMOBOT_SESSION_STORE=redis://...).

What is shared: each session's readings (JSON, full precision), its turn count, its mood (the
fused state at its last turn), when the person last clicked (``words_before``), and when it was
created and last seen. What stays in the worker: ``Session.extras`` (a face tracker, a
voice speaker's running statistics, a stream's voice-activity segmenter) — derived caches
that rebuild from the next frames or utterances, and the reason a sticky load balancer
(one conversation's stream to one worker) is still the better layout.

Keys, under ``prefix`` (default ``emobot``): ``{prefix}:sessions`` a sorted set of session ids
by last activity (for the LRU bound and ``len``), ``{prefix}:session:{id}`` a hash
(``created``, ``last_seen``, ``turns``, ``mood``, ``words_before``), ``{prefix}:readings:{id}`` a
list of readings, newest last, trimmed to ``max_readings``. Idle sessions expire after ``ttl_s``.
"""
from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from typing import Any, Iterator, List, Optional

import redis

from emotion_sensing.fusion import FusedState, FusionConfig
from emotion_sensing.labels import LABELS
from emotion_sensing.reading import Reading
from emotion_sensing.session import Session, SessionStore


def dump_reading(reading: Reading) -> str:
    """A reading as JSON that :func:`load_reading` turns back into an equal Reading."""
    data = reading.to_dict()
    data.update(probs=list(reading.probs), confidence=reading.confidence,
                valence=float(reading.valence), arousal=float(reading.arousal))
    return json.dumps(data, default=str)


def load_reading(text: Any) -> Reading:
    return Reading.from_dict(json.loads(text))


def dump_mood(state: FusedState) -> str:
    """What fusion needs of a session's mood (label, probabilities, when), as JSON."""
    return json.dumps({"label": state.label, "probs": list(state.probs), "confidence": state.confidence,
                       "valence": state.valence, "arousal": state.arousal, "timestamp": state.timestamp})


def load_mood(text: Any) -> Optional[FusedState]:
    try:
        data = json.loads(text)
        probs = tuple(float(p) for p in data["probs"])
        if len(probs) != len(LABELS):
            return None
        return FusedState(str(data["label"]), probs, float(data["confidence"]), float(data["valence"]),
                          float(data["arousal"]), (), float(data["timestamp"]))
    except (ValueError, KeyError, TypeError):
        return None  # a mood written by another version: start the next turn without one


class SharedSession(Session):
    """A Session whose readings and turns are written through to Redis and re-read before fusing."""

    def __setattr__(self, name: str, value: Any) -> None:
        store: Optional[RedisSessionStore] = self.__dict__.get("_store")
        if name == "turns" and store is not None:
            # `session.turns += 1` from any worker: add the difference atomically.
            value = store._add_turns(self.session_id, int(value) - self.turns)
        elif name == "mood" and store is not None and value is not None:
            store._set_mood(self.session_id, value)
        elif name == "words_before" and store is not None:
            store.redis.hset(store._meta(self.session_id), "words_before", float(value))
        object.__setattr__(self, name, value)

    def add(self, reading: Reading) -> None:
        super().add(reading)
        self.__dict__["_store"]._push(self.session_id, reading)

    def fuse(self, config: FusionConfig, now: Optional[float] = None) -> FusedState:
        self.__dict__["_store"]._refresh(self)
        return super().fuse(config, now=now)


class RedisSessionStore(SessionStore):
    """The SessionStore interface over Redis; ``extras`` are cached per worker (see module doc)."""

    def __init__(self, url: str, max_sessions: int = 10_000, max_readings: int = 512,
                 prefix: str = "emobot", ttl_s: float = 24 * 3600, max_age_s: Optional[float] = None) -> None:
        super().__init__(max_sessions=max_sessions, max_readings=max_readings, max_age_s=max_age_s)
        self.url = url
        self.redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.prefix = prefix
        self.ttl_s = int(ttl_s)
        self._local: OrderedDict[str, SharedSession] = OrderedDict()

    # keys
    def _index(self) -> str:
        return f"{self.prefix}:sessions"

    def _meta(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def _readings(self, session_id: str) -> str:
        return f"{self.prefix}:readings:{session_id}"

    # the SessionStore interface
    def __len__(self) -> int:
        self._expire_idle()
        return int(self.redis.zcard(self._index()))

    def __iter__(self) -> Iterator[str]:
        return iter([m.decode() for m in self.redis.zrange(self._index(), 0, -1)])

    def get(self, session_id: str) -> Optional[Session]:
        pipe = self.redis.pipeline()
        pipe.hgetall(self._meta(session_id))
        pipe.lrange(self._readings(session_id), 0, -1)
        meta, raw = pipe.execute()
        if not meta:
            self._local.pop(session_id, None)
            return None
        session = self._local.get(session_id)
        if session is None:
            session = SharedSession(session_id, max_readings=self.max_readings, max_age_s=self.max_age_s)
            session.__dict__["_store"] = self
            self._local[session_id] = session
            while len(self._local) > self.max_sessions:
                self._local.popitem(last=False)
        else:
            self._local.move_to_end(session_id)
        self._load(session, meta, raw)
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.zadd(self._index(), {session_id: now})
        pipe.hset(self._meta(session_id), "last_seen", now)
        self._touch(pipe, session_id)
        pipe.execute()
        return session

    def get_or_create(self, session_id: str) -> Session:
        session = self.get(session_id)
        if session is not None:
            return session
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.hsetnx(self._meta(session_id), "created", now)
        pipe.hsetnx(self._meta(session_id), "turns", 0)
        pipe.zadd(self._index(), {session_id: now})
        self._touch(pipe, session_id)
        pipe.execute()
        self._evict()
        return self.get(session_id) or self._orphan(session_id)

    def delete(self, session_id: str) -> bool:
        self._local.pop(session_id, None)
        pipe = self.redis.pipeline()
        pipe.delete(self._meta(session_id), self._readings(session_id))
        pipe.zrem(self._index(), session_id)
        deleted, _ = pipe.execute()
        return bool(deleted)

    def recent(self, session_id: str, limit: int = 50) -> List[Reading]:
        return [load_reading(r) for r in self.redis.lrange(self._readings(session_id), -limit, -1)]

    def close(self) -> None:
        self.redis.close()

    # write-through from SharedSession
    def _push(self, session_id: str, reading: Reading) -> None:
        pipe = self.redis.pipeline()
        pipe.rpush(self._readings(session_id), dump_reading(reading))
        pipe.ltrim(self._readings(session_id), -self.max_readings, -1)
        pipe.hset(self._meta(session_id), "last_seen", time.time())
        self._touch(pipe, session_id)
        pipe.execute()

    def _add_turns(self, session_id: str, delta: int) -> int:
        return int(self.redis.hincrby(self._meta(session_id), "turns", delta))

    def _set_mood(self, session_id: str, state: FusedState) -> None:
        self.redis.hset(self._meta(session_id), "mood", dump_mood(state))

    def _refresh(self, session: SharedSession) -> None:
        pipe = self.redis.pipeline()
        pipe.hgetall(self._meta(session.session_id))
        pipe.lrange(self._readings(session.session_id), 0, -1)
        meta, raw = pipe.execute()
        if meta:
            self._load(session, meta, raw)
        else:  # forgotten by another worker: nothing to fuse
            session.readings.clear()

    # helpers
    def _load(self, session: SharedSession, meta: dict, raw: list) -> None:
        fields = {k.decode(): v.decode() for k, v in meta.items()}
        session.readings = deque((load_reading(r) for r in raw), maxlen=self.max_readings)
        session.drop_old(time.time())
        object.__setattr__(session, "turns", int(fields.get("turns", 0)))
        session.created = float(fields.get("created", session.created))
        session.last_seen = float(fields.get("last_seen", session.last_seen))
        object.__setattr__(session, "mood", load_mood(fields["mood"]) if "mood" in fields else None)
        object.__setattr__(session, "words_before", float(fields.get("words_before", 0.0)))

    def _touch(self, pipe: Any, session_id: str) -> None:
        pipe.expire(self._meta(session_id), self.ttl_s)
        pipe.expire(self._readings(session_id), self.ttl_s)

    def _expire_idle(self) -> None:
        self.redis.zremrangebyscore(self._index(), "-inf", time.time() - self.ttl_s)

    def _evict(self) -> None:
        """Forget the least recently active sessions beyond ``max_sessions``."""
        excess = int(self.redis.zcard(self._index())) - self.max_sessions
        if excess <= 0:
            return
        for member, _ in self.redis.zpopmin(self._index(), excess):
            session_id = member.decode()
            self.redis.delete(self._meta(session_id), self._readings(session_id))
            self._local.pop(session_id, None)

    def _orphan(self, session_id: str) -> Session:
        # Evicted the moment it was made (max_sessions 0 or a race): a session that is not kept.
        return Session(session_id, max_readings=self.max_readings, max_age_s=self.max_age_s)
