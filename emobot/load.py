"""`emobot bench load`: many conversations at once against the real stack, on loopback.

Each simulated conversation does what the chat page does with both switches on: it opens
the emotion service's WebSocket stream for its session, sends JPEG frames at ``fps`` and
16 kHz PCM16 audio in 100 ms chunks in real time, and every ``message_every_s`` seconds
sends a message to Rasa's REST channel (which senses through the action server and the
service, as every turn does). Frames are sent on the clock, not when the previous one has
been answered, so a service that falls behind must drop them.

Measured: every turn's latency (p50/p95/max) and whether it was answered, failed requests
of any kind, frames sent / analysed / dropped by the service, voice readings, the service's
resident memory (RSS) sampled through the run, and afterwards how many turns the tracker
shows sensed as ``unknown``. Bounded in conversations, time and loopback addresses; the
run stops by itself.
"""
from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlparse

import numpy as np

from emotion_sensing.config import is_loopback

MAX_CONVERSATIONS = 500
MAX_SECONDS = 1800.0
SAMPLE_RATE = 16_000
CHUNK_S = 0.1
FRAME_TYPE, AUDIO_TYPE = b"\x01", b"\x02"
# Said by the simulated users, in turn (each conversation starts at its own place). Like
# bench.BENCH_MESSAGES but without asking for a person: a load run's conversations keep going.
MESSAGES = (
    "hi there",
    "where is my order?",
    "I'm furious, my order never arrived and nobody answers",
    "I'm so sad, the gift I ordered for my mum is broken",
    "I want a refund",
    "thanks, that's great news!",
    "how are you?",
    "bye",
)
Log = Optional[Callable[[str], None]]


class LoadError(RuntimeError):
    """The load cannot be run as asked (non-loopback target, bounds, missing frame)."""


def _check_target(url: str) -> None:
    host = urlparse(url).hostname or ""
    if not is_loopback(host):
        raise LoadError(f"{url}: the load generator only targets loopback addresses (127.0.0.1, localhost)")


