"""Lock stores whose ticket operations are atomic, for several Rasa processes at once.

Rasa Open Source 3.6's ``RedisLockStore`` changes a conversation's ticket lock by reading it,
changing it in Python and writing it back. Two Rasa servers that receive a message of the
same conversation at the same moment both read "no lock", both take ticket 0, both run the
turn, and the SQL tracker store keeps only one of the two turns' events (it appends "events
beyond the count already stored"). ``tests/integration/test_scale_out.py`` shows it.

Here every such change (issue a ticket, finish serving, drop expired tickets, clean up) is one
atomic step (:class:`AtomicLockStore`), so tickets are unique across processes and a waiting
process's ticket is never lost:

- :class:`RedisLockStore`, for Rasa servers on several machines: one Redis transaction per
  change (WATCH / MULTI / EXEC, retried when another server got in between); same keys, same
  lock format as Rasa's store. In endpoints.yml::

      lock_store:
        type: emobot.lock_store.RedisLockStore
        url: localhost        # Redis host
        port: 6379
        db: 1
        key_prefix: emobot    # optional, alphanumeric

- :class:`FileLockStore`, for several Rasa processes on one machine (``emobot run`` starts
  them by itself behind :mod:`emobot.front`, README "Under load"): each lock is a small JSON file
  in a directory, every change is made under an exclusive ``flock`` of one file beside them,
  and written by an atomic rename, so a reader never sees half a lock. No server to run::

      lock_store:
        type: emobot.lock_store.FileLockStore
        path: .emobot/locks   # a directory on a local disk (flock is not reliable over NFS)
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Tuple, Union

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockStore
from rasa.core.lock_store import RedisLockStore as RasaRedisLockStore
from rasa.utils.endpoints import EndpointConfig

# (the lock as now stored, or None) -> (the lock to store, or None to delete it; a result)
Change = Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], Any]]


class AtomicLockStore(LockStore):
    """Rasa's ticket operations, each as one atomic :meth:`_change` of the stored lock."""

    def _change(self, conversation_id: str, change: Change) -> Any:
        """Apply ``change`` to the stored lock of ``conversation_id`` as one atomic step."""
        raise NotImplementedError

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def issue(lock: Optional[TicketLock]) -> Tuple[TicketLock, int]:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        return self._change(conversation_id, issue)

    def update_lock(self, conversation_id: str) -> None:
        def drop_expired(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, None

        self._change(conversation_id, drop_expired)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def finish(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._change(conversation_id, finish)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finish the ticket, and delete the lock in the same step only if nobody waits."""
        def finish_and_maybe_delete(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else None), None

        self._change(conversation_id, finish_and_maybe_delete)


class RedisLockStore(AtomicLockStore, RasaRedisLockStore):
    """Rasa's RedisLockStore with atomic read-modify-write of each ticket lock."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        if endpoint_config is not None:
            kwargs = {**endpoint_config.kwargs, **kwargs}
            if endpoint_config.url:
                kwargs.setdefault("host", endpoint_config.url)
        super().__init__(**kwargs)

    def _change(self, conversation_id: str, change: Change) -> Any:
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    new_lock, result = change(lock)
                    pipe.multi()
                    if new_lock is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, new_lock.dumps())
                    pipe.execute()
                    return result
                except self._watch_error():
                    continue  # another server changed the lock meanwhile: redo on the new one

    @staticmethod
    def _watch_error() -> type:
        import redis

        return redis.WatchError


class FileLockStore(AtomicLockStore):
    """Ticket locks as JSON files in one directory, changed under an exclusive ``flock``: for
    several Rasa processes on one machine."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None,
                 path: Union[str, Path, None] = None) -> None:
        if path is None and endpoint_config is not None:
            path = endpoint_config.kwargs.get("path") or endpoint_config.url
        if not path:
            raise ValueError("FileLockStore needs a directory: `path:` in endpoints.yml's lock_store block")
        self.directory = Path(path).expanduser()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._guard = self.directory / ".guard"
        super().__init__()

    def _file(self, conversation_id: str) -> Path:
        # A digest: conversation ids are any text (slashes, 3,000 characters), file names are not.
        return self.directory / (hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()[:40] + ".json")

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with open(self._guard, "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)

    def get_lock(self, conversation_id: str) -> Optional[TicketLock]:
        try:
            raw = self._file(conversation_id).read_text()
        except FileNotFoundError:
            return None
        return TicketLock.from_dict(json.loads(raw)) if raw else None

    def _write(self, lock: TicketLock) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        with os.fdopen(descriptor, "w") as out:
            out.write(lock.dumps())
        os.replace(temporary, self._file(lock.conversation_id))

    def _delete(self, conversation_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._file(conversation_id).unlink()

    def save_lock(self, lock: TicketLock) -> None:
        with self._exclusive():
            self._write(lock)

    def delete_lock(self, conversation_id: str) -> None:
        with self._exclusive():
            self._delete(conversation_id)

    def _change(self, conversation_id: str, change: Change) -> Any:
        with self._exclusive():
            new_lock, result = change(self.get_lock(conversation_id))
            if new_lock is None:
                self._delete(conversation_id)
            else:
                self._write(new_lock)
            return result
