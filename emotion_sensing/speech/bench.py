"""``emobot bench speech``: how long a voice reading and a transcript take on one core."""
from __future__ import annotations

import functools
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from emotion_sensing.machine import machine, pin_to_one_core, rss_mb
from emotion_sensing.speech.audio import SAMPLE_RATE, load

Printer = Callable[[str], None]
UTTERANCE_S = 3.0
TARGET_MS = 30
SENTENCE = "I have been waiting for my parcel for two weeks and nobody answers my emails"


def _summary(times_ms: List[float]) -> Dict[str, float]:
    ordered = sorted(times_ms)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))], 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }


def spoken_sentence(text: str = SENTENCE) -> Optional[np.ndarray]:
    """``text`` spoken by espeak-ng (16 kHz mono float), or None without espeak-ng."""
    if shutil.which("espeak-ng") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sentence.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True, timeout=60)
        return load(path)


def synthetic_voice(seconds: float = UTTERANCE_S, seed: int = 0) -> np.ndarray:
    """A voice-like test signal: harmonics of a gliding pitch, syllable-rate loudness, breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    return (0.1 * envelope * voice + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def _utterance(seconds: float) -> Tuple[np.ndarray, str]:
    """A ``seconds``-long test utterance: espeak-ng speech looped to length, else synthetic."""
    speech = spoken_sentence()
    if speech is None:
        return synthetic_voice(seconds), "synthetic voice-like signal"
    n = int(seconds * SAMPLE_RATE)
    return np.resize(speech, n).astype(np.float32), "espeak-ng speech"


def bench_speech(model_path: Path, runs: int = 50, transcripts: int = 5, log: Printer = print) -> Dict[str, Any]:
    """Milliseconds to featurise and classify a 3 s utterance after warm-up, and transcript time."""
    from emotion_sensing.speech.features import frame_features, summarise
    from emotion_sensing.speech.recognizer import VoiceRecognizer
    from emotion_sensing.speech.vector import EXTRA_BLOCKS, Featuriser, voiced_span

    cpu = pin_to_one_core()
    samples, source = _utterance(UTTERANCE_S)
    recognizer = VoiceRecognizer(model_path)
    log("warming up (librosa compiles with numba on its first call; openSMILE and Whisper load)...")
    rss_before = rss_mb()
    started = time.perf_counter()
    recognizer.warm_up()
    warm_up_s = time.perf_counter() - started
    for _ in range(3):
        recognizer.read(samples, speaker=recognizer.new_speaker())
    rss_warm = rss_mb()
    featurise, classify, total = [], [], []
    for _ in range(runs):
        speaker = recognizer.new_speaker()
        t0 = time.perf_counter()
        utterance = recognizer.featuriser(samples)
        t1 = time.perf_counter()
        recognizer.read_utterance(utterance, speaker)
        t2 = time.perf_counter()
        featurise.append((t1 - t0) * 1000)
        classify.append((t2 - t1) * 1000)
        total.append((t2 - t0) * 1000)
    # What each feature block costs alone, on the same utterance.
    featuriser = recognizer.featuriser
    span = voiced_span(frame_features(samples), samples)
    block_costs = {"librosa": lambda: summarise(frame_features(samples))}
    for block in featuriser.blocks:
        if block != "librosa":
            block_costs[block] = functools.partial(featuriser.block, block, span)
    # Beside them, what the extra blocks the model does not read would cost (measured in the
    # comparison: vector.py).
    extras = [block for block in EXTRA_BLOCKS if block not in featuriser.blocks]
    spare = Featuriser(extras)
    for block in extras:
        block_costs[block] = functools.partial(spare.block, block, span)
    blocks_ms = {}
    for block, compute in block_costs.items():
        times = []
        for _ in range(max(5, runs // 2)):
            t0 = time.perf_counter()
            compute()
            times.append((time.perf_counter() - t0) * 1000)
        blocks_ms[block] = _summary(times)
    result: Dict[str, Any] = {
        "utterance_s": UTTERANCE_S,
        "audio": source,
        "cores": 1 if cpu is not None else None,
        "warm_up_s": round(warm_up_s, 2),
        # What loading the model and its feature extractors and reading three utterances added to
        # this process's resident memory (None where /proc cannot be read).
        "memory_mb": {"before": rss_before, "warm": rss_warm,
                      "added": round(rss_warm - rss_before, 1) if rss_before is not None and rss_warm is not None else None},
        "featurise_ms": _summary(featurise),
        "classify_ms": _summary(classify),
        "featurise_classify_ms": _summary(total),
        "blocks": list(recognizer.model.blocks),
        "machine": machine(),
        "block_ms": {b: ms for b, ms in blocks_ms.items() if b not in extras},
        "extra_block_ms": {b: blocks_ms[b] for b in extras},
        "target_ms": TARGET_MS,
        "classifier": recognizer.model.meta.get("label"),
    }
    log(f"featurise + classify: p50 {result['featurise_classify_ms']['p50']:.1f} ms")
    speech = spoken_sentence()
    if speech is None:
        result["transcript_ms"] = None
        result["transcript_note"] = "espeak-ng not installed: no speech to transcribe"
        return result
    from emotion_sensing.speech.transcribe import Transcriber, TranscriptionUnavailable

    transcriber = Transcriber(cpu_threads=1)
    try:
        rss_before = rss_mb()
        started = time.perf_counter()
        transcriber.load()
        load_s = time.perf_counter() - started
        rss_loaded = rss_mb()
        text = transcriber.transcribe(speech).text
        times = [transcriber.transcribe(speech).seconds * 1000 for _ in range(transcripts)]
    except TranscriptionUnavailable as error:
        result["transcript_ms"] = None
        result["transcript_note"] = str(error)
        return result
    result.update(
        transcript_engine=transcriber.engine,
        transcript_window_s=transcriber.window_s,
        transcript_load_s=round(load_s, 2),
        transcript_load_mb=round(rss_loaded - rss_before, 1) if rss_before is not None and rss_loaded is not None else None,
        transcript_audio_s=round(speech.size / SAMPLE_RATE, 2),
        transcript_ms=_summary(times),
        transcript_text=text,
    )
    log(f"transcript: p50 {result['transcript_ms']['p50']:.0f} ms for {result['transcript_audio_s']} s of speech")
    return result
