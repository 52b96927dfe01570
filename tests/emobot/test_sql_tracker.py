"""SQLite tracker stores use the write-ahead log; events are stored and read back as before."""
from __future__ import annotations

import sqlite3

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
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


def _turn(tracker: DialogueStateTracker, text: str, mood: str) -> None:
    for event in (UserUttered(text, {"name": "greet", "confidence": 1.0}), SlotSet("mood", mood),
                  ActionExecuted("utter_greet"), ActionExecuted("action_listen")):
        tracker.update(event)


def _stored(db: str, sender: str) -> list:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute(
            "SELECT type_name FROM events WHERE sender_id = ? ORDER BY id", (sender,))]


async def test_saving_a_loaded_conversation_stores_each_new_event_once_without_counting_them(tmp_path, monkeypatch):
    sql_tracker.install()
    db = str(tmp_path / "tracker.db")
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=db)
    counted = []
    monkeypatch.setattr(SQLTrackerStore, "_event_query", _counting(SQLTrackerStore._event_query, counted))

    tracker = DialogueStateTracker("c", DOMAIN.slots)
    for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
        tracker.update(event)
    _turn(tracker, "hi", "happy")
    await store.save(tracker)  # a tracker the store never loaded: Rasa's count decides
    assert counted == ["count"]
    for turn in range(3):
        loaded = await store.retrieve("c")
        _turn(loaded, f"turn {turn}", "sad")
        await store.save(loaded)
        await store.save(loaded)  # saved twice: nothing more is stored
    assert counted.count("count") == 1, "a loaded tracker's save still counted the stored events"
    again = await store.retrieve("c")  # from the session start on, as Rasa loads it
    assert len(again.events) == 2 + 4 * 4 and again.get_slot("mood") == "sad"
    assert _stored(db, "c") == ["action"] + [e.type_name for e in again.events]


async def test_a_copy_a_new_session_and_the_full_history_are_counted_by_rasas_query(tmp_path, monkeypatch):
    sql_tracker.install()
    db = str(tmp_path / "tracker.db")
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=db)
    tracker = DialogueStateTracker("c", DOMAIN.slots)
    for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
        tracker.update(event)
    _turn(tracker, "hi", "happy")
    await store.save(tracker)
    counted = []
    monkeypatch.setattr(SQLTrackerStore, "_event_query", _counting(SQLTrackerStore._event_query, counted))

    loaded = await store.retrieve("c")
    copy = loaded.copy()
    assert sql_tracker.stored_count(store, loaded) == 6 and sql_tracker.stored_count(store, copy) is None
    assert sql_tracker.stored_count(store, await store.retrieve_full_tracker("c")) is None
    assert sql_tracker.stored_count(SQLTrackerStore(DOMAIN, dialect="sqlite", db=db), loaded) is None

    # The session expires mid-turn: Rasa starts a new one in the loaded tracker.
    for event in (ActionExecuted("action_session_start"), SessionStarted(),
                  ActionExecuted("action_listen")):
        loaded.update(event)
    _turn(loaded, "back again", "sad")
    counted.clear()
    await store.save(loaded)
    assert counted == [] and sql_tracker.stored_count(store, loaded) is None  # Rasa's query counts its next save
    latest = await store.retrieve("c")
    assert [e.type_name for e in latest.events][:2] == ["session_started", "action"]
    assert len(latest.events) == 2 + 4 and sql_tracker.stored_count(store, latest) == 6
    latest.update(SlotSet("mood", "angry"))
    await store.save(latest)
    assert counted == []
    final = await store.retrieve("c")
    assert len(final.events) == 2 + 4 + 1 and final.get_slot("mood") == "angry"
    assert len(_stored(db, "c")) == 7 + 3 + 4 + 1


def _counting(event_query, counted):
    """Rasa's _event_query, noting each time the save's count uses it."""
    import inspect

    def wrapper(self, session, sender_id, fetch_events_from_all_sessions):
        caller = inspect.stack()[1].function
        if caller == "_additional_events":
            counted.append("count")
        return event_query(self, session, sender_id, fetch_events_from_all_sessions)
    return wrapper


async def test_an_sqlite_store_keeps_its_connection_between_turns(tmp_path):
    import sqlalchemy as sa

    sql_tracker.install()
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "tracker.db"))
    opened = []
    sa.event.listen(store.engine, "connect", lambda *_: opened.append(1))
    tracker = DialogueStateTracker("kept", DOMAIN.slots)
    for turn in range(5):
        _turn(tracker, f"turn {turn}", "happy")
        await store.save(tracker)
        tracker = await store.retrieve("kept")
    assert len(tracker.events) == 20
    assert len(opened) <= 1, f"{len(opened)} connections for 5 loads and saves"
