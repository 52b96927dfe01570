"""`emobot bench insights`: a generated tracker store of many conversations, and how long
`emobot insights` takes over it and how much memory it needs (SQLite or PostgreSQL)."""
from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from emotion_sensing.labels import VALENCE
from emotion_sensing.machine import machine
from emotion_sensing.slots import CLICK_UNSENSED

Printer = Callable[[str], None]
# (intent, reply action, emotions people arrive with and their weights)
SCENES = [
    ("greet", "utter_greet", {"neutral": 6, "happy": 3}),
    ("order_status", "utter_order_status", {"neutral": 5, "angry": 2, "sad": 1}),
    ("complaint", "utter_complaint", {"angry": 5, "disgust": 1, "sad": 2, "neutral": 1}),
    ("refund", "utter_refund", {"neutral": 3, "sad": 2, "angry": 2}),
    ("thanks", "utter_thanks", {"happy": 6, "neutral": 2}),
    ("human_handoff", "utter_handoff", {"angry": 3, "neutral": 3}),
    ("goodbye", "utter_goodbye", {"neutral": 4, "happy": 2, "angry": 1}),
]
MODEL_IDS = ("model-a1", "model-b2")


def _turn(rng: random.Random, number: int, t: float, intent: str, action: str, label: str,
          model_id: str, source: Tuple[str, ...], policy_steps_in: bool) -> List[Dict[str, Any]]:
    meta = {"model_id": model_id, "assistant_id": "emobot-demo"}
    valence = max(-1.0, min(1.0, VALENCE[label] + rng.uniform(-0.25, 0.25)))
    contributions = [{"modality": "text", "label": label, "share": 0.6, "confidence": 0.8}]
    contributions += [{"modality": "face" if s == "camera" else "voice", "label": label, "share": 0.2,
                       "confidence": 0.7} for s in source]
    reading = {"label": label, "confidence": 0.8, "valence": valence, "arousal": 0.5, "probs": {label: 0.8},
               "contributions": contributions, "sensing": "ok"}
    events = [
        {"event": "user", "timestamp": t, "text": f"message {number}", "metadata": {
            **meta, "emobot": {"session_id": "x", "source": "web", "camera": "camera" in source,
                               "microphone": "microphone" in source}},
         "parse_data": {"intent": {"name": intent, "confidence": 0.95}, "entities": []}, "input_channel": "rest"},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "user_emotion", "value": label},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "emotion_valence", "value": valence},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "emotion_reading", "value": reading},
        {"event": "action", "timestamp": t + 0.02, "metadata": meta, "name": action, "policy": "RulePolicy",
         "confidence": 1.0},
        {"event": "bot", "timestamp": t + 0.02, "text": f"reply {action}", "metadata": {**meta, "utter_action": action}},
    ]
    if policy_steps_in:
        events += [{"event": "action", "timestamp": t + 0.03, "metadata": meta, "name": "utter_offer_human",
                    "policy": "policy_3_EmotionPolicy", "confidence": 1.0},
                   {"event": "bot", "timestamp": t + 0.03, "text": "Would you like a person?",
                    "metadata": {**meta, "utter_action": "utter_offer_human"}}]
    events.append({"event": "action", "timestamp": t + 0.04, "metadata": meta, "name": "action_listen",
                   "policy": "RulePolicy", "confidence": 1.0})
    return events


def _rating(t: float, stars: int, model_id: str) -> List[Dict[str, Any]]:
    """A rating button's click: no emotion sensed (a click has no words), the rating slot set."""
    meta = {"model_id": model_id, "assistant_id": "emobot-demo"}
    reading = {"label": "unknown", "confidence": 0.0, "contributions": [], "sensing": CLICK_UNSENSED}
    return [
        {"event": "user", "timestamp": t, "text": f'/rate{{"rating": "{stars}"}}', "metadata": meta,
         "parse_data": {"intent": {"name": "rate", "confidence": 1.0}, "entities": []}, "input_channel": "rest"},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "user_emotion", "value": "unknown"},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "emotion_valence", "value": None},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "emotion_reading", "value": reading},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "rating", "value": str(stars)},
        {"event": "action", "timestamp": t + 0.02, "metadata": meta, "name": "utter_thank_rating",
         "policy": "RulePolicy", "confidence": 1.0},
        {"event": "bot", "timestamp": t + 0.02, "text": "Thank you for the rating",
         "metadata": {**meta, "utter_action": "utter_thank_rating"}},
        {"event": "action", "timestamp": t + 0.03, "metadata": meta, "name": "action_listen", "policy": "RulePolicy",
         "confidence": 1.0},
    ]


