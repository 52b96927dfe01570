"""Emotion insights across conversations: where an assistant frustrates people and what calms them.

Reads the tracker store as replay does (emotion_sensing/replay.py), one conversation at a time
(memory holds one conversation and the running sums, whatever the store's size), and gathers:

- the **emotion mix** of user turns over time (per day or hour) and per sensing source (text
  only, camera, microphone: the modalities that contributed to the turn's fused state);
- per **intent**: how people feel when they ask it (label distribution, mean valence, n);
- per **bot action**: the valence change from the user turn before it to the user turn after it
  (mean, 95% confidence interval, n), ranked both ways, with example conversations;
- the **EmotionPolicy**: how often it stepped in and what followed (the person accepted a
  person, declined, said something else, or left; valence after);
- conversations that **ended upset** (last sensed valence at or below a threshold), ranked;
- **ratings** people gave (a numeric slot, ``rating`` by default) beside the valence sensed in the
  conversation before the rating: what people said set against what was sensed.

Every figure carries its n; groups smaller than ``min_n`` are left out (and counted as left out).
"""
from __future__ import annotations

import calendar
import math
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from emotion_sensing.labels import LABELS, UNKNOWN
from emotion_sensing.replay import EmptyStore, ReplayError, TrackerReader
from emotion_sensing.slots import READING, SENSE_ACTION, USER_EMOTION, VALENCE, slot_number

SCHEMA_VERSION = 1
NOT_SENSED = "not sensed"
MIX_LABELS = (*LABELS, UNKNOWN, NOT_SENSED)
# Actions that are plumbing, not something the bot says or does to the person.
PLUMBING = {"action_listen", "action_extract_slots", SENSE_ACTION, "action_session_start", "action_unlikely_intent"}
POLICY_NAME = "EmotionPolicy"
ACCEPT_INTENTS = {"affirm", "human_handoff"}
DECLINE_INTENTS = {"deny"}


class InsightsError(ReplayError):
    """Nothing to show; the message says why (empty store, unknown model id, ...)."""


@dataclass
class Query:
    """What to look at: a time range (Unix times), one assistant version, and thresholds."""

    since: Optional[float] = None
    until: Optional[float] = None
    model_id: Optional[str] = None
    min_n: int = 5
    upset_valence: float = -0.3
    bucket: str = "day"  # or "hour"
    examples: int = 3
    rating_slot: str = "rating"


@dataclass
class UserTurn:
    timestamp: float
    intent: Optional[str]
    label: str = NOT_SENSED
    valence: Optional[float] = None
    sources: Tuple[str, ...] = ()
    model_id: Optional[str] = None
    actions: List[Tuple[str, Optional[str]]] = field(default_factory=list)  # (name, policy)
    rating: Optional[float] = None


def _source(reading: Any, metadata: Dict[str, Any]) -> Tuple[str, ...]:
    """Which senses were on for a turn: the modalities in its fused state, else what the page said."""
    modalities = set()
    if isinstance(reading, dict):
        for contribution in reading.get("contributions") or []:
            if isinstance(contribution, dict):
                modalities.add(contribution.get("modality"))
    found = tuple(sorted({"camera" if m == "face" else "microphone" for m in modalities if m in ("face", "voice")}))
    if found:
        return found
    emobot = ((metadata or {}).get("emobot") or {}) if isinstance(metadata, dict) else {}
    if isinstance(emobot, dict):
        return tuple(name for name in ("camera", "microphone") if emobot.get(name))
    return ()


def turns_of(events: Iterable[Dict[str, Any]], problems: Counter, rating_slot: str = "rating") -> List[UserTurn]:
    """The user turns of one conversation with their sensed emotion, the actions after them and a
    rating set at the turn. Unreadable events are counted in ``problems`` and skipped."""
    turns: List[UserTurn] = []
    reading: Any = None
    for event in events:
        if event.get("corrupt"):
            problems["unreadable events"] += 1
            continue
        try:
            kind = event.get("event")
            if kind == "user":
                metadata = event.get("metadata") or {}
                parse = event.get("parse_data") or {}
                intent = (parse.get("intent") or {}).get("name") if isinstance(parse, dict) else None
                turns.append(UserTurn(float(event.get("timestamp") or 0.0), intent,
                                      model_id=metadata.get("model_id") if isinstance(metadata, dict) else None))
                turns[-1].sources = _source(None, metadata)
                reading = None
            elif not turns:
                continue
            elif kind == "slot" and event.get("name") == USER_EMOTION:
                value = event.get("value")
                turns[-1].label = value if value in (*LABELS, UNKNOWN) else NOT_SENSED
            elif kind == "slot" and event.get("name") == VALENCE:
                turns[-1].valence = slot_number(event.get("value"))
            elif kind == "slot" and event.get("name") == READING:
                reading = event.get("value")
                metadata_sources = turns[-1].sources
                turns[-1].sources = _source(reading, {}) or metadata_sources
            elif kind == "slot" and event.get("name") == rating_slot:
                turns[-1].rating = slot_number(event.get("value"), from_text=True)
            elif kind == "action" and event.get("name") not in PLUMBING:
                turns[-1].actions.append((str(event.get("name")), event.get("policy")))
        except (TypeError, ValueError, AttributeError):
            problems["unreadable events"] += 1
    return turns


