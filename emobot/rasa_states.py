"""Rasa's dialogue states, replayed once per conversation instead of once per policy and turn.

Every policy that predicts the next action asks the tracker for its past states
(``Domain.states_for_tracker_history``): Rasa replays the whole conversation from its first
event, building a state before every action. The Memoization, Rule and TED policies each ask,
at every prediction (two or three a turn), so a turn replays the conversation about six times,
and each replay grows with the conversation (py-spy on a 40-turn conversation: a fifth of
Rasa's time per message, the largest single part).

Here each conversation's replay is kept (per Rasa process, for the 1,024 most recent
conversations): the events replayed so far, the replayed tracker and the state before each
action. A later call whose events begin with those replays only the new ones; any other history
(a revert that removed events, a restart, a trimmed tracker, another tracker of the same sender)
is replayed from the start, as Rasa would. Events are matched by type, timestamp and the
fields that name them. The options (``ignore_rule_only_turns`` and ``rule_only_data``) are
applied to the kept states exactly as Rasa applies them while replaying, and each caller gets
its own copy of every state (Rasa's featurizers edit the last state in place).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from rasa.shared.core import constants
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted

_original = Domain.states_for_tracker_history
MAX_CONVERSATIONS = 1024
State = Dict[str, Any]


def _copy(state: State) -> State:
    # A state maps sub-state names to dicts of immutable values (strings, tuples of numbers).
    return {name: dict(sub) for name, sub in state.items()}


@dataclass
class _Step:
    """What Rasa's replay looks at before one action."""
    hidden: bool  # the action's hide_rule_turn
    keeps_hidden: bool  # a follow-up action or the active loop's own prediction
    previous_action: Optional[Dict[str, Any]]
    state: State  # get_active_state, cleaned


@dataclass
class _Replay:
    domain: Any  # held, so that no later domain gets its id while the replay is kept
    tracker: Any
    fingerprints: List[Tuple] = field(default_factory=list)
    steps: List[_Step] = field(default_factory=list)


_replays: OrderedDict[Tuple, _Replay] = OrderedDict()


def _fingerprint(event) -> Tuple:
    return (type(event), event.timestamp, getattr(event, "action_name", None), getattr(event, "text", None),
            getattr(event, "intent_name", None), getattr(event, "key", None), getattr(event, "value", None),
            getattr(event, "name", None))


def _snapshot(domain: Domain, tracker, omit_unset_slots: bool, hidden: bool) -> _Step:
    previous = domain._get_prev_action_sub_state(tracker)
    return _Step(hidden, bool(tracker.followup_action) or tracker.latest_action_name == tracker.active_loop_name,
                 dict(previous) if previous else previous,
                 _copy(domain.get_active_state(tracker, omit_unset_slots=omit_unset_slots)))


def _replayed(domain: Domain, tracker, omit_unset_slots: bool) -> Tuple[List[_Step], _Step]:
    """The steps before every action of ``tracker``'s applied events, and the step after the last."""
    events = tracker.applied_events()
    fingerprints = [_fingerprint(event) for event in events]
    key = (tracker.sender_id, id(domain), omit_unset_slots, tracker.is_rule_tracker)
    replay = _replays.get(key)
    known = len(replay.fingerprints) if replay else 0
    if replay is None or known > len(events) or fingerprints[:known] != replay.fingerprints:
        replay, known = _Replay(domain, tracker.init_copy()), 0
    for event in events[known:]:
        if isinstance(event, ActionExecuted):
            replay.steps.append(_snapshot(domain, replay.tracker, omit_unset_slots, event.hide_rule_turn))
        replay.tracker.update(event)
    replay.fingerprints = fingerprints
    _replays[key] = replay
    _replays.move_to_end(key)
    while len(_replays) > MAX_CONVERSATIONS:
        _replays.popitem(last=False)
    # A copy of the list: a longer history of the same sender may extend the kept one later.
    return list(replay.steps), _snapshot(domain, replay.tracker, omit_unset_slots, False)


def _states(steps: List[_Step], last: _Step, domain: Domain, ignore_rule_only_turns: bool,
            rule_only_data: Optional[Dict[str, Any]]) -> List[State]:
    """Rasa's states_for_tracker_history, on the kept replay (the same steps, in its order)."""
    states: List[State] = []
    last_ml_action = None
    turn_was_hidden = False
    for step in (*steps, last):
        if ignore_rule_only_turns:
            if not turn_was_hidden:
                last_ml_action = step.previous_action
            if not step.keeps_hidden:
                turn_was_hidden = step.hidden
            if turn_was_hidden:
                continue
        state = _copy(step.state)
        if ignore_rule_only_turns:
            domain._remove_rule_only_features(state, rule_only_data)
            if states:
                domain._substitute_rule_only_user_input(state, states[-1])
            if last_ml_action:
                state[constants.PREVIOUS_ACTION] = dict(last_ml_action)
        states.append(domain._clean_state(state))
    return states


class _Cache(dict):
    """The answers for one tracker as it is now; a copy of the tracker starts without them."""

    def __init__(self, key) -> None:
        super().__init__()
        self.key = key

    def __copy__(self):
        return None

    def __deepcopy__(self, memo):
        return None

    def __reduce__(self):
        return (type(None), ())


_ATTRIBUTE = "_emobot_states"


def states_for_tracker_history(self: Domain, tracker, omit_unset_slots: bool = False,
                               ignore_rule_only_turns: bool = False,
                               rule_only_data: Optional[Dict[str, Any]] = None) -> List[State]:
    # Within one prediction several policies ask the same tracker the same question: kept on
    # the tracker, keyed by its events (only ever appended) and the options.
    events = tracker.events
    key = (id(self), len(events), id(events[-1]) if events else None, omit_unset_slots,
           ignore_rule_only_turns, id(rule_only_data) if rule_only_data is not None else None)
    cache = tracker.__dict__.get(_ATTRIBUTE)
    if cache is None or cache.key != key[:3]:
        cache = tracker.__dict__[_ATTRIBUTE] = _Cache(key[:3])
    found = cache.get(key)
    if found is None:
        replayed = cache.get(omit_unset_slots)  # the replay serves every option
        if replayed is None:
            replayed = cache[omit_unset_slots] = _replayed(self, tracker, omit_unset_slots)
        states = _states(*replayed, self, ignore_rule_only_turns, rule_only_data)
        # The domain and rule_only_data are kept with the answer so that their ids stay theirs.
        cache[key] = found = (states, self, rule_only_data)
    return [_copy(state) for state in found[0]]


def install() -> None:
    """Idempotent."""
    Domain.states_for_tracker_history = states_for_tracker_history