def conversations(n: int, seed: int = 0, days: int = 14) -> Iterator[Tuple[str, List[Dict[str, Any]]]]:
    """``n`` Rasa-shaped conversations (2-4 user turns, ~20 events each) over ``days`` days."""
    rng = random.Random(seed)
    start = time.time() - days * 86400
    for c in range(n):
        t = start + rng.random() * days * 86400
        model_id = MODEL_IDS[0] if t < start + days * 86400 / 2 else MODEL_IDS[1]
        source = rng.choice([(), (), ("camera",), ("microphone",), ("camera", "microphone")])
        events: List[Dict[str, Any]] = [{"event": "action", "timestamp": t, "name": "action_session_start",
                                        "policy": None}]
        scenes = [SCENES[0]] * (rng.random() < 0.5) + rng.sample(SCENES[1:6], rng.randint(1, 2)) + [SCENES[6]]
        stepped = False
        felt: List[float] = []
        for number, (intent, action, moods) in enumerate(scenes):
            label = rng.choices(list(moods), weights=list(moods.values()))[0]
            steps_in = not stepped and label in ("angry", "disgust") and number > 0 and rng.random() < 0.5
            stepped |= steps_in
            if number == len(scenes) - 1 and rng.random() < 0.3:  # 30% rate the chat before leaving
                stars = max(1, min(5, round(3 + 2 * sum(felt) / len(felt) + rng.uniform(-1.0, 1.0))))
                events += _rating(t + 10 * number - 5, stars, model_id)
            felt.append(VALENCE[label])
            events += _turn(rng, number, t + 10 * number, intent, action, label, model_id, source, steps_in)
        yield f"bench-{c:06d}", events


def write_store(url: str, n: int, log: Optional[Printer] = None) -> int:
    """Write ``n`` generated conversations into Rasa's ``events`` table at ``url``; returns the events."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    events = sa.Table(
        "events", metadata,
        sa.Column("id", sa.Integer, primary_key=True), sa.Column("sender_id", sa.String(255), nullable=False, index=True),
        sa.Column("type_name", sa.String(255), nullable=False), sa.Column("timestamp", sa.Float),
        sa.Column("intent_name", sa.String(255)), sa.Column("action_name", sa.String(255)), sa.Column("data", sa.Text))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    total, rows = 0, []
    with engine.begin() as connection:
        for number, (sender, stream) in enumerate(conversations(n), 1):
            for event in stream:
                intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
                rows.append({"sender_id": sender, "type_name": event["event"], "timestamp": event["timestamp"],
                             "intent_name": intent, "action_name": event.get("name"), "data": json.dumps(event)})
            if len(rows) >= 20_000:
                connection.execute(events.insert(), rows)
                total += len(rows)
                rows = []
                if log:
                    log(f"  wrote {number:,} of {n:,} conversations")
        if rows:
            connection.execute(events.insert(), rows)
            total += len(rows)
    engine.dispose()
    return total


def bench_insights(conversations_n: int = 10_000, store: Optional[str] = None,
                   log: Optional[Printer] = print) -> Dict[str, Any]:
    """Time and peak memory of `emobot insights --json` (a fresh process, as a user runs it)
    over a generated store of ``conversations_n`` conversations (SQLite in a temporary folder,
    or ``store``, e.g. a PostgreSQL URL, whose events table is replaced)."""
    with tempfile.TemporaryDirectory(prefix="emobot-bench-") as tmp:
        url = store or f"sqlite:///{Path(tmp) / 'tracker.db'}"
        if log:
            log(f"generating {conversations_n:,} conversations...")
        started = time.perf_counter()
        events = write_store(url, conversations_n, log=log)
        generate_s = time.perf_counter() - started
        command = [sys.executable, "-m", "emobot", "insights", "--store", url, "--json"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if done.returncode != 0:
            raise RuntimeError(f"emobot insights failed: {done.stderr[-800:]}")
        result = json.loads(done.stdout)
    return {
        "bench": "insights", "machine": machine(), "store": url.split(":", 1)[0],
        "conversations": conversations_n, "events": events, "generate_s": round(generate_s, 1),
        "insights_s": round(seconds, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_rss_note": None if peak_kb > before else "a child process before this one used more; the figure is an upper bound",
        "user_turns": result["user_turns"], "rated": result["ratings"]["n"], "targets": {"insights_s": 15, "peak_rss_mb": 500},
    }
