"""One real stack (emotion service, action server, Rasa) on free loopback ports per module."""
from __future__ import annotations

import pytest

from emobot.paths import latest_rasa_model
from emobot.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    try:
        latest_rasa_model()
    except FileNotFoundError as error:
        pytest.fail(str(error))
    stack = Stack.on_free_ports(tmp_path_factory.mktemp("stack"))
    stack.start(timeout=240)
    yield stack
    stack.stop()
