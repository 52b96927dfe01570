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


def running_stack(folder, **settings):
    """A started stack for the fixture's lifetime; ``settings`` change its Settings fields."""
    try:
        latest_rasa_model()
    except FileNotFoundError as error:
        pytest.fail(str(error))
    stack = Stack.on_free_ports(folder)
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
