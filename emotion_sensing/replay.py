"""Replay a conversation from the tracker store with each user turn's emotion annotations.

Reads Rasa's SQL tracker store (``events`` table) directly with SQLAlchemy, so it needs
no running Rasa and works on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import sqlalchemy as sa

from emotion_sensing.slots import (
    AROUSAL,
    CONFIDENCE,
    READING,
    SENSE_ACTION,
    USER_EMOTION,
    VALENCE,
)


class ReplayError(Exception):
    """The conversation cannot be replayed; the message says why."""


class EmptyStore(ReplayError):
    """The tracker store holds no conversation yet (no database file, or no events table)."""


class UnknownConversation(ReplayError):
    """The store has no events for this sender id."""


def store_url(tracker_store: Dict[str, Any], base_dir: Path) -> str:
    """SQLAlchemy URL of a Rasa SQL tracker store configuration (endpoints.yml)."""
    if (tracker_store.get("type") or "").lower() != "sql":
        raise ReplayError(
            f"replay reads the SQL tracker store; endpoints.yml has type {tracker_store.get('type')!r}"
        )
    dialect = tracker_store.get("dialect", "sqlite")
    db = tracker_store.get("db", "rasa.db")
    if dialect == "sqlite":
        path = Path(db)
        if not path.is_absolute():
            path = base_dir / path
        return f"sqlite:///{path}"
    url = sa.engine.URL.create(
        drivername=dialect if dialect != "postgresql" else "postgresql+psycopg2",
        username=tracker_store.get("username"),
        password=tracker_store.get("password"),
        host=tracker_store.get("url") or "localhost",
        port=tracker_store.get("port"),
        database=db,
    )
    return url.render_as_string(hide_password=False)


@dataclass
class Turn:
    """A user message, the emotion sensed for it, and the bot's replies."""

    text: str
    timestamp: float
    intent: Optional[str]
    emotion: Dict[str, Any] = field(default_factory=dict)
    replies: List[Dict[str, Any]] = field(default_factory=list)
    # The assistant's other slots set at this turn (a rating, a form's answers): name -> value.
    slots: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "text": self.text,
            "timestamp": self.timestamp,
            "intent": self.intent,
            "emotion": self.emotion,
            "replies": self.replies,
            "slots": self.slots,
        }

    def slots_line(self, width: int = 60) -> str:
        """``rating = 4, requested_slot = email``; long values cut to ``width`` characters."""
        def shown(value: Any) -> str:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            return text if len(text) <= width else text[:width - 1] + "…"

        return ", ".join(f"{name} = {shown(value)}" for name, value in self.slots.items())


URL_HELP = "expected sqlite:///path/to/tracker.db or postgresql://user:password@host:port/database"


