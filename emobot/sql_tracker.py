"""SQL tracker stores, made cheaper per turn (installed in Rasa's process by rasa_patches).

SQLite's default journal syncs the disk on every commit: 4.5 ms on the development machine, in
Rasa's event loop, once per message, while every other conversation waits. A connection to an
SQLite store here uses the write-ahead log with ``synchronous=NORMAL``: a commit is a write and
the disk is synced at checkpoints; the database stays consistent after a crash, and a power cut
may lose the last turns' events. Readers (the service's replay pages) no longer wait for the
writer. Other databases keep their settings.

Every turn Rasa loads the conversation (since its last session start) and saves the new events.
For any SQL database (SQLite and PostgreSQL alike), two costs go (and for SQLite a third: SQLAlchemy
opens a new connection to an SQLite file for every load and every save, each one setting the
journal up again and closing, which was 4-5% of a Rasa process's busy time at 50 conversations;
here a store keeps its connection, one per thread):

- **Loading** selects only the events' JSON, instead of building one ORM object per stored row
  that is thrown away at once (the same query, the same rows, the same order).
- **Saving** counted the conversation's stored events with a query before inserting the ones
  beyond that count. A tracker this store loaded or saved already knows the count: it holds
  exactly the rows that query finds (a conversation's turns are handled one at a time, under
  the lock store). It is marked with that number and its own identity, so a copy of it, a
  tracker from elsewhere or one whose save started a new session (after which Rasa counts
  from the new session start) is counted by Rasa's query as before.

Measured on a 24-turn demo conversation (277 events, SQLite; medians, two runs each on a busy
2-core EPYC): load 15.1 and 18.5 -> 10.2 and 12.9 ms, save 6.5 and 8.1 -> 3.7 and 4.6 ms
(README, Under load).

(Tried and left out: keeping each conversation's tracker in memory between turns, checked
against the store with one aggregate query. It served 78% of loads from memory at 50
conversations, but Rasa's CPU per turn did not fall (63 ms with it, 57 ms in an earlier run
without): the checking queries cost what parsing and replaying a 20-turn conversation did.)
"""
from __future__ import annotations

import itertools
import json
import logging
from typing import Any, Iterator, Optional

logger = logging.getLogger(__name__)

_MARK = "_emobot_stored_events"


def _sqlite_write_ahead(dbapi_connection, _record) -> None:
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _mark(store: Any, tracker: Any, stored: int) -> None:
    """Note on ``tracker`` that ``store`` holds its first ``stored`` events, and nothing after."""
    tracker.__dict__[_MARK] = (id(store), id(tracker), stored)


def stored_count(store: Any, tracker: Any) -> Optional[int]:
    """How many of the tracker's events ``store`` holds (since the session start it loaded),
    when this store loaded or saved this very tracker; None when it must ask the database."""
    mark = tracker.__dict__.get(_MARK)
    if mark is None or mark[0] != id(store) or mark[1] != id(tracker) or mark[2] > len(tracker.events):
        return None
    return mark[2]


async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool):
    """Rasa's SQLTrackerStore._retrieve, reading the events' JSON without ORM objects."""
    from rasa.shared.core.trackers import DialogueStateTracker

    with self.session_scope() as session:
        query = self._event_query(session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions)
        events = [json.loads(data) for (data,) in query.with_entities(self.SQLEvent.data).all()]
    if self.domain and events:
        logger.debug("Recreating tracker from sender id '%s'", sender_id)
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        if not fetch_events_from_all_sessions:  # the rows Rasa's save would count
            _mark(self, tracker, len(events))
        return tracker
    logger.debug("Can't retrieve tracker matching sender id '%s' from SQL storage. Returning `None` instead.",
                 sender_id)
    return None


def _additional_events(self, session, tracker) -> Iterator:
    """Rasa's SQLTrackerStore._additional_events, without the count query where it is known."""
    stored = stored_count(self, tracker)
    if stored is None:
        return _original["additional_events"](self, session, tracker)
    return itertools.islice(tracker.events, stored, len(tracker.events))


async def _save(self, tracker) -> None:
    """Rasa's save, then the tracker is marked with what the store now holds of it."""
    from rasa.shared.core.events import SessionStarted

    before = stored_count(self, tracker)
    await _original["save"](self, tracker)
    new = () if before is None else itertools.islice(tracker.events, before, len(tracker.events))
    if before is not None and not any(isinstance(event, SessionStarted) for event in new):
        _mark(self, tracker, len(tracker.events))
    else:  # a tracker Rasa counted, or one that started a new session: its query counts the next save
        tracker.__dict__.pop(_MARK, None)


def _engine_kwargs(url: Any) -> dict:
    """Rasa's engine arguments; an SQLite file keeps its connection (one per thread) between
    loads and saves instead of SQLAlchemy's default for files, a new connection each time."""
    import sqlalchemy as sa

    kwargs = _original["engine_kwargs"](url)
    parsed = sa.engine.make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        kwargs.setdefault("poolclass", sa.pool.SingletonThreadPool)
    return kwargs


_original: dict = {}


def install() -> None:
    """Every SQLite connection this process opens uses the write-ahead log, SQLite tracker stores
    keep their connection, and SQL tracker stores load and save as above (idempotent)."""
    import rasa.core.tracker_store
    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore

    if not sa.event.contains(sa.engine.Engine, "connect", _sqlite_write_ahead):
        sa.event.listen(sa.engine.Engine, "connect", _sqlite_write_ahead)
    if not _original:
        _original.update(additional_events=SQLTrackerStore._additional_events, save=SQLTrackerStore.save,
                         engine_kwargs=rasa.core.tracker_store.create_engine_kwargs)
        rasa.core.tracker_store.create_engine_kwargs = _engine_kwargs
        SQLTrackerStore._retrieve = _retrieve
        SQLTrackerStore._additional_events = _additional_events
        SQLTrackerStore.save = _save