class _Mean:
    """Running count, mean and variance (Welford), for confidence intervals without the values."""

    __slots__ = ("n", "mean", "m2")

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, value: float) -> None:
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)

    def figures(self) -> Dict[str, Any]:
        sd = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0
        half = 1.96 * sd / math.sqrt(self.n) if self.n > 1 else None
        return {"n": self.n, "mean": round(self.mean, 4),
                "ci95": None if half is None else [round(self.mean - half, 4), round(self.mean + half, 4)]}


class _Correlation:
    """Pearson's r from running sums, so that the pairs need not be kept."""

    __slots__ = ("n", "sx", "sy", "sxx", "syy", "sxy")

    def __init__(self) -> None:
        self.n, self.sx, self.sy, self.sxx, self.syy, self.sxy = 0, 0.0, 0.0, 0.0, 0.0, 0.0

    def add(self, x: float, y: float) -> None:
        self.n += 1
        self.sx += x
        self.sy += y
        self.sxx += x * x
        self.syy += y * y
        self.sxy += x * y

    def r(self) -> Optional[float]:
        """None under three pairs or where either side never varies."""
        if self.n < 3:
            return None
        vx = self.sxx - self.sx * self.sx / self.n
        vy = self.syy - self.sy * self.sy / self.n
        if vx <= 1e-12 or vy <= 1e-12:
            return None
        return max(-1.0, min(1.0, (self.sxy - self.sx * self.sy / self.n) / math.sqrt(vx * vy)))


