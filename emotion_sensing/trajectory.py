"""Decisions on the emotional trajectory of a conversation (pure: no Rasa).

The EmotionPolicy feeds it the valence sensed at each user turn; it answers whether the
negative feeling persists or escalates enough to step in, and says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class TrajectoryRule:
    """Step in when valence stays at or below ``negative_valence`` for ``turns`` user turns,
    or falls at every one of the last ``turns`` turns and ends at or below half of it."""

    negative_valence: float = -0.3
    turns: int = 2


def should_step_in(valences: Sequence[Optional[float]], rule: TrajectoryRule = TrajectoryRule()) -> Optional[str]:
    """A reason to de-escalate, or None. ``valences`` is oldest first; None = not sensed."""
    recent = [v for v in valences if v is not None][-(rule.turns + 1):]
    last = recent[-rule.turns:]
    if len(last) < rule.turns:
        return None
    shown = ", ".join(f"{v:+.2f}" for v in last)
    if all(v <= rule.negative_valence for v in last):
        return f"valence {shown} at or below {rule.negative_valence:+.2f} for {rule.turns} turns"
    if (
        len(recent) == rule.turns + 1
        and all(b < a for a, b in zip(recent, recent[1:]))
        and recent[-1] <= rule.negative_valence / 2
    ):
        falling = ", ".join(f"{v:+.2f}" for v in recent)
        return f"valence falling over {rule.turns} turns ({falling})"
    return None
