"""DIET and TED loaded without a traced training step (emobot/tf_load.py) answer exactly as
Rasa's own load: every intent ranking, and TED's action probabilities at every step of every
story and rule of the demo."""
from __future__ import annotations

import asyncio
import time

import numpy as np

from emobot import tf_load
from tests.emobot.test_rasa_patches import _demo_story_trackers

MESSAGES = ["hello", "I'm furious, my order never arrived", "where is my package?", "thanks a lot",
            "I want to talk to a person", "asdf qwerty", "my day was horrible", "can you track order 12345",
            "ok", "no", "yes please", "bye", "are you a bot?", "this is the third time I ask!!"]


def _answers(monkeypatch, fast: bool):
    from rasa.core.agent import Agent

    from emobot.paths import latest_rasa_model

    monkeypatch.setenv("EMOBOT_RASA_FAST_LOAD", "1" if fast else "0")
    loads_before = sum(tf_load.FAST_LOADS.values())
    start = time.perf_counter()
    agent = Agent.load(str(latest_rasa_model()))
    seconds = time.perf_counter() - start
    fast_loads = sum(tf_load.FAST_LOADS.values()) - loads_before

    rankings, probabilities = demo_answers(agent)
    return {"seconds": seconds, "fast_loads": fast_loads, "rankings": rankings, "probabilities": probabilities}


def demo_answers(agent):
    """DIET's intent ranking of every message in MESSAGES, and TED's action probabilities at
    every step of every demo story and rule."""
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.shared.core.trackers import DialogueStateTracker

    rankings = {}
    for message in MESSAGES:
        parsed = asyncio.run(agent.parse_message(message))
        rankings[message] = [(i["name"], i["confidence"]) for i in parsed["intent_ranking"]]
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    ted = next(node._component for node in nodes if isinstance(node._component, TEDPolicy))
    domain, trackers = _demo_story_trackers()
    probabilities = []
    for tracker in trackers:
        events = list(tracker.events)
        for end in range(1, len(events) + 1):
            prefix = DialogueStateTracker.from_events(tracker.sender_id, events[:end], domain.slots)
            probabilities.append(ted.predict_action_probabilities(prefix, agent.domain).probabilities)
    return rankings, np.asarray(probabilities)


def test_the_quick_load_answers_as_rasas_own(monkeypatch):
    rasa = _answers(monkeypatch, fast=False)
    quick = _answers(monkeypatch, fast=True)
    assert rasa["fast_loads"] == 0 and quick["fast_loads"] == 2, "DIET and TED both take the quick load"
    assert tf_load.installed()
    print(f"agent load: Rasa's {rasa['seconds']:.1f} s, quick {quick['seconds']:.1f} s")

    for message in MESSAGES:
        names = [name for name, _ in rasa["rankings"][message]]
        assert [name for name, _ in quick["rankings"][message]] == names, message
        np.testing.assert_allclose([c for _, c in quick["rankings"][message]],
                                   [c for _, c in rasa["rankings"][message]], rtol=0, atol=1e-6, err_msg=message)
    assert len(rasa["probabilities"]) > 100
    np.testing.assert_allclose(quick["probabilities"], rasa["probabilities"], rtol=0, atol=1e-6)
