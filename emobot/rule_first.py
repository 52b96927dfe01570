"""TED predicts only where a rule does not already decide (installed in Rasa's process by
rasa_patches).

Rasa runs every policy on every prediction and then keeps the most confident, ties going to the
higher priority. When the RulePolicy predicts an action with confidence 1.0, TED (priority 1
against the rules' 6) cannot win: its confidence is at most 1.0 too. Yet TED's prediction, a
featurised conversation and a TensorFlow call, was a third of Rasa's CPU per turn (py-spy on one
Rasa process at 50 conversations on the 2-core EPYC, the chat alone: TED 31% of the process's busy
time, the NLU pipeline 19%, the tracker store 17%). Here the predict graph gives TED the rule's
prediction, and TED answers "no prediction" (its own default, all zeros) without featurising
anything when that prediction is certain to win over its own:

- the rule's confidence is 1.0 and its priority above TED's;
- TED was not trained on message text (no end-to-end stories): an end-to-end prediction would
  outrank the rule regardless of confidence;
- the last action was not rejected: the ensemble then zeroes that action in every prediction,
  which can take the rule's 1.0 away.

The chosen action, its policy and its confidence are unchanged (tests/emobot/test_rule_first.py
runs the demo's conversations with and without it). ``EMOBOT_RULE_FIRST=0`` turns it off.
:data:`SKIPPED` counts TED predictions skipped and run in this process.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from collections import Counter
from typing import Any

from emotion_sensing.processes import switched_off

logger = logging.getLogger(__name__)

RULE_INPUT = "emobot_rule_prediction"  # the parameter the rewired TED node receives
SKIPPED: Counter = Counter()  # "skipped" / "ran": TED predictions in this process


def enabled() -> bool:
    return not switched_off("EMOBOT_RULE_FIRST")


def _is_ted(node: Any) -> bool:
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.core.policies.unexpected_intent_policy import UnexpecTEDIntentPolicy

    uses = node.uses
    # A subclass with its own prediction would get an argument it may not take: left as it is.
    return (isinstance(uses, type) and issubclass(uses, TEDPolicy)
            and not issubclass(uses, UnexpecTEDIntentPolicy)
            and uses.predict_action_probabilities is TEDPolicy.predict_action_probabilities
            and node.fn == "predict_action_probabilities")


def rewire(schema: Any) -> Any:
    """``schema`` with each TED prediction node also needing the RulePolicy's prediction; the
    schema itself when it predicts no actions or has no single RulePolicy."""
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.engine.graph import GraphSchema

    rules = [name for name, node in schema.nodes.items()
             if isinstance(node.uses, type) and issubclass(node.uses, RulePolicy)
             and node.fn == "predict_action_probabilities"]
    teds = [name for name, node in schema.nodes.items() if _is_ted(node) and RULE_INPUT not in node.needs]
    if len(rules) != 1 or not teds:
        return schema
    nodes = dict(schema.nodes)
    for name in teds:
        nodes[name] = dataclasses.replace(nodes[name], needs={**nodes[name].needs, RULE_INPUT: rules[0]})
    return GraphSchema(nodes)


def rule_decides(ted: Any, rule_prediction: Any, tracker: Any) -> bool:
    """Whether ``rule_prediction`` wins over anything ``ted`` could predict for ``tracker``."""
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected
    from rasa.shared.nlu.constants import TEXT

    if not isinstance(rule_prediction, PolicyPrediction) or rule_prediction.is_end_to_end_prediction:
        return False
    if rule_prediction.max_confidence < 1.0 or rule_prediction.policy_priority <= ted.priority:
        return False
    if TEXT in (getattr(ted, "fake_features", None) or {}):
        return False  # TED reads message text: its end-to-end predictions outrank rules
    for event in reversed(tracker.events):
        if isinstance(event, (ActionExecuted, ActionExecutionRejected)):
            return not isinstance(event, ActionExecutionRejected)
    return True


def install() -> None:
    """Rewire every predict graph this process loads from now on (idempotent)."""
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.engine.runner.dask import DaskGraphRunner

    if getattr(DaskGraphRunner.__init__, "_emobot_rule_first", False):
        return
    runner_init, ted_predict = DaskGraphRunner.__init__, TEDPolicy.predict_action_probabilities

    @functools.wraps(runner_init)
    def init(self, graph_schema, *args: Any, **kwargs: Any) -> None:
        if enabled():
            try:
                graph_schema = rewire(graph_schema)
            except Exception:  # never stop a model from loading: Rasa's own graph runs then
                logger.exception("could not give TED the rule's prediction; every policy predicts")
        runner_init(self, graph_schema, *args, **kwargs)

    @functools.wraps(ted_predict)
    def predict_action_probabilities(self, tracker, domain, *args: Any, **kwargs: Any):
        rule_prediction = kwargs.pop(RULE_INPUT, None)
        if rule_prediction is not None and rule_decides(self, rule_prediction, tracker):
            SKIPPED["skipped"] += 1
            return self._prediction(self._default_predictions(domain))
        SKIPPED["ran"] += 1
        return ted_predict(self, tracker, domain, *args, **kwargs)

    init._emobot_rule_first = True
    DaskGraphRunner.__init__ = init
    TEDPolicy.predict_action_probabilities = predict_action_probabilities
