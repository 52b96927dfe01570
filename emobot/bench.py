"""`emobot bench`: speed figures, as JSON, measured on the real stack."""
from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import requests

from emobot.stack import Stack, free_port

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
    result: Dict[str, Any] = {"bench": "turn", "unit": "ms", "channel": "rest", "turns": turns}
    for name, values in samples.items():
        result[name] = _summary(values)
    result["sensing_overhead_p50_ms"] = round(result["with_sensing"]["p50_ms"] - result["without_sensing"]["p50_ms"], 2)
    result["sensing_overhead_p95_ms"] = round(result["with_sensing"]["p95_ms"] - result["without_sensing"]["p95_ms"], 2)
    return result