class Insights:
    """Streaming accumulator: feed it conversations, then ask for :meth:`result`."""

    def __init__(self, query: Query) -> None:
        self.query = query
        self.problems: Counter = Counter()
        self.conversations = 0
        self.turns = 0
        self.sensed_turns = 0
        self.model_ids: Counter = Counter()
        self.mix_time: Dict[str, Counter] = defaultdict(Counter)
        self.valence_time: Dict[str, _Mean] = defaultdict(_Mean)
        self.mix_source: Dict[str, Counter] = defaultdict(Counter)
        self.intent_mix: Dict[str, Counter] = defaultdict(Counter)
        self.intent_valence: Dict[str, _Mean] = defaultdict(_Mean)
        self.action_change: Dict[str, _Mean] = defaultdict(_Mean)
        self.action_examples: Dict[str, List[Tuple[float, str]]] = defaultdict(list)
        self.policy_steps = 0
        self.policy_after: Counter = Counter()
        self.policy_valence_after = _Mean()
        self.policy_valence_before = _Mean()
        self.upset: List[Tuple[float, str, int, float]] = []
        self.rated = _Mean()  # the ratings themselves
        self.rating_valence: Dict[float, _Mean] = defaultdict(_Mean)  # rating -> valence before it
        self.rating_mix: Dict[float, Counter] = defaultdict(Counter)  # rating -> emotions before it
        self.rating_pairs = _Correlation()
        self.rated_unsensed = 0

    def _bucket(self, timestamp: float) -> str:
        fmt = "%Y-%m-%d %H:00" if self.query.bucket == "hour" else "%Y-%m-%d"
        return time.strftime(fmt, time.gmtime(timestamp))

    def add(self, sender_id: str, events: List[Dict[str, Any]]) -> None:
        turns = turns_of(events, self.problems, self.query.rating_slot)
        for turn in turns:
            if turn.model_id:
                self.model_ids[turn.model_id] += 1
        if self.query.model_id is not None:
            turns = [t for t in turns if t.model_id == self.query.model_id]
        if not turns:
            return
        self.conversations += 1
        self.turns += len(turns)
        for index, turn in enumerate(turns):
            sensed = turn.label not in (NOT_SENSED,)
            self.sensed_turns += sensed and turn.label != UNKNOWN
            bucket = self._bucket(turn.timestamp)
            self.mix_time[bucket][turn.label] += 1
            source = "+".join(turn.sources) if turn.sources else "text only"
            self.mix_source[source][turn.label] += 1
            if turn.valence is not None and turn.label != UNKNOWN:
                self.valence_time[bucket].add(turn.valence)
            intent = turn.intent or "(none)"
            self.intent_mix[intent][turn.label] += 1
            if turn.valence is not None and turn.label != UNKNOWN:
                self.intent_valence[intent].add(turn.valence)
            following = turns[index + 1] if index + 1 < len(turns) else None
            for name, policy in turn.actions:
                if following is not None and turn.valence is not None and following.valence is not None \
                        and turn.label != UNKNOWN and following.label != UNKNOWN:
                    change = following.valence - turn.valence
                    self.action_change[name].add(change)
                    examples = self.action_examples[name]
                    examples.append((change, sender_id))
                    examples.sort()
                    if len(examples) > 2 * self.query.examples:  # keep the most extreme both ways
                        del examples[self.query.examples:-self.query.examples]
                if policy and POLICY_NAME in str(policy):
                    self.policy_steps += 1
                    if turn.valence is not None:
                        self.policy_valence_before.add(turn.valence)
                    if following is None:
                        self.policy_after["left the conversation"] += 1
                    else:
                        if following.intent in ACCEPT_INTENTS:
                            self.policy_after["accepted a person"] += 1
                        elif following.intent in DECLINE_INTENTS:
                            self.policy_after["declined"] += 1
                        else:
                            self.policy_after["went on with something else"] += 1
                        if following.valence is not None and following.label != UNKNOWN:
                            self.policy_valence_after.add(following.valence)
        last = next((t for t in reversed(turns) if t.valence is not None and t.label != UNKNOWN), None)
        if last is not None and last.valence <= self.query.upset_valence:
            self.upset.append((last.valence, sender_id, len(turns), last.timestamp))
        self._add_rating(turns)

    def _add_rating(self, turns: List[UserTurn]) -> None:
        """The conversation's last rating against the turns sensed before it (the rating's own turn,
        a button's payload or "4 stars", says nothing of how the person felt)."""
        at = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].rating is not None), None)
        if at is None:
            return
        rating = turns[at].rating
        self.rated.add(rating)
        before = [t for t in turns[:at] if t.valence is not None and t.label not in (UNKNOWN, NOT_SENSED)]
        if not before:
            self.rated_unsensed += 1
            return
        valence = sum(t.valence for t in before) / len(before)
        self.rating_valence[rating].add(valence)
        self.rating_mix[rating].update(t.label for t in before)
        self.rating_pairs.add(rating, valence)

    def result(self) -> Dict[str, Any]:
        q = self.query
        if self.conversations == 0:
            if q.model_id is not None:
                known = ", ".join(f"{m} ({n} turns)" for m, n in self.model_ids.most_common(10)) or "none recorded"
                raise InsightsError(f"no user turns with model id {q.model_id!r}; model ids in the store: {known}")
            raise InsightsError("no user turns in the tracker store" + (" in that time range" if q.since or q.until else ""))
        left_out: Counter = Counter()

        def keep(n: int, what: str) -> bool:
            if n < q.min_n:
                left_out[what] += 1
                return False
            return True

        def mix(counter: Counter) -> Dict[str, Any]:
            n = sum(counter.values())
            return {"n": n, "counts": {label: counter.get(label, 0) for label in MIX_LABELS if counter.get(label)},
                    "shares": {label: round(counter.get(label, 0) / n, 4) for label in MIX_LABELS if counter.get(label)}}

        over_time = [{"bucket": b, **mix(c), "valence": self.valence_time[b].figures() if b in self.valence_time else None}
                     for b, c in sorted(self.mix_time.items()) if keep(sum(c.values()), "time buckets")]
        by_source = [{"source": s, **mix(c)} for s, c in sorted(self.mix_source.items(), key=lambda kv: -sum(kv[1].values()))
                     if keep(sum(c.values()), "sources")]
        intents = []
        for intent, counter in self.intent_mix.items():
            if keep(sum(counter.values()), "intents"):
                valence = self.intent_valence.get(intent)
                intents.append({"intent": intent, **mix(counter), "valence": valence.figures() if valence else None})
        intents.sort(key=lambda r: (r["valence"] or {}).get("mean", 0.0))
        actions = []
        for name, stats in self.action_change.items():
            if keep(stats.n, "actions"):
                examples = self.action_examples[name]
                actions.append({"action": name, "valence_change": stats.figures(),
                                "worst_examples": [{"sender_id": s, "change": round(c, 4), "replay": f"/replay/{s}"}
                                                   for c, s in examples[:q.examples]],
                                "best_examples": [{"sender_id": s, "change": round(c, 4), "replay": f"/replay/{s}"}
                                                  for c, s in reversed(examples[-q.examples:])]})
        actions.sort(key=lambda r: r["valence_change"]["mean"])
        upset = sorted(self.upset)
        by_rating = [{"rating": int(rating) if rating.is_integer() else rating, "n": self.rating_valence[rating].n,
                      "valence_before": self.rating_valence[rating].figures(), "mix_before": mix(self.rating_mix[rating])}
                     for rating in sorted(self.rating_valence) if keep(self.rating_valence[rating].n, "ratings")]
        r = self.rating_pairs.r() if self.rating_pairs.n >= q.min_n else None
        ratings = {"slot": q.rating_slot, "n": self.rated.n,
                   "mean": round(self.rated.mean, 4) if self.rated.n else None,
                   "without_sensed_turns": self.rated_unsensed,
                   "by_rating": by_rating,
                   "valence_correlation": {"n": self.rating_pairs.n, "r": None if r is None else round(r, 4)}}
        policy = {"stepped_in": self.policy_steps, "after": dict(self.policy_after),
                  "valence_before": self.policy_valence_before.figures() if self.policy_valence_before.n else None,
                  "valence_after": self.policy_valence_after.figures() if self.policy_valence_after.n else None}
        notes = []
        if self.sensed_turns == 0:
            notes.append("no user turn has a sensed emotion: was sensing off (no action_sense_emotion, or the "
                         "service down)? Intents and actions are counted, valence figures are empty")
        if self.problems:
            notes.append("; ".join(f"{n} {what} skipped" for what, n in self.problems.items()))
        return {
            "schema": SCHEMA_VERSION,
            "query": {"since": q.since, "until": q.until, "model_id": q.model_id, "min_n": q.min_n,
                      "upset_valence": q.upset_valence, "bucket": q.bucket},
            "conversations": self.conversations,
            "user_turns": self.turns,
            "sensed_turns": self.sensed_turns,
            "model_ids": dict(self.model_ids.most_common(20)),
            "over_time": over_time,
            "by_source": by_source,
            "intents": intents,
            "actions": {"worse": [a for a in actions if a["valence_change"]["mean"] < 0],
                        "better": [a for a in reversed(actions) if a["valence_change"]["mean"] > 0],
                        "all": actions},
            "policy": policy,
            "ended_upset": {"n": len(upset), "threshold": q.upset_valence,
                            "conversations": [{"sender_id": s, "last_valence": round(v, 4), "user_turns": n,
                                               "last_turn": t, "replay": f"/replay/{s}"} for v, s, n, t in upset[:50]]},
            "ratings": ratings,
            "left_out_below_min_n": dict(left_out),
            "notes": notes,
        }


