"""SQLite tracker stores use the write-ahead log; events are stored and read back as before."""
from __future__ import annotations

import sqlite3

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from emobot import sql_tracker

DOMAIN = Domain.from_yaml("""
version: "3.1"
slots:
  mood:
    type: text
    mappings: [{type: custom}]
""")


async def test_an_sqlite_store_uses_the_write_ahead_log_and_keeps_every_event(tmp_path):
    sql_tracker.install()
    db = str(tmp_path / "tracker.db")
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=db)
    tracker = DialogueStateTracker("wal", DOMAIN.slots)
    for event in (ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet", "confidence": 1.0}),
                  SlotSet("mood", "happy")):
        tracker.update(event)
    await store.save(tracker)
    again = await store.retrieve("wal")
    assert [e.as_dict() for e in again.events] == [e.as_dict() for e in tracker.events]
    assert again.get_slot("mood") == "happy"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
