"""`emobot bench text`: how long the text recognizer takes per message, on one core."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from emotion_sensing.machine import machine, pin_to_one_core
from emotion_sensing.speech.bench import _summary

Printer = Callable[[str], None]
TARGET_P95_MS = 10.0
# Support-chat messages of the lengths people type (1 to ~40 tokens).
MESSAGES = (
    "ok",
    "yes please",
    "where is my order?",
    "Where is my order? It's number 12345.",
    "can I talk to a person?",
    "I'm furious, my order never arrived and nobody answers",
    "I'm so sad, the gift I ordered for my mum is broken",
    "thanks, that's great news!",
    "I want a refund for the blender, it stopped working after two days and I am really disappointed",
    "This is the third time I am writing to you about the same problem and still nobody has called me "
    "back, I have been a customer for ten years and this is how you treat me?",
)


def bench_text(model_path: Path, rounds: int = 40, log: Optional[Printer] = print) -> Dict[str, Any]:
    """Milliseconds per message (tokenise, encode, classify, VADER) after warm-up, on one core
    and one thread; the figure a turn pays when the text is read in the turn."""
    from emotion_sensing.text.recognizer import TextRecognizer

    cpu = pin_to_one_core()
    started = time.perf_counter()
    recognizer = TextRecognizer(model_path, threads=1)
    load_s = time.perf_counter() - started
    if not recognizer.has_classifier:
        raise FileNotFoundError(recognizer.unavailable or f"no text model at {model_path}")
    tokens = {m: recognizer.classifier.token_count(m) for m in MESSAGES}
    for message in MESSAGES:
        recognizer.read(message)
    whole: List[float] = []
    encoder: List[float] = []
    by_length: Dict[str, List[float]] = {}
    for _ in range(rounds):
        for message in MESSAGES:
            t0 = time.perf_counter()
            recognizer.classifier.probabilities(message)
            t1 = time.perf_counter()
            recognizer.read(message)
            t2 = time.perf_counter()
            encoder.append((t1 - t0) * 1000)
            whole.append((t2 - t1) * 1000)
            by_length.setdefault(str(tokens[message]), []).append((t2 - t1) * 1000)
    result = {
        "machine": machine(),
        "cores": 1 if cpu is not None else None,
        "threads": 1,
        "model": str(model_path),
        "members": recognizer.classifier.size,
        "load_s": round(load_s, 2),
        "messages": len(MESSAGES),
        "read_ms": _summary(whole),
        "encoder_ms": _summary(encoder),
        "read_ms_by_tokens": {k: _summary(v) for k, v in sorted(by_length.items(), key=lambda kv: int(kv[0]))},
        "target_p95_ms": TARGET_P95_MS,
    }
    if log:
        log(f"text reading on one core: p50 {result['read_ms']['p50']:.2f} ms, p95 {result['read_ms']['p95']:.2f} ms "
            f"({len(whole)} messages of 1-{max(tokens.values())} tokens, {result['members']} encoder pass(es) each; "
            f"target p95 <= {TARGET_P95_MS:g} ms)")
    return result