def parse_when(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """A time given as 2026-12-01, 2026-12-01T14:30 (UTC), or relative: 7d, 24h, 90m ago."""
    if value is None:
        return None
    now = time.time() if now is None else now
    relative = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhm])\s*", value)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return now - amount * {"d": 86400, "h": 3600, "m": 60}[unit]
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return float(calendar.timegm(time.strptime(value.strip(), fmt)))
        except ValueError:
            continue
    raise ValueError(f"cannot read the time {value!r}: use 2026-12-01, 2026-12-01T14:30 (UTC) or 7d / 24h / 90m")


def insights(url: str, query: Query = Query()) -> Dict[str, Any]:
    """Insights over the SQL tracker store at ``url`` (SQLite or PostgreSQL)."""
    reader = TrackerReader(url)
    accumulator = Insights(query)
    any_events = False
    for sender_id, events in reader.iter_conversations(query.since, query.until):
        any_events = True
        accumulator.add(sender_id, events)
    if not any_events and query.since is None and query.until is None:
        raise EmptyStore("the tracker store is empty: no conversation has been stored yet")
    return accumulator.result()


def format_insights(result: Dict[str, Any], top: int = 5) -> str:
    """The terminal summary."""
    lines = [f"{result['conversations']} conversations, {result['user_turns']} user turns "
             f"({result['sensed_turns']} with a sensed emotion); groups under n={result['query']['min_n']} left out"]
    for note in result["notes"]:
        lines.append(f"note: {note}")

    def none_shown(what: str) -> str:
        left_out = result.get("left_out_below_min_n", {}).get(what, 0)
        return (f"  none with n >= {result['query']['min_n']}"
                + (f" ({left_out} {what} with fewer turns left out; --min-n sets the threshold)" if left_out else ""))

    def shares(row: Dict[str, Any]) -> str:
        return ", ".join(f"{label} {share * 100:.0f}%" for label, share in
                         sorted(row["shares"].items(), key=lambda kv: -kv[1])[:4])

    lines.append("\nemotion mix over time")
    for row in result["over_time"][-14:]:
        valence = row["valence"]["mean"] if row["valence"] else None
        lines.append(f"  {row['bucket']:<17} n={row['n']:<6} {shares(row)}"
                     + (f"   valence {valence:+.2f}" if valence is not None else ""))
    if not result["over_time"]:
        lines.append(none_shown("time buckets"))
    lines.append("\nby source")
    for row in result["by_source"]:
        lines.append(f"  {row['source']:<20} n={row['n']:<6} {shares(row)}")
    if not result["by_source"]:
        lines.append(none_shown("sources"))
    lines.append("\nintents, most upset first")
    for row in result["intents"][:top * 2]:
        valence = row["valence"]
        # Turns read unknown (a click, sensing down) have no valence: say of how many the mean is.
        of = f" of {row['n']}" if valence and valence["n"] != row["n"] else ""
        figure = f"valence {valence['mean']:+.2f} (n={valence['n']}{of})" if valence else "not sensed"
        lines.append(f"  {row['intent']:<22} {figure:<29} {shares(row)}")
    if not result["intents"]:
        lines.append(none_shown("intents"))
    for title, rows in (("replies followed by a drop in valence", result["actions"]["worse"]),
                        ("replies followed by a rise in valence", result["actions"]["better"])):
        lines.append(f"\n{title}")
        for row in rows[:top]:
            change = row["valence_change"]
            ci = change["ci95"]
            interval = f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""
            example = (row["worst_examples"] if change["mean"] < 0 else row["best_examples"])[:1]
            lines.append(f"  {row['action']:<28} {change['mean']:+.3f}{interval} n={change['n']}"
                         + (f"  e.g. emobot replay {example[0]['sender_id']}" if example else ""))
        if not rows:
            lines.append(none_shown("actions"))
    policy = result["policy"]
    lines.append(f"\nEmotionPolicy stepped in {policy['stepped_in']} times"
                 + (": " + ", ".join(f"{k} {v}" for k, v in policy["after"].items()) if policy["after"] else ""))
    if policy["valence_before"] and policy["valence_after"]:
        lines.append(f"  valence {policy['valence_before']['mean']:+.2f} when it stepped in, "
                     f"{policy['valence_after']['mean']:+.2f} at the next turn (n={policy['valence_after']['n']})")
    upset = result["ended_upset"]
    lines.append(f"\n{upset['n']} conversations ended upset (last valence <= {upset['threshold']:+.2f})")
    for row in upset["conversations"][:top]:
        lines.append(f"  {row['sender_id']:<30} {row['last_valence']:+.2f} after {row['user_turns']} turns"
                     f"   emobot replay {row['sender_id']}")
    lines.extend(_format_ratings(result, none_shown))
    return "\n".join(lines)


def _format_ratings(result: Dict[str, Any], none_shown) -> List[str]:
    ratings = result.get("ratings") or {}
    slot = ratings.get("slot", "rating")
    if not ratings.get("n"):
        return [f"\nno conversation set the slot {slot!r} to a rating (--rating-slot names another slot)"]
    lines = [f"\nratings (slot {slot!r}): {ratings['n']} conversations rated, mean {ratings['mean']:.2f}"
             + (f"; {ratings['without_sensed_turns']} with no sensed turn before the rating"
                if ratings.get("without_sensed_turns") else "")]
    for row in ratings["by_rating"]:
        valence = row["valence_before"]
        ci = valence["ci95"]
        interval = f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""
        shares = ", ".join(f"{label} {share * 100:.0f}%" for label, share in
                           sorted(row["mix_before"]["shares"].items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"  rated {row['rating']:g}   n={row['n']:<5} valence before {valence['mean']:+.2f}{interval}   {shares}")
    if not ratings["by_rating"]:
        lines.append(none_shown("ratings"))
    correlation = ratings["valence_correlation"]
    if correlation["r"] is not None:
        lines.append(f"  rating against the mean valence sensed before it: r = {correlation['r']:+.2f} (n={correlation['n']})")
    return lines
