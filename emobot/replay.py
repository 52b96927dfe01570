"""Replay a conversation from the tracker store with each user turn's emotion annotations.

Reads Rasa's SQL tracker store (``events`` table) directly with SQLAlchemy, so it needs
no running Rasa and works on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

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

    def to_dict(self) -> Dict[str, Any]:
        return {
            "text": self.text,
            "timestamp": self.timestamp,
            "intent": self.intent,
            "emotion": self.emotion,
            "replies": self.replies,
        }


class TrackerReader:
    """Read-only access to the events of a SQL tracker store."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
            raise ReplayError(f"tracker store {url[len('sqlite:///'):]} does not exist: no conversation yet")
        self._engine = sa.create_engine(url)

    def _events_table(self, connection) -> bool:
        return sa.inspect(connection).has_table("events")

    def conversations(self) -> List[Dict[str, Any]]:
        """Every sender id with its event count and last activity, newest first."""
        with self._engine.connect() as connection:
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
        with self._engine.connect() as connection:
            if not self._events_table(connection):
                raise ReplayError("the tracker store is empty: no conversation has been stored yet")
            rows = connection.execute(
                sa.text("SELECT id, type_name, timestamp, data FROM events WHERE sender_id = :s ORDER BY id"),
                {"s": sender_id},
            ).fetchall()
        if not rows:
            raise ReplayError(f"no conversation with sender id {sender_id!r} (see `emobot replay --list`)")
        events = []
        for row_id, type_name, timestamp, data in rows:
            try:
                event = json.loads(data) if data else {}
                if not isinstance(event, dict):
                    raise ValueError("not an object")
            except ValueError as error:
                event = {"corrupt": f"event {row_id} could not be read ({error})"}
            event.setdefault("event", type_name)
            event.setdefault("timestamp", timestamp)
            events.append(event)
        return events


def turns_from_events(events: List[Dict[str, Any]]) -> List[Turn]:
    """Group events into turns: each user message with the slots and replies that follow it."""
    turns: List[Turn] = []
    current: Optional[Turn] = None
    for event in events:
        kind = event.get("event")
        if "corrupt" in event:
            if current is not None:
                current.replies.append({"text": None, "action": None, "warning": event["corrupt"]})
            continue
        if kind == "user":
            current = Turn(
                text=event.get("text") or "",
                timestamp=float(event.get("timestamp") or 0.0),
                intent=((event.get("parse_data") or {}).get("intent") or {}).get("name"),
            )
            turns.append(current)
        elif current is None:
            continue
        elif kind == "slot" and event.get("name") in (USER_EMOTION, CONFIDENCE, VALENCE, AROUSAL, READING):
            key = {USER_EMOTION: "label", CONFIDENCE: "confidence", VALENCE: "valence",
                   AROUSAL: "arousal", READING: "reading"}[event["name"]]
            current.emotion[key] = event.get("value")
        elif kind == "bot":
            metadata = event.get("metadata") or {}
            current.replies.append({"text": event.get("text"), "action": metadata.get("utter_action")})
        elif kind == "action" and event.get("name") not in (None, "action_listen", "action_extract_slots", SENSE_ACTION):
            current.replies.append({"text": None, "action": event.get("name"), "policy": event.get("policy")})
    # A reply's policy is on the action event before its bot event; merge them.
    for turn in turns:
        merged: List[Dict[str, Any]] = []
        for reply in turn.replies:
            if reply["text"] is not None and merged and merged[-1]["text"] is None and merged[-1]["action"] == reply["action"]:
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
        label = emotion.get("label", "not sensed")
        summary = f"{label}"
        if "confidence" in emotion:
            summary += f" {float(emotion['confidence']):.2f}"
        if "valence" in emotion:
            summary += f", valence {float(emotion['valence']):+.2f}"
        reading = emotion.get("reading") or {}
        parts = [
            f"{c['modality']} {c['label']} ({c['share'] * 100:.0f}%)"
            for c in reading.get("contributions", [])
        ]
        if parts:
            summary += " ← " + ", ".join(parts)
        if reading.get("sensing") not in (None, "ok"):
            summary += f" [sensing: {reading['sensing']}]"
        lines.append(f"[{number}] user: {turn.text}")
        lines.append(f"     emotion: {summary}   intent: {turn.intent}")
        for reply in turn.replies:
            if reply.get("warning"):
                lines.append(f"     ! {reply['warning']}")
            elif reply["text"] is not None:
                lines.append(f"     bot: {reply['text']}   ({reply['action']})")
            else:
                lines.append(f"     bot ran {reply['action']}")
    return "\n".join(lines)