def _shown(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


class TrackerReader:
    """Read-only access to the events of a SQL tracker store."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
            raise EmptyStore(f"tracker store {url[len('sqlite:///'):]} does not exist: no conversation yet")
        try:
            self._engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
            raise ReplayError(f"cannot use tracker store URL {_shown(url)!r} ({error}); {URL_HELP}") from None

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A connection; a store that cannot be reached or read becomes a ReplayError."""
        try:
            with self._engine.connect() as connection:
                yield connection
        except sa.exc.DBAPIError as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise ReplayError(f"cannot read the tracker store at {_shown(self.url)}: {reason}") from None

    def _events_table(self, connection) -> bool:
        return sa.inspect(connection).has_table("events")

    def conversations(self) -> List[Dict[str, Any]]:
        """Every sender id with its event count and last activity, newest first."""
        with self._connection() as connection:
            if not self._events_table(connection):
                return []
            rows = connection.execute(
                sa.text(
                    "SELECT sender_id, COUNT(*), MIN(timestamp), MAX(timestamp), "
                    "SUM(CASE WHEN type_name = 'user' THEN 1 ELSE 0 END) "
                    "FROM events GROUP BY sender_id ORDER BY MAX(timestamp) DESC"
                )
            ).fetchall()
        return [
            {"sender_id": r[0], "events": r[1], "started": r[2], "last": r[3], "user_turns": int(r[4] or 0)}
            for r in rows
        ]

    def events(self, sender_id: str) -> List[Dict[str, Any]]:
        """The sender's events in order; ReplayError if there are none."""
        with self._connection() as connection:
            if not self._events_table(connection):
                raise EmptyStore("the tracker store is empty: no conversation has been stored yet")
            rows = connection.execute(
                sa.text("SELECT id, type_name, timestamp, data FROM events WHERE sender_id = :s ORDER BY id"),
                {"s": sender_id},
            ).fetchall()
        if not rows:
            raise UnknownConversation(f"no conversation with sender id {sender_id!r} (see `emobot replay --list`)")
        return [_event(row_id, type_name, timestamp, data) for row_id, type_name, timestamp, data in rows]


    def iter_conversations(self, since: Optional[float] = None, until: Optional[float] = None,
                           batch: int = 2000) -> Iterator[Tuple[str, List[Dict[str, Any]]]]:
        """Every conversation as (sender id, its events in order), one at a time, read with a
        server-side cursor: memory holds one conversation, however large the store. Events
        outside [since, until] (Unix times) are left out. Nothing if the store is empty."""
        where, params = [], {}
        if since is not None:
            where.append("timestamp >= :since")
            params["since"] = since
        if until is not None:
            where.append("timestamp <= :until")
            params["until"] = until
        query = ("SELECT sender_id, id, type_name, timestamp, data FROM events"
                 + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY sender_id, id")
        with self._connection() as connection:
            if not self._events_table(connection):
                return
            result = connection.execution_options(stream_results=True, yield_per=batch).execute(sa.text(query), params)
            sender, events = None, []
            for rows in iter(lambda: result.fetchmany(batch), []):
                for sender_id, row_id, type_name, timestamp, data in rows:
                    if sender_id != sender:
                        if events:
                            yield sender, events
                        sender, events = sender_id, []
                    events.append(_event(row_id, type_name, timestamp, data))
            if events:
                yield sender, events


def _event(row_id: int, type_name: str, timestamp: float, data: Optional[str]) -> Dict[str, Any]:
    """One stored event as a dict; one that cannot be parsed says so in ``corrupt``."""
    try:
        event = json.loads(data) if data else {}
        if not isinstance(event, dict):
            raise ValueError("not an object")
    except ValueError as error:
        event = {"corrupt": f"event {row_id} could not be read ({error})"}
    event.setdefault("event", type_name)
    event.setdefault("_row", row_id)
    event.setdefault("timestamp", timestamp)
    return event


EMOTION_KEYS = {USER_EMOTION: "label", CONFIDENCE: "confidence", VALENCE: "valence",
                AROUSAL: "arousal", READING: "reading"}


def _emotion_value(key: str, value: Any) -> Any:
    """A stored emotion slot value checked for what replay shows; ValueError if it is unusable."""
    if value is None:
        return None
    if key == "label":
        if not isinstance(value, str):
            raise ValueError(f"emotion label {value!r} is not a string")
        return value
    if key == "reading":
        if not isinstance(value, dict):
            raise ValueError("emotion reading is not an object")
        contributions = value.get("contributions") or []
        if not isinstance(contributions, list) or not all(
            isinstance(c, dict) and isinstance(c.get("modality"), str) and isinstance(c.get("label"), str)
            and isinstance(c.get("share"), (int, float)) for c in contributions
        ):
            raise ValueError("emotion reading has malformed contributions")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} {value!r} is not a number")
    return float(value)


def _apply(event: Dict[str, Any], turns: List[Turn]) -> None:
    """Add one event to the turns; ValueError/TypeError/KeyError if it is malformed."""
    kind = event.get("event")
    current = turns[-1] if turns else None
    if kind == "user":
        text = event.get("text")
        if text is not None and not isinstance(text, str):
            raise ValueError("user text is not a string")
        parse_data = event.get("parse_data") or {}
        intent = (parse_data.get("intent") or {}).get("name") if isinstance(parse_data, dict) else None
        turns.append(Turn(text=text or "", timestamp=float(event.get("timestamp") or 0.0), intent=intent))
    elif current is None:
        return
    elif kind == "slot" and event.get("name") in EMOTION_KEYS:
        key = EMOTION_KEYS[event["name"]]
        current.emotion[key] = _emotion_value(key, event.get("value"))
    elif kind == "slot" and isinstance(event.get("name"), str):
        current.slots[event["name"]] = event.get("value")
    elif kind == "bot":
        metadata = event.get("metadata") or {}
        current.replies.append({"text": str(event.get("text") or ""), "action": metadata.get("utter_action")})
    elif kind == "action" and event.get("name") not in (None, "action_listen", "action_extract_slots", SENSE_ACTION):
        current.replies.append({"text": None, "action": event.get("name"), "policy": event.get("policy")})


def turns_from_events(events: List[Dict[str, Any]]) -> List[Turn]:
    """Group events into turns: each user message with the slots and replies that follow it.

    An event that cannot be read is reported in its turn as a warning; the rest replays."""
    turns: List[Turn] = []
    for event in events:
        problem = event.get("corrupt")
        if problem is None:
            try:
                _apply(event, turns)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                problem = f"event {event.get('_row', '?')} ({event.get('event')}) could not be read ({error})"
        if problem and turns:
            turns[-1].replies.append({"text": None, "action": None, "warning": problem})
    # A reply's policy is on the action event before its bot event; merge them.
    for turn in turns:
        merged: List[Dict[str, Any]] = []
        for reply in turn.replies:
            previous = merged[-1] if merged else None
            if (reply["text"] is not None and previous and previous["text"] is None and "warning" not in previous
                    and previous["action"] == reply["action"]):
                merged[-1] = {**merged[-1], "text": reply["text"]}
            else:
                merged.append(reply)
        turn.replies = merged
    return turns


def replay(sender_id: str, url: str) -> List[Turn]:
    """The turns of one conversation."""
    return turns_from_events(TrackerReader(url).events(sender_id))


def format_turns(sender_id: str, turns: List[Turn]) -> str:
    """The terminal transcript."""
    lines = [f"conversation {sender_id}: {len(turns)} user turns"]
    for number, turn in enumerate(turns, 1):
        emotion = turn.emotion
        label = emotion.get("label") or "not sensed"
        summary = f"{label}"
        if emotion.get("confidence") is not None:
            summary += f" {emotion['confidence']:.2f}"
        if emotion.get("valence") is not None:
            summary += f", valence {emotion['valence']:+.2f}"
        reading = emotion.get("reading") or {}
        parts = [
            f"{c['modality']} {c['label']} ({c['share'] * 100:.0f}%)"
            for c in reading.get("contributions", [])
        ]
        if isinstance(reading.get("mood_share"), (int, float)) and reading["mood_share"] >= 0.005:
            parts.append(f"mood of the turns before ({reading['mood_share'] * 100:.0f}%)")
        if parts:
            summary += " ← " + ", ".join(parts)
        if reading.get("sensing") not in (None, "ok"):
            summary += f" [sensing: {reading['sensing']}]"
        lines.append(f"[{number}] user: {turn.text}")
        lines.append(f"     emotion: {summary}   intent: {turn.intent}")
        if turn.slots:
            lines.append(f"     set: {turn.slots_line()}")
        for reply in turn.replies:
            if reply.get("warning"):
                lines.append(f"     ! {reply['warning']}")
            elif reply["text"] is not None:
                lines.append(f"     bot: {reply['text']}   ({reply['action']})")
            else:
                lines.append(f"     bot ran {reply['action']}")
    return "\n".join(lines)
