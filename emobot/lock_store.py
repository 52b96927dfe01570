"""A Redis lock store whose ticket operations are atomic, for several Rasa servers at once.

Rasa Open Source 3.6's ``RedisLockStore`` changes a conversation's ticket lock by reading it,
changing it in Python and writing it back. Two Rasa servers that receive a message of the
same conversation at the same moment both read "no lock", both take ticket 0, both run the
turn, and the SQL tracker store keeps only one of the two turns' events (it appends "events
beyond the count already stored"). ``tests/integration/test_scale_out.py`` shows it.

Here every such change (issue a ticket, finish serving, drop expired tickets, clean up) runs
as one Redis transaction (WATCH / MULTI / EXEC, retried when another server got in between),
so tickets are unique across servers and a waiting server's ticket is never lost. Same keys,
same lock format as Rasa's store. In endpoints.yml::

    lock_store:
      type: emobot.lock_store.RedisLockStore
      url: localhost        # Redis host
      port: 6379
      db: 1
      key_prefix: emobot    # optional, alphanumeric
"""
from __future__ import annotations

import json
from typing import Any, Callable, Optional, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME
from rasa.core.lock_store import RedisLockStore as RasaRedisLockStore
from rasa.utils.endpoints import EndpointConfig

# (the lock as now stored, or None) -> (the lock to store, or None to delete it; a result)
Change = Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], Any]]


class RedisLockStore(RasaRedisLockStore):
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
