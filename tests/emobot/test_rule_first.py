"""TED skipped where a rule decides (emobot/rule_first.py): the demo assistant chooses the same
action, by the same policy, with the same confidence at every step of every story and rule."""
from __future__ import annotations

import numpy as np

from emobot import rule_first
from tests.emobot.test_rasa_patches import _demo_story_trackers


def _predictions(monkeypatch, on: bool):
    from rasa.core.agent import Agent
    from rasa.shared.core.trackers import DialogueStateTracker

    from emobot.paths import latest_rasa_model

    monkeypatch.setenv("EMOBOT_RULE_FIRST", "1" if on else "0")
    agent = Agent.load(str(latest_rasa_model()))
    domain, trackers = _demo_story_trackers()
    before = dict(rule_first.SKIPPED)
    chosen = []
    for tracker in trackers:
        events = list(tracker.events)
        for end in range(1, len(events) + 1):
            prefix = DialogueStateTracker.from_events(tracker.sender_id, events[:end], domain.slots)
            prediction = agent.processor._predict_next_with_tracker(prefix)
            chosen.append((tracker.sender_id, end, int(np.argmax(prediction.probabilities)),
                           prediction.policy_name, round(prediction.max_confidence, 6)))
    counts = {key: rule_first.SKIPPED[key] - before.get(key, 0) for key in ("skipped", "ran")}
    return chosen, counts


def test_the_assistant_chooses_as_before_with_ted_skipped_where_a_rule_decides(monkeypatch):
    every_policy, counts_off = _predictions(monkeypatch, on=False)
    rule_first_, counts_on = _predictions(monkeypatch, on=True)
    assert len(every_policy) > 100
    assert counts_off["skipped"] == 0, "without the rewired graph TED always predicts"
    assert counts_on["skipped"] > len(every_policy) / 4, counts_on
    assert counts_on["ran"] > 0, "where no rule applies TED still predicts"
    differing = [(a, b) for a, b in zip(every_policy, rule_first_) if a != b]
    assert not differing, differing[:5]
    print(f"{len(every_policy)} predictions: TED skipped {counts_on['skipped']}, ran {counts_on['ran']}")


def test_only_teds_own_prediction_is_rewired_next_to_a_single_rule_policy():
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.engine.graph import GraphSchema, SchemaNode

    from emobot import rasa_patches

    rasa_patches.apply()

    class OwnPrediction(TEDPolicy):
        def predict_action_probabilities(self, tracker, domain, rule_only_data=None):
            raise AssertionError("never called here")

    def node(uses):
        return SchemaNode(needs={"tracker": "tracker"}, uses=uses, constructor_name="load",
                          fn="predict_action_probabilities", config={})

    schema = GraphSchema({"rules": node(RulePolicy), "ted": node(TEDPolicy), "own": node(OwnPrediction)})
    rewired = rule_first.rewire(schema)
    assert rewired.nodes["ted"].needs == {"tracker": "tracker", rule_first.RULE_INPUT: "rules"}
    assert rewired.nodes["own"].needs == {"tracker": "tracker"}, "a subclass's own prediction is left alone"
    assert schema.nodes["ted"].needs == {"tracker": "tracker"}, "the model's schema is not changed"
    two_rules = GraphSchema({"a": node(RulePolicy), "b": node(RulePolicy), "ted": node(TEDPolicy)})
    assert rule_first.rewire(two_rules) is two_rules
