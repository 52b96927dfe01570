"""Real stacks (emotion service, action server, Rasa) on free loopback ports.

A stack takes about a minute to start on a 2-core machine, so the modules that only talk to
it share one (``stack``, started by the first module that asks and stopped at the end of the
run). A module that stops its processes, floods them or counts everything the store holds
takes a stack of its own instead::

    @pytest.fixture(scope="module")
    def stack(own_stack):
        return own_stack
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from emobot.paths import latest_rasa_model
from emobot.stack import Stack
from tests.integration.postgres import LocalPostgres, unavailable_reason

# Tests of recovery, not speed: their stacks give sensing more time than the product's 300 ms
# budget, so that a turn read on a momentarily stalled machine (a CI run once timed out the first
# turn after a Rasa restart, 7 ms here) does not pass for a reading lost to the fault. The budget
# itself is held by test_load and `emobot bench load`.
RECOVERY_BUDGET_MS = 3000


def running_stack(folder, **settings):
    """A started stack for the fixture's lifetime; ``settings`` change its Settings fields."""
    try:
        latest_rasa_model()
    except FileNotFoundError as error:
        pytest.fail(str(error))
    stack = Stack.on_free_ports(folder, tracker_store=settings.pop("tracker_store", None))
    if settings:
        stack.settings = replace(stack.settings, **settings)
    stack.start(timeout=240)
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory):
    yield from running_stack(tmp_path_factory.mktemp("shared-stack"))


@pytest.fixture(scope="module")
def stack(shared_stack):
    return shared_stack


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory):
    yield from running_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def postgres_stack(tmp_path_factory):
    """(stack, server): a stack whose tracker store is a throwaway local PostgreSQL server, shared
    by replay on PostgreSQL (test_replay_postgres) and a Rasa killed on it (test_faults, hence
    the recovery budget)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = LocalPostgres().start()
    try:
        for stack in running_stack(tmp_path_factory.mktemp("pg-stack"), tracker_store=server.tracker_store(),
                                   time_budget_ms=RECOVERY_BUDGET_MS):
            yield stack, server
    finally:
        server.stop()
