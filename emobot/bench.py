"""`emobot bench`: speed figures, as JSON, measured on the real stack (turn) and on a
stored conversation (replay)."""
from __future__ import annotations

import random
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import requests

from emobot.stack import Stack, free_port
from emotion_sensing.machine import machine

BENCH_MESSAGES = (
    "hi there",
    "where is my order?",
    "I'm furious, my order never arrived and nobody answers",
    "I'm so sad, the gift I ordered for my mum is broken",
    "I want a refund",
    "thanks, that's great news!",
    "can I talk to a human?",
    "bye",
)


def percentile(values: List[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _summary(samples_ms: List[float]) -> Dict[str, float]:
    return {
        "n": len(samples_ms),
        "p50_ms": round(percentile(samples_ms, 50), 2),
        "p95_ms": round(percentile(samples_ms, 95), 2),
        "mean_ms": round(statistics.fmean(samples_ms), 2),
    }


def bench_turn(turns: int = 200, warmup: int = 16, log: Optional[Callable[[str], None]] = print) -> Dict[str, Any]:
    """p50/p95 of a full user turn through the REST channel, with and without sensing.

    Two Rasa servers load the same model in one run: one with the action server (which
    senses emotion through the service), one with no action endpoint, so its slot
    mapping is skipped. Requests alternate between them so both see the same machine load.
    """
    with tempfile.TemporaryDirectory(prefix="emobot-bench-") as tmp:
        sensing = Stack.on_free_ports(Path(tmp) / "sensing")
        baseline = Stack(
            settings=replace(sensing.settings, rasa_port=free_port()),
            run_dir=Path(tmp) / "baseline",
            tracker_db=Path(tmp) / "baseline" / "tracker.db",
            components=("rasa",),
        )
        if log:
            log("starting the stack and a baseline Rasa (about a minute)...")
        sensing.start(progress=log)
        try:
            baseline.start(progress=log)
            try:
                http = requests.Session()
                samples: Dict[str, List[float]] = {"with_sensing": [], "without_sensing": []}
                urls = {
                    "with_sensing": f"{sensing.settings.rasa_url}/webhooks/rest/webhook",
                    "without_sensing": f"{baseline.settings.rasa_url}/webhooks/rest/webhook",
                }
                for i in range(warmup + turns):
                    message = BENCH_MESSAGES[i % len(BENCH_MESSAGES)]
                    order = list(urls.items()) if i % 2 == 0 else list(reversed(urls.items()))
                    for name, url in order:
                        started = time.perf_counter()
                        response = http.post(url, json={"sender": f"bench-{i // 8}", "message": message}, timeout=30)
                        elapsed = (time.perf_counter() - started) * 1000
                        response.raise_for_status()
                        if not response.json():
                            raise RuntimeError(f"{name}: no reply to {message!r}")
                        if i >= warmup:
                            samples[name].append(elapsed)
                    if log and i and i % 50 == 0:
                        log(f"  {i}/{warmup + turns} turns")
            finally:
                baseline.stop()
        finally:
            sensing.stop()
    result: Dict[str, Any] = {"bench": "turn", "unit": "ms", "channel": "rest", "machine": machine(), "turns": turns}
    for name, values in samples.items():
        result[name] = _summary(values)
    result["sensing_overhead_p50_ms"] = round(result["with_sensing"]["p50_ms"] - result["without_sensing"]["p50_ms"], 2)
    result["sensing_overhead_p95_ms"] = round(result["with_sensing"]["p95_ms"] - result["without_sensing"]["p95_ms"], 2)
    result["fusion"] = fusion_cost()
    return result


def fusion_cost(repeats: int = 2000) -> Dict[str, Any]:
    """What fusing one turn costs in the service, in process: a session holding a message, 60 face
    readings (the last 20 s at 3 a second), 3 voice readings and the previous turn's mood, fused by
    the shipped (learned) model and by the hand-set weights."""
    from emotion_sensing.config import Settings
    from emotion_sensing.fusion import FusionConfig, fuse
    from emotion_sensing.labels import LABELS
    from emotion_sensing.reading import Reading

    now = time.time()
    rng = random.Random(0)

    def probs() -> tuple:
        raw = [rng.random() for _ in LABELS]
        return tuple(v / sum(raw) for v in raw)

    readings = [Reading("text", probs(), 0.8, timestamp=now)]
    readings += [Reading("face", probs(), 0.7, timestamp=now - i / 3) for i in range(60)]
    readings += [Reading("voice", probs(), 0.6, timestamp=now - 4 * i) for i in range(3)]
    shipped = Settings.from_env().fusion
    mood = fuse(readings, now=now - 10, config=shipped)
    out: Dict[str, Any] = {"readings": len(readings), "unit": "ms"}
    for name, config in (("shipped", shipped), ("hand_set", FusionConfig())):
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            fuse(readings, now=now, config=config, mood=mood)
            samples.append((time.perf_counter() - started) * 1000)
        out[name] = {"p50_ms": round(percentile(samples, 50), 4), "p95_ms": round(percentile(samples, 95), 4)}
    out["shipped"]["model"] = shipped.model.kind if shipped.model is not None else "hand-set (no models/fusion.json)"
    return out


def _replay_turn_events(number: int, start: float) -> List[Dict[str, Any]]:
    """One user turn as Rasa stores it: the message, the five emotion slots, a reply."""
    from emotion_sensing.labels import LABELS

    label = LABELS[number % len(LABELS)]
    probs = {name: (0.9 if name == label else round(0.1 / (len(LABELS) - 1), 4)) for name in LABELS}
    text = BENCH_MESSAGES[number % len(BENCH_MESSAGES)]
    t = start + number * 10.0
    intents = ["order_status", "complaint", "refund", "thanks", "greet", "goodbye", "affirm", "deny", "human_handoff", "out_of_scope"]
    reading = {"label": label, "confidence": 0.9, "valence": -0.5, "arousal": 0.6, "probs": probs,
               "contributions": [{"modality": "text", "share": 0.6, "label": label, "confidence": 0.9, "probs": probs, "n_readings": 1},
                                 {"modality": "face", "share": 0.4, "label": label, "confidence": 0.8, "probs": probs, "n_readings": 30}],
               "sensing": "ok", "elapsed_ms": 3.2}
    meta = {"model_id": "bench", "assistant_id": "emobot-bench"}
    return [
        {"event": "user", "timestamp": t, "metadata": meta, "text": text, "input_channel": "rest",
         "parse_data": {"intent": {"name": intents[number % 10], "confidence": 0.99}, "entities": [], "text": text,
                        "intent_ranking": [{"name": name, "confidence": 0.1} for name in intents]}},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "user_emotion", "value": label},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "emotion_confidence", "value": 0.9},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "emotion_valence", "value": -0.5},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "emotion_arousal", "value": 0.6},
        {"event": "slot", "timestamp": t + 0.01, "metadata": meta, "name": "emotion_reading", "value": reading},
        {"event": "user_featurization", "timestamp": t + 0.02, "metadata": meta, "use_text_for_featurization": False},
        {"event": "action", "timestamp": t + 0.03, "metadata": meta, "name": "utter_order_status", "policy": "RulePolicy",
         "confidence": 1.0},
        {"event": "bot", "timestamp": t + 0.03, "text": "Orders usually arrive within 3-5 business days.",
         "metadata": {**meta, "utter_action": "utter_order_status"}},
        {"event": "action", "timestamp": t + 0.04, "metadata": meta, "name": "action_listen", "policy": "RulePolicy",
         "confidence": 1.0},
    ]


