"""DIET and TED called on their traced graph directly (emobot/tf_call.py) answer exactly as
through tf.function: every intent ranking, and TED's action probabilities at every step of every
story and rule of the demo."""
from __future__ import annotations

import numpy as np
import pytest

from emobot import tf_call
from tests.emobot.test_tf_load import MESSAGES, demo_answers


@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    from emobot.paths import latest_rasa_model

    return Agent.load(str(latest_rasa_model()))


def _answers(agent, monkeypatch, direct: bool):
    monkeypatch.setenv("EMOBOT_TF_DIRECT", "1" if direct else "0")
    before = dict(tf_call.CALLS)
    rankings, probabilities = demo_answers(agent)
    calls = {path: tf_call.CALLS[path] - before[path] for path in before}
    return rankings, probabilities, calls


def test_direct_calls_answer_as_tf_function(agent, monkeypatch):
    assert tf_call.installed()
    rankings, probabilities, calls = _answers(agent, monkeypatch, direct=False)
    assert calls["direct"] == 0
    direct_rankings, direct_probabilities, direct_calls = _answers(agent, monkeypatch, direct=True)
    assert direct_calls["direct"] >= len(MESSAGES) + len(probabilities), direct_calls
    assert direct_rankings == rankings
    assert len(probabilities) > 100
    np.testing.assert_array_equal(direct_probabilities, probabilities)


def test_an_input_that_does_not_fit_the_signature_gets_rasas_own_error(agent, monkeypatch):
    from rasa.core.policies.ted_policy import TEDPolicy

    monkeypatch.setenv("EMOBOT_TF_DIRECT", "1")
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    model = next(node._component for node in nodes if isinstance(node._component, TEDPolicy)).model
    _function, _graph, specs = tf_call._direct(model)
    wrong = tuple(np.zeros([2] * max(spec.shape.rank, 1) + [7], dtype=spec.dtype.as_numpy_dtype) for spec in specs)
    before = dict(tf_call.CALLS)
    with pytest.raises((ValueError, TypeError)):
        model._rasa_predict(wrong)
    assert tf_call.CALLS["tf.function"] == before["tf.function"] + 1, "the ill-fitting input went through tf.function"