def face_jpeg(path: Optional[Path] = None, width: int = 640, height: int = 480) -> bytes:
    """A 640x480 JPEG with one real face: ``path``, else scikit-image's astronaut photo."""
    import cv2

    if path is not None:
        image = cv2.imread(str(path))
        if image is None:
            raise LoadError(f"{path}: not an image OpenCV can read")
    else:
        try:
            from skimage.data import astronaut
        except ImportError:
            raise LoadError("no frame to send: give --frame FILE (a photo with a face), or install "
                            "scikit-image for its astronaut photo") from None
        image = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    resized = cv2.resize(image, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def speech_pcm(seconds: float = 4.0) -> bytes:
    """A loop of 16 kHz PCM16: a spoken sentence (espeak-ng) then silence; a voiced
    synthetic stand-in when espeak-ng is missing."""
    samples: Optional[np.ndarray] = None
    espeak = shutil.which("espeak-ng")
    if espeak:
        import soundfile

        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "say.wav"
            done = subprocess.run([espeak, "-w", str(wav), "where is my order, I have been waiting for days"],
                                  capture_output=True, timeout=30)
            if done.returncode == 0 and wav.exists():
                from emotion_sensing.speech.audio import prepare

                data, rate = soundfile.read(wav, dtype="float32")
                samples = prepare(data, rate)
    if samples is None:
        t = np.arange(int(1.6 * SAMPLE_RATE)) / SAMPLE_RATE
        pitch = 140 + 20 * np.sin(2 * np.pi * 3 * t)
        phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
        voiced = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
        samples = (0.3 * voiced / np.abs(voiced).max()).astype(np.float32)
    total = max(int(seconds * SAMPLE_RATE), samples.size + int(1.2 * SAMPLE_RATE))
    loop = np.random.default_rng(0).normal(0, 1e-4, total).astype(np.float32)
    loop[: samples.size] += samples
    return (np.clip(loop, -1, 1) * 32767).astype("<i2").tobytes()


def rss_mb(pid: int) -> Optional[float]:
    """Resident memory of a process in MB (Linux /proc), None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


@dataclass
class Counters:
    frames_sent: int = 0
    frames_skipped: int = 0  # not sent: the socket was still busy sending the previous data
    face_readings: int = 0
    no_face: int = 0
    frames_dropped: int = 0  # the service's "dropped" events
    audio_chunks_sent: int = 0
    voice_readings: int = 0
    rate_limited: int = 0
    stream_errors: Dict[str, int] = field(default_factory=dict)
    turns_sent: int = 0
    turns_answered: int = 0
    failures: List[str] = field(default_factory=list)
    latencies_ms: List[float] = field(default_factory=list)
    turn_times: List[float] = field(default_factory=list)  # when each answered turn was sent (monotonic)
    rss_samples: List[float] = field(default_factory=list)

    def fail(self, what: str) -> None:
        if len(self.failures) < 1000:
            self.failures.append(what)


async def _conversation(number: int, sender: str, urls: Dict[str, str], http, jpeg: bytes, pcm: bytes,
                        fps: float, message_every_s: float, stop_at: float, counters: Counters) -> None:
    import aiohttp

    rng = random.Random(number)
    stream_url = f"{urls['service']}/v1/sessions/{sender}/stream"
    try:
        ws = await http.ws_connect(stream_url, max_msg_size=4 * 1024 * 1024, timeout=5.0)
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        counters.fail(f"{sender}: stream did not open ({type(error).__name__}: {error})")
        return

    async def receive() -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            event = message.json()
            kind = event.get("type")
            if kind == "reading":
                if event.get("reading", {}).get("modality") == "voice":
                    counters.voice_readings += 1
                else:
                    counters.face_readings += 1
            elif kind == "no_face":
                counters.no_face += 1
            elif kind == "dropped":
                counters.frames_dropped += 1
            elif kind == "error":
                code = event.get("code", "?")
                if code == "rate_limited":
                    counters.rate_limited += 1
                counters.stream_errors[code] = counters.stream_errors.get(code, 0) + 1

    async def send_on_clock(payload_for, period: float, counter: str) -> None:
        tick = time.monotonic() + rng.uniform(0, period)
        sending: Optional[asyncio.Task] = None
        i = 0
        while tick < stop_at and not ws.closed:
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            tick += period
            if sending is not None and not sending.done():
                counters.frames_skipped += counter == "frames_sent"
                continue
            sending = asyncio.ensure_future(ws.send_bytes(payload_for(i)))
            i += 1
            setattr(counters, counter, getattr(counters, counter) + 1)
        if sending is not None:
            await asyncio.gather(sending, return_exceptions=True)

    chunk = int(SAMPLE_RATE * CHUNK_S) * 2
    offset = rng.randrange(0, len(pcm) // chunk) * chunk

    def audio(i: int) -> bytes:
        start = (offset + i * chunk) % (len(pcm) - chunk + 1)
        return AUDIO_TYPE + pcm[start:start + chunk]

    async def talk() -> None:
        turn = rng.randrange(len(MESSAGES))
        next_at = time.monotonic() + rng.uniform(0.5, message_every_s)
        while next_at < stop_at:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            message = MESSAGES[turn % len(MESSAGES)]
            turn += 1
            counters.turns_sent += 1
            started, started_at = time.perf_counter(), time.monotonic()
            try:
                async with http.post(urls["rasa"] + "/webhooks/rest/webhook",
                                     json={"sender": sender, "message": message},
                                     timeout=aiohttp.ClientTimeout(total=60)) as response:
                    body = await response.json(content_type=None)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status != 200:
                        counters.fail(f"{sender}: turn {message!r} got HTTP {response.status}")
                    elif not body:
                        counters.fail(f"{sender}: turn {message!r} got no reply")
                    else:
                        counters.turns_answered += 1
                        counters.latencies_ms.append(elapsed)
                        counters.turn_times.append(started_at)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                counters.fail(f"{sender}: turn {message!r} failed ({type(error).__name__}: {error})")
            next_at += message_every_s

    receiver = asyncio.ensure_future(receive())
    try:
        await asyncio.gather(
            send_on_clock(lambda i: FRAME_TYPE + jpeg, 1.0 / fps, "frames_sent") if fps > 0 else asyncio.sleep(0),
            send_on_clock(audio, CHUNK_S, "audio_chunks_sent"),
            talk(),
        )
        await asyncio.sleep(1.0)  # the last answers
    except (aiohttp.ClientError, ConnectionError) as error:
        counters.fail(f"{sender}: stream broke ({type(error).__name__}: {error})")
    finally:
        if ws.closed and ws.close_code not in (None, 1000):
            counters.fail(f"{sender}: the service closed the stream (code {ws.close_code})")
        await ws.close()
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)


async def _unknown_turns(http, rasa_url: str, senders: List[str]) -> Dict[str, int]:
    """How many user turns the trackers show sensed as ``unknown`` (the service did not answer in time)."""
    counts = {"turns": 0, "unknown": 0}
    for sender in senders:
        async with http.get(f"{rasa_url}/conversations/{sender}/tracker") as response:
            if response.status != 200:
                continue
            events = (await response.json()).get("events", [])
        for event in events:
            if event.get("event") == "slot" and event.get("name") == "user_emotion":
                counts["turns"] += 1
                counts["unknown"] += event.get("value") == "unknown"
    return counts


async def _run(urls: Dict[str, str], conversations: int, seconds: float, fps: float, message_every_s: float,
               service_pid: Optional[int], jpeg: bytes, pcm: bytes, log: Log) -> Dict[str, Any]:
    import aiohttp

    from emobot.bench import percentile

    counters = Counters()
    run_id = uuid.uuid4().hex[:6]
    senders = [f"load-{run_id}-{i}" for i in range(conversations)]
    rss_start = rss_mb(service_pid) if service_pid else None
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.monotonic()
        stop_at = started + seconds

        async def watch() -> None:
            while time.monotonic() < stop_at:
                await asyncio.sleep(5.0)
                if service_pid and (rss := rss_mb(service_pid)) is not None:
                    counters.rss_samples.append(rss)
                if log:
                    done = time.monotonic() - started
                    p95 = percentile(counters.latencies_ms, 95) if counters.latencies_ms else float("nan")
                    log(f"  {done:4.0f}/{seconds:.0f} s  turns {counters.turns_answered}/{counters.turns_sent}  "
                        f"p95 {p95:.0f} ms  frames {counters.frames_sent} (dropped {counters.frames_dropped})  "
                        f"voice readings {counters.voice_readings}  failures {len(counters.failures)}")

        watcher = asyncio.ensure_future(watch())
        await asyncio.gather(*(
            _conversation(i, sender, urls, http, jpeg, pcm, fps, message_every_s, stop_at, counters)
            for i, sender in enumerate(senders)))
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        elapsed = time.monotonic() - started
        sensed = await _unknown_turns(http, urls["rasa"], senders)
    rss_end = rss_mb(service_pid) if service_pid else None
    latencies = counters.latencies_ms
    windows = []  # p95 per 30 s of the run: does latency drift as conversations grow?
    for start in range(0, int(seconds), 30):
        inside = [ms for ms, t in zip(latencies, counters.turn_times) if start <= t - started < start + 30]
        if inside:
            windows.append({"from_s": start, "turns": len(inside), "p95_ms": round(percentile(inside, 95), 1)})
    analysed = counters.face_readings + counters.no_face
    return {
        "conversations": conversations,
        "seconds": round(elapsed, 1),
        "fps_per_conversation": fps,
        "message_every_s": message_every_s,
        "turns": {
            "sent": counters.turns_sent,
            "answered": counters.turns_answered,
            "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
            "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None,
            "sensed_unknown": sensed["unknown"],
            "sensed": sensed["turns"],
            "p95_by_30s": windows,
        },
        "frames": {
            "sent": counters.frames_sent,
            "analysed": analysed,
            "with_face": counters.face_readings,
            "dropped_by_service": counters.frames_dropped,
            "rate_limited": counters.rate_limited,
            "not_sent_socket_busy": counters.frames_skipped,
            "analysed_per_s": round(analysed / elapsed, 1) if elapsed else None,
        },
        "audio": {"chunks_sent": counters.audio_chunks_sent, "voice_readings": counters.voice_readings},
        "stream_errors": counters.stream_errors,
        "failed_requests": len(counters.failures),
        "failures": counters.failures[:20],
        "service_rss_mb": {
            "start": rss_start, "end": rss_end,
            "peak": max(counters.rss_samples + [v for v in (rss_start, rss_end) if v is not None], default=None),
            "samples": counters.rss_samples,
        },
    }


def run_load(rasa_url: str, service_url: str, conversations: int = 50, seconds: float = 120.0, fps: float = 5.0,
             message_every_s: float = 5.0, service_pid: Optional[int] = None, frame: Optional[Path] = None,
             log: Log = print) -> Dict[str, Any]:
    """Load a running stack (Rasa's REST channel and the emotion service, both on loopback)."""
    if not 1 <= conversations <= MAX_CONVERSATIONS:
        raise LoadError(f"conversations must be 1..{MAX_CONVERSATIONS}")
    if not 1 <= seconds <= MAX_SECONDS:
        raise LoadError(f"seconds must be 1..{MAX_SECONDS:.0f}")
    if fps < 0 or fps > 30 or message_every_s < 0.5:
        raise LoadError("fps must be 0..30 and message_every_s at least 0.5")
    for url in (rasa_url, service_url):
        _check_target(url)
    jpeg, pcm = face_jpeg(frame), speech_pcm()
    if log:
        log(f"{conversations} conversations for {seconds:.0f} s: {fps:g} frames/s and real-time audio each, "
            f"a message every {message_every_s:g} s")
    return asyncio.run(_run({"rasa": rasa_url.rstrip("/"), "service": service_url.rstrip("/")}, conversations,
                            seconds, fps, message_every_s, service_pid, jpeg, pcm, log))


def bench_load(conversations: List[int], seconds: float = 120.0, fps: float = 5.0, message_every_s: float = 5.0,
               frame: Optional[Path] = None, p95_limit_ms: float = 500.0, warmup_s: float = 20.0,
               log: Log = print) -> Dict[str, Any]:
    """Start the stack on free loopback ports and run :func:`run_load` once per count in
    ``conversations`` (one stack, fresh conversations each time); report each run and the
    largest count whose p95 turn latency stayed under ``p95_limit_ms`` with nothing failed.

    A short unreported warm-up run comes first, so the first run's memory figures start
    after the recognizers' one-off allocations (librosa's compiled kernels, TFLite arenas).
    """
    from emobot.stack import Stack

    runs = []
    with tempfile.TemporaryDirectory(prefix="emobot-load-") as tmp:
        stack = Stack.on_free_ports(Path(tmp))
        if log:
            log("starting the stack (about a minute)...")
        stack.start(timeout=240, progress=log)
        try:
            service = next(p for p in stack.processes if p.name == "emotion service")
            if warmup_s > 0:
                if log:
                    log(f"warming up for {warmup_s:.0f} s (not reported)...")
                run_load(stack.settings.rasa_url, stack.settings.service_listen_url, min(5, max(conversations)),
                         warmup_s, fps, message_every_s, frame=frame, log=None)
            for count in conversations:
                result = run_load(stack.settings.rasa_url, stack.settings.service_listen_url, count, seconds, fps,
                                  message_every_s, service_pid=service.popen.pid, frame=frame, log=log)
                runs.append(result)
                if log:
                    t = result["turns"]
                    log(f"N={count}: p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms, {t['answered']}/{t['sent']} answered, "
                        f"{result['failed_requests']} failed, frames dropped {result['frames']['dropped_by_service']}"
                        f"/{result['frames']['sent']}, service RSS {result['service_rss_mb']['start']} -> "
                        f"{result['service_rss_mb']['end']} MB")
        finally:
            stack.stop()
    passing = [r["conversations"] for r in runs
               if r["failed_requests"] == 0 and r["turns"]["answered"] == r["turns"]["sent"]
               and r["turns"]["p95_ms"] is not None and r["turns"]["p95_ms"] < p95_limit_ms]
    return {"bench": "load", "unit": "ms", "channel": "rest", "p95_limit_ms": p95_limit_ms, "runs": runs,
            "largest_conversations_under_p95_limit": max(passing) if passing else None}