def write_replay_store(path: Path, turns: int, sender_id: str = "bench-replay") -> str:
    """An SQLite tracker store (Rasa's events table) holding one conversation of ``turns`` turns."""
    import json
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
        "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)"
    )
    connection.execute("CREATE INDEX IF NOT EXISTS ix_events_sender_id ON events (sender_id)")
    start = time.time() - turns * 10.0
    rows = [
        (sender_id, e["event"], e["timestamp"], None, e.get("name"), json.dumps(e))
        for number in range(turns) for e in _replay_turn_events(number, start)
    ]
    connection.executemany(
        "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) VALUES (?, ?, ?, ?, ?, ?)", rows
    )
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def _replay_outputs() -> Dict[str, Callable[[str, list], str]]:
    import json

    from emotion_sensing.replay import format_turns
    from emotion_sensing.report import to_csv, to_html

    return {
        "terminal": format_turns,
        "json": lambda sender, turns: json.dumps({"sender_id": sender, "turns": [t.to_dict() for t in turns]}),
        "csv": lambda sender, turns: to_csv(turns),
        "html": to_html,
    }


def bench_replay(turns: int = 200, repeats: int = 10, log: Optional[Callable[[str], None]] = print) -> Dict[str, Any]:
    """Time the replay of one stored conversation of ``turns`` user turns: in process (reading
    the store, then each output: terminal, JSON, CSV, HTML) and as the `emobot replay` command
    a user runs (a fresh Python process, imports included)."""
    import subprocess
    import sys

    from emotion_sensing.replay import TrackerReader, replay, turns_from_events

    sender = "bench-replay"
    outputs = _replay_outputs()
    samples: Dict[str, List[float]] = {"read_store": [], **{name: [] for name in outputs}, "in_process": []}
    with tempfile.TemporaryDirectory(prefix="emobot-bench-") as tmp:
        url = write_replay_store(Path(tmp) / "tracker.db", turns)
        if log:
            log(f"replaying a {turns}-turn conversation {repeats} times in process...")
        replay(sender, url)  # warm-up: imports, SQLAlchemy engine set-up
        for _ in range(repeats):
            began = time.perf_counter()
            replayed = turns_from_events(TrackerReader(url).events(sender))
            samples["read_store"].append((time.perf_counter() - began) * 1000)
            if len(replayed) != turns:
                raise RuntimeError(f"replayed {len(replayed)} turns of {turns}")
            for name, render in outputs.items():
                started = time.perf_counter()
                render(sender, replayed)
                samples[name].append((time.perf_counter() - started) * 1000)
            samples["in_process"].append((time.perf_counter() - began) * 1000)
        commands = {
            "command_terminal": [sys.executable, "-m", "emobot", "replay", sender, "--store", url],
            "command_html": [sys.executable, "-m", "emobot", "replay", sender, "--store", url,
                             "--html", str(Path(tmp) / "report.html")],
        }
        for name, command in commands.items():
            samples[name] = []
            for _ in range(max(1, repeats // 3)):
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True)
                samples[name].append((time.perf_counter() - started) * 1000)
                if done.returncode != 0:
                    raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-500:]}")
            if log:
                log(f"  {name}: {samples[name][-1]:.0f} ms")
    result: Dict[str, Any] = {"bench": "replay", "unit": "ms", "machine": machine(), "store": "sqlite", "turns": turns,
                              "repeats": repeats}
    for name, values in samples.items():
        result[name] = {"p50_ms": round(percentile(values, 50), 2), "max_ms": round(max(values), 2), "n": len(values)}
    return result
