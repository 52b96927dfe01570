"""EmotionPolicy: a Rasa 3 policy that follows the emotional trajectory of a conversation.

When negative feeling persists or escalates over several user turns, it lets the bot finish
its normal answer and then predicts a de-escalating action (by default ``utter_offer_human``)
once, and explains why in the log. Everything else it leaves to the other policies.

config.yml::

    policies:
      - name: emobot.policy.EmotionPolicy
        negative_valence: -0.3    # valence at or below this counts as negative
        turns: 2                  # for this many user turns in a row
        action: utter_offer_human # what to do then
        cooldown_turns: 5         # don't offer again within this many user turns
        deescalations: [utter_ask_talk]  # actions that already address the feeling:
                                  # the cooldown counts them like its own action
        priority: 7               # above RulePolicy (6), so it wins a tie

EMOBOT_POLICY_NEGATIVE_VALENCE, EMOBOT_POLICY_TURNS and EMOBOT_POLICY_COOLDOWN_TURNS
override those three when Rasa loads the model.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Restarted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from emobot import rasa_patches
from emotion_sensing.slots import VALENCE
from emotion_sensing.trajectory import TrajectoryRule, should_step_in

logger = logging.getLogger(__name__)
# Rasa imports this module from config.yml, so the speed fix lands in its process.
rasa_patches.apply()


POLICY_ENV = {
    "EMOBOT_POLICY_NEGATIVE_VALENCE": ("negative_valence", float),
    "EMOBOT_POLICY_TURNS": ("turns", int),
    "EMOBOT_POLICY_COOLDOWN_TURNS": ("cooldown_turns", int),
}


def policy_overrides(environ: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Thresholds from EMOBOT_POLICY_* variables, which override config.yml at load time."""
    env = os.environ if environ is None else environ
    found = {}
    for variable, (key, kind) in POLICY_ENV.items():
        if env.get(variable):
            try:
                found[key] = kind(env[variable])
            except ValueError:
                raise ValueError(f"bad {variable}={env[variable]!r}: expected {kind.__name__}") from None
    return found


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class EmotionPolicy(Policy):
    """De-escalates when negative valence persists or escalates; abstains otherwise."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            "priority": 7,
            "negative_valence": -0.3,
            "turns": 2,
            "action": "utter_offer_human",
            "cooldown_turns": 5,
            "deescalations": [],
        }

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Optional[Any] = None,
    ) -> None:
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        config = {**config, **policy_overrides()}
        self.rule = TrajectoryRule(float(config["negative_valence"]), int(config["turns"]))
        self.action = config["action"]
        self.cooldown_turns = int(config["cooldown_turns"])
        # A rule that already apologised or offered to listen has addressed the feeling;
        # offering a person right after it would talk over it.
        self.addressed_by = {self.action, *(config.get("deescalations") or [])}

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        for action in sorted(self.addressed_by):
            if action not in domain.action_names_or_texts:
                raise ValueError(f"EmotionPolicy: action {action!r} is not in the domain")
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        if self.action not in domain.action_names_or_texts:
            return self._prediction(probabilities)
        turns = _turns(tracker)
        if not turns or turns[-1]["bot_actions"] == [] or tracker.latest_action_name == ACTION_LISTEN_NAME:
            return self._prediction(probabilities)  # the bot has not answered this turn yet
        last = turns[-1]["bot_actions"]
        if last[-1] == self.action:
            probabilities[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0  # offered: now listen
            return self._prediction(probabilities)
        recent = {a for t in turns[-self.cooldown_turns:] for a in t["bot_actions"]}
        if recent & self.addressed_by:
            return self._prediction(probabilities)
        reason = should_step_in([t["valence"] for t in turns], self.rule)
        if reason is None:
            return self._prediction(probabilities)
        logger.info("EmotionPolicy: %s -> %s (conversation %s)", reason, self.action, tracker.sender_id)
        probabilities[domain.index_for_action(self.action)] = 1.0
        return self._prediction(probabilities, diagnostic_data={"emotion_policy": reason})


def _turns(tracker: DialogueStateTracker) -> List[Dict[str, Any]]:
    """Per user turn of this session: the valence sensed for it and the bot actions that followed.

    Every event counts, reverted ones too: a turn the fallback took back (not understood) was
    still lived through, and misunderstandings are where frustration builds."""
    turns: List[Dict[str, Any]] = []
    for event in tracker.events:
        if isinstance(event, (Restarted, SessionStarted)):
            turns = []
        elif isinstance(event, UserUttered):
            turns.append({"valence": None, "bot_actions": []})
        elif not turns:
            continue
        elif isinstance(event, SlotSet) and event.key == VALENCE and event.value is not None:
            turns[-1]["valence"] = float(event.value)
        elif isinstance(event, ActionExecuted) and event.action_name not in (
            ACTION_LISTEN_NAME, "action_extract_slots", None
        ):
            turns[-1]["bot_actions"].append(event.action_name)
    return turns
