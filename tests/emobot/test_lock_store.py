"""The atomic Redis lock store: tickets stay unique when several servers ask at once."""
from __future__ import annotations

import threading

import pytest
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig

from emobot.lock_store import RedisLockStore
from tests.integration.redis_server import LocalRedis, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


@pytest.fixture(scope="module")
def redis_port():
    server = LocalRedis().start()
    yield server.port
    server.stop()


def stores(port: int, n: int) -> list:
    """``n`` lock stores as Rasa builds them from endpoints.yml: one per Rasa server."""
    config = EndpointConfig(url="127.0.0.1", port=port, db=3, key_prefix="test",
                            type="emobot.lock_store.RedisLockStore")
    return [LockStore.create(config) for _ in range(n)]


def test_rasa_builds_it_from_endpoints(redis_port):
    store = stores(redis_port, 1)[0]
    assert isinstance(store, RedisLockStore)
    assert store.key_prefix.startswith("test:")


def test_simultaneous_tickets_from_many_servers_are_unique_and_all_kept(redis_port):
    servers = stores(redis_port, 8)
    barrier = threading.Barrier(len(servers))
    tickets = []

    def ask(store) -> None:
        barrier.wait()
        for _ in range(25):
            tickets.append(store.issue_ticket("one-conversation"))

    threads = [threading.Thread(target=ask, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(tickets) == 200 and len(set(tickets)) == 200
    lock = servers[0].get_lock("one-conversation")
    assert sorted(t.number for t in lock.tickets) == sorted(tickets)
    for ticket in tickets:
        servers[ticket % 8].cleanup("one-conversation", ticket)
    assert servers[0].get_lock("one-conversation") is None


async def test_turns_of_two_servers_run_one_after_the_other(redis_port):
    import asyncio

    first, second = stores(redis_port, 2)
    order = []

    async def turn(store, name: str) -> None:
        async with store.lock("talk", wait_time_in_seconds=0.05):
            order.append(f"{name} start")
            await asyncio.sleep(0.3)
            order.append(f"{name} end")

    await asyncio.gather(turn(first, "a"), turn(second, "b"))
    assert order in (["a start", "a end", "b start", "b end"], ["b start", "b end", "a start", "a end"])
