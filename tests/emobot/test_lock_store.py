"""The atomic lock stores: tickets stay unique when several Rasa processes ask at once (Redis
for servers on several machines, files for worker processes on one)."""
from __future__ import annotations

import multiprocessing
import threading

import pytest
from rasa.core.lock_store import LockStore
from rasa.core.utils import number_of_sanic_workers
from rasa.utils.endpoints import EndpointConfig

from emobot.lock_store import FileLockStore, RedisLockStore
from tests.integration.redis_server import LocalRedis, unavailable_reason


@pytest.fixture(scope="module")
def redis_port():
    if unavailable_reason() is not None:
        pytest.skip(str(unavailable_reason()))
    server = LocalRedis().start()
    yield server.port
    server.stop()


def redis_config(port: int) -> EndpointConfig:
    return EndpointConfig(url="127.0.0.1", port=port, db=3, key_prefix="test", type="emobot.lock_store.RedisLockStore")


def file_config(directory) -> EndpointConfig:
    return EndpointConfig(type="emobot.lock_store.FileLockStore", path=str(directory))


@pytest.fixture(params=["redis", "file"])
def config(request, tmp_path):
    if request.param == "redis":
        return redis_config(request.getfixturevalue("redis_port"))
    return file_config(tmp_path / "locks")


def stores(config: EndpointConfig, n: int) -> list:
    """``n`` lock stores as Rasa builds them from endpoints.yml: one per Rasa process."""
    return [LockStore.create(config) for _ in range(n)]


def test_rasa_builds_the_redis_store_from_endpoints(redis_port):
    store = stores(redis_config(redis_port), 1)[0]
    assert isinstance(store, RedisLockStore)
    assert store.key_prefix.startswith("test:")


def test_rasa_builds_the_file_store_from_endpoints_and_runs_several_workers_on_it(tmp_path, monkeypatch):
    config = file_config(tmp_path / "locks")
    store = stores(config, 1)[0]
    assert isinstance(store, FileLockStore) and store.directory == tmp_path / "locks"
    monkeypatch.setenv("SANIC_WORKERS", "2")
    assert number_of_sanic_workers(config) == 2


def test_the_file_store_says_what_it_needs():
    with pytest.raises(ValueError, match="path"):
        LockStore.create(EndpointConfig(type="emobot.lock_store.FileLockStore"))


def test_simultaneous_tickets_from_many_stores_are_unique_and_all_kept(config):
    servers = stores(config, 8)
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


def _issue_from_a_process(directory: str, start, out) -> None:
    store = LockStore.create(file_config(directory))
    start.wait()
    out.put([store.issue_ticket("shared / conversation ☃") for _ in range(40)])


def test_file_store_tickets_from_separate_processes_are_unique(tmp_path):
    """What SANIC_WORKERS does: separate processes, each with its own store on one directory."""
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    workers = [context.Process(target=_issue_from_a_process, args=(str(tmp_path), start, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    tickets = [t for _ in workers for t in out.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(tickets) == list(range(160))
    lock = FileLockStore(path=tmp_path).get_lock("shared / conversation ☃")
    assert sorted(t.number for t in lock.tickets) == list(range(160))


async def test_turns_of_two_stores_run_one_after_the_other(config):
    import asyncio

    first, second = stores(config, 2)
    order = []

    async def turn(store, name: str) -> None:
        async with store.lock("talk", wait_time_in_seconds=0.05):
            order.append(f"{name} start")
            await asyncio.sleep(0.3)
            order.append(f"{name} end")

    await asyncio.gather(turn(first, "a"), turn(second, "b"))
    assert order in (["a start", "a end", "b start", "b end"], ["b start", "b end", "a start", "a end"])
