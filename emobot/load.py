"""`emobot bench load`: many conversations at once against the real stack, on loopback.

Each simulated conversation does what the chat page does with both switches on: it opens
the emotion service's WebSocket stream for its session, sends JPEG frames at ``fps`` and
16 kHz PCM16 audio in 250 ms chunks (as the page) in real time, and every ``message_every_s`` seconds
sends a message to Rasa's REST channel (which senses through the action server and the
service, as every turn does). Frames keep the page's back-pressure: a frame goes on the
camera's clock once the last one is answered (``frames_on_clock`` sends on every tick
regardless, so a service that falls behind must drop them). Frames and audio chunks are
encoded once, so the generator's own CPU goes to sending; it shares the machine's cores
with the stack, and the result says how much of the machine it took.

Measured: every turn's latency (p50/p95/max) and whether it was answered, failed requests
of any kind, frames sent / analysed / dropped by the service, voice readings, the service's
resident memory (RSS) sampled through the run, the CPU share of each process and of the
generator, and afterwards how many turns the tracker shows sensed as ``unknown``. Bounded in
conversations, time and loopback addresses; the run stops by itself.
"""
from __future__ import annotations

import asyncio
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlparse

import numpy as np

from emobot.bench import BENCH_MESSAGES
from emotion_sensing.config import is_loopback
from emotion_sensing.machine import rss_mb

MAX_CONVERSATIONS = 500
MAX_SECONDS = 1800.0
SAMPLE_RATE = 16_000
# Audio chunk length, as the chat page sends it (web/media.js).
CHUNK_S = 0.25
FRAME_TYPE, AUDIO_TYPE = b"\x01", b"\x02"
# As the chat page: a frame's answer that takes longer than this no longer holds back the next.
FRAME_ANSWER_TIMEOUT_S = 3.0
# The load generator checks its own event loop this often (how late its timers run).
LAG_TICK_S = 0.05
# Said by the simulated users, in turn (each conversation starts at its own place): the
# benchmark's messages, but none asks for a person, so a load run's conversations keep going.
MESSAGES = tuple("how are you?" if text == "can I talk to a human?" else text for text in BENCH_MESSAGES)
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


def _ticks(pid: int) -> Optional[int]:
    """CPU time (user + system) a process has used, in clock ticks; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def run_delay_s(pid: int) -> Optional[float]:
    """Seconds the process's threads have spent runnable but waiting for a CPU (Linux schedstat)."""
    total, found = 0.0, False
    for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(task.read_text().split()[1]) / 1e9
            found = True
        except (OSError, IndexError, ValueError):
            continue
    return total if found else None


def child_pids(pid: int) -> List[int]:
    """The direct children of a process (Linux /proc), e.g. the service's sensing worker."""
    children: List[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(c) for c in task.read_text().split()]
        except (OSError, ValueError):
            continue
    return children


def _child_name(parent: str, pid: int, number: int) -> str:
    """"emotion service: sensing worker" for the service's worker process, else "parent, child N"."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        command = ""
    if "resource_tracker" in command:
        return f"{parent}: multiprocessing resource tracker"
    if "spawn_main" in command:
        return f"{parent}: sensing worker"
    return f"{parent}, child {number + 1}"


class CpuMeter:
    """CPU used by named processes (their children too) and by this load generator itself
    between start and stop, as a share of the whole machine (1.0: every core busy), so a
    figure says who took the CPU."""

    def __init__(self, pids: Dict[str, int]) -> None:
        self.pids = dict(pids)
        for name, pid in list(pids.items()):
            for number, child in enumerate(child_pids(pid)):
                self.pids[_child_name(name, child, number)] = child
        self.tick = os.sysconf("SC_CLK_TCK")
        self.cores = os.cpu_count() or 1
        self.start()

    def start(self) -> None:
        self._wall = time.monotonic()
        self._self = resource.getrusage(resource.RUSAGE_SELF)
        self._before = {name: _ticks(pid) for name, pid in self.pids.items()}
        self._delay = {name: run_delay_s(pid) for name, pid in self.pids.items()}

    def stop(self) -> Dict[str, Any]:
        wall = max(1e-6, time.monotonic() - self._wall)
        used = resource.getrusage(resource.RUSAGE_SELF)
        mine = (used.ru_utime - self._self.ru_utime) + (used.ru_stime - self._self.ru_stime)

        def entry(cpu_s: float) -> Dict[str, float]:
            return {"cpu_s": round(cpu_s, 1), "share_of_machine": round(cpu_s / wall / self.cores, 3)}

        processes = {}
        for name, pid in self.pids.items():
            before, after = self._before.get(name), _ticks(pid)
            if before is not None and after is not None:
                processes[name] = entry((after - before) / self.tick)
                delay_before, delay_after = self._delay.get(name), run_delay_s(pid)
                if delay_before is not None and delay_after is not None:
                    # Runnable but not running: time its threads queued for a core (summed over threads).
                    processes[name]["waited_for_cpu_s"] = round(delay_after - delay_before, 1)
        return {"cores": self.cores, "load_generator": entry(mine), "processes": processes}


@dataclass
class Counters:
    frames_sent: int = 0
    frames_skipped: int = 0  # not sent: the socket was still busy sending the previous data
    frames_held_back: int = 0  # not sent: the last frame was not answered yet (the page's back-pressure)
    utterances_dropped: int = 0  # the service's "dropped" events for voice
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
    loop_lag_ms: List[float] = field(default_factory=list)  # how late the generator's own ticks ran

    def fail(self, what: str) -> None:
        if len(self.failures) < 1000:
            self.failures.append(what)


def _spread(values: List[float]) -> Optional[Dict[str, float]]:
    """p50, p95 and max of ``values`` (ms, one decimal); None when there are none."""
    from emobot.bench import percentile

    if not values:
        return None
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
            "max": round(max(values), 1)}


async def _talk(rng: random.Random, sender: str, urls: Dict[str, str], http, message_every_s: float,
                stop_at: float, counters: Counters) -> None:
    """Send the conversation's messages to Rasa's REST channel on the clock, timing each turn."""
    import aiohttp

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


def stream_messages(jpeg: bytes, pcm: bytes) -> Tuple[bytes, List[bytes]]:
    """The frame and the audio chunks (CHUNK_S each) as stream messages (type byte + payload), made
    once: a run sends hundreds a second and should spend its CPU sending, not copying."""
    chunk = int(SAMPLE_RATE * CHUNK_S) * 2
    return FRAME_TYPE + jpeg, [AUDIO_TYPE + pcm[start:start + chunk]
                               for start in range(0, len(pcm) - chunk + 1, chunk)]


def answers_frame(event: Dict[str, Any]) -> bool:
    """Whether a stream event is the service's answer to a frame (as the chat page's stream.js decides)."""
    kind = event.get("type")
    if kind == "reading":
        return event.get("reading", {}).get("modality") == "face"
    if kind in ("no_face", "dropped"):
        return event.get("modality", "face") == "face"
    return kind == "error" and event.get("modality") != "voice"


async def _conversation(number: int, sender: str, urls: Dict[str, str], http, frame: bytes, chunks: List[bytes],
                        fps: float, message_every_s: float, stop_at: float, counters: Counters,
                        frames_on_clock: bool = False) -> None:
    """One simulated user: camera and microphone on the stream (``chunks`` empty: turns only).

    Frames follow the chat page (web/stream.js): the next frame goes at the next tick of the
    camera clock once the last one is answered (reading, no face or dropped), or after 3 s
    without an answer. ``frames_on_clock``: every tick sends, answered or not (a harsher client)."""
    import aiohttp

    rng = random.Random(number)
    if not chunks:
        await _talk(rng, sender, urls, http, message_every_s, stop_at, counters)
        return
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
                if event.get("modality") == "voice":
                    counters.utterances_dropped += 1
                else:
                    counters.frames_dropped += 1
            elif kind == "error":
                code = event.get("code", "?")
                if code == "rate_limited":
                    counters.rate_limited += 1
                counters.stream_errors[code] = counters.stream_errors.get(code, 0) + 1
            if answers_frame(event):
                frame_sent_at[0] = None

    # When the last frame was sent and not yet answered (the chat page's back-pressure).
    frame_sent_at: List[Optional[float]] = [None]

    async def send_on_clock(payload_for, period: float, counter: str) -> None:
        tick = time.monotonic() + rng.uniform(0, period)
        sending: Optional[asyncio.Task] = None
        i = 0
        frames = counter == "frames_sent"
        while tick < stop_at and not ws.closed:
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            tick += period
            if sending is not None and not sending.done():
                counters.frames_skipped += frames
                continue
            if frames and not frames_on_clock and frame_sent_at[0] is not None \
                    and time.monotonic() - frame_sent_at[0] < FRAME_ANSWER_TIMEOUT_S:
                counters.frames_held_back += 1
                continue
            if frames:
                frame_sent_at[0] = time.monotonic()
            sending = asyncio.ensure_future(ws.send_bytes(payload_for(i)))
            i += 1
            setattr(counters, counter, getattr(counters, counter) + 1)
        if sending is not None:
            await asyncio.gather(sending, return_exceptions=True)

    offset = rng.randrange(len(chunks))

    def audio(i: int) -> bytes:
        return chunks[(offset + i) % len(chunks)]

    receiver = asyncio.ensure_future(receive())
    try:
        await asyncio.gather(
            send_on_clock(lambda i: frame, 1.0 / fps, "frames_sent") if fps > 0 else asyncio.sleep(0),
            send_on_clock(audio, CHUNK_S, "audio_chunks_sent"),
            _talk(rng, sender, urls, http, message_every_s, stop_at, counters),
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


async def _unknown_turns(http, rasa_url: str, senders: List[str]) -> Dict[str, Any]:
    """How many user turns the trackers show sensed as ``unknown``: ``not_sensed``, the sensing
    call did not answer (its budget ran out, the service was down), and ``unsure``, it answered
    and fusion found the evidence too weak (a plain message read by text alone); and how long
    each turn's sensing call took as the action timed it."""
    counts: Dict[str, Any] = {"turns": 0, "unknown": 0, "not_sensed": 0, "call_ms": []}
    for sender in senders:
        async with http.get(f"{rasa_url}/conversations/{sender}/tracker") as response:
            if response.status != 200:
                continue
            events = (await response.json()).get("events", [])
        for event in events:
            if event.get("event") == "slot" and event.get("name") == "user_emotion":
                counts["turns"] += 1
                counts["unknown"] += event.get("value") == "unknown"
            elif event.get("event") == "slot" and event.get("name") == "emotion_reading":
                counts["not_sensed"] += (event.get("value") or {}).get("sensing", "ok") != "ok"
                elapsed = (event.get("value") or {}).get("elapsed_ms")
                if isinstance(elapsed, (int, float)):
                    counts["call_ms"].append(float(elapsed))
    return counts


async def _run(urls: Dict[str, str], conversations: int, seconds: float, fps: float, message_every_s: float,
               service_pid: Optional[int], frame: bytes, chunks: List[bytes], pids: Dict[str, int],
               log: Log, frames_on_clock: bool = False) -> Dict[str, Any]:
    import aiohttp

    from emobot.bench import percentile

    counters = Counters()
    run_id = uuid.uuid4().hex[:6]
    senders = [f"load-{run_id}-{i}" for i in range(conversations)]
    rss_start = rss_mb(service_pid) if service_pid else None
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    meter = CpuMeter(pids)
    async with aiohttp.ClientSession(connector=connector) as http:
        meter.start()
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

        async def lag() -> None:
            # The generator times turns on its own event loop, on the machine's cores: a tick that
            # wakes late says by how much its busy loop (or a core it waited for) delays what it sees.
            while time.monotonic() < stop_at:
                due = time.monotonic() + LAG_TICK_S
                await asyncio.sleep(LAG_TICK_S)
                counters.loop_lag_ms.append(max(0.0, (time.monotonic() - due) * 1000))

        watcher = asyncio.gather(watch(), lag())
        await asyncio.gather(*(
            _conversation(i, sender, urls, http, frame, chunks, fps, message_every_s, stop_at, counters,
                          frames_on_clock)
            for i, sender in enumerate(senders)))
        cpu = meter.stop()
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
        "fps_per_conversation": fps if chunks else 0,
        "streams": bool(chunks),
        "message_every_s": message_every_s,
        # Who used the CPU during the run, the load generator itself included (it shares the cores).
        "cpu": cpu,
        "load_generator_loop_lag_ms": _spread(counters.loop_lag_ms),
        "turns": {
            "sent": counters.turns_sent,
            "answered": counters.turns_answered,
            "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
            "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None,
            "sensed_unknown": sensed["unknown"],
            # ... of which the sensing call did not answer in time (the budget ran out) ...
            "sensed_unknown_not_sensed": sensed["not_sensed"],
            # ... and of which it answered, and fusion found the evidence too weak.
            "sensed_unknown_unsure": max(0, sensed["unknown"] - sensed["not_sensed"]),
            "sensed": sensed["turns"],
            # The sensing action's call to the service, as the action timed it (part of each turn).
            "sensing_call_ms": _spread(sensed["call_ms"]),
            "p95_by_30s": windows,
        },
        "frames": {
            "sent": counters.frames_sent,
            "analysed": analysed,
            "with_face": counters.face_readings,
            "dropped_by_service": counters.frames_dropped,
            "rate_limited": counters.rate_limited,
            "not_sent_socket_busy": counters.frames_skipped,
            "held_back_unanswered": counters.frames_held_back,
            "on_clock": frames_on_clock,
            "analysed_per_s": round(analysed / elapsed, 1) if elapsed else None,
        },
        "audio": {"chunks_sent": counters.audio_chunks_sent, "voice_readings": counters.voice_readings,
                  "utterances_dropped": counters.utterances_dropped},
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
             log: Log = print, streams: bool = True, pids: Optional[Dict[str, int]] = None,
             frames_on_clock: bool = False) -> Dict[str, Any]:
    """Load a running stack (Rasa's REST channel and the emotion service, both on loopback).

    ``streams=False``: messages only, no camera or microphone (what the chat alone costs).
    ``pids``: processes whose CPU use the result reports by name (their children too).
    """
    if not 1 <= conversations <= MAX_CONVERSATIONS:
        raise LoadError(f"conversations must be 1..{MAX_CONVERSATIONS}")
    if not 1 <= seconds <= MAX_SECONDS:
        raise LoadError(f"seconds must be 1..{MAX_SECONDS:.0f}")
    if fps < 0 or fps > 30 or message_every_s < 0.5:
        raise LoadError("fps must be 0..30 and message_every_s at least 0.5")
    for url in (rasa_url, service_url):
        _check_target(url)
    framed, chunks = stream_messages(face_jpeg(frame), speech_pcm()) if streams else (b"", [])
    if log:
        what = f"{fps:g} frames/s and real-time audio each" if streams else "no camera or microphone"
        log(f"{conversations} conversations for {seconds:.0f} s: {what}, a message every {message_every_s:g} s")
    pids = dict(pids or {})
    if service_pid and "emotion service" not in pids:
        pids["emotion service"] = service_pid
    return asyncio.run(_run({"rasa": rasa_url.rstrip("/"), "service": service_url.rstrip("/")}, conversations,
                            seconds, fps, message_every_s, service_pid, framed, chunks, pids, log,
                            frames_on_clock))


def bench_load(conversations: List[int], seconds: float = 120.0, fps: float = 5.0, message_every_s: float = 5.0,
               frame: Optional[Path] = None, p95_limit_ms: float = 500.0, warmup_s: float = 20.0,
               log: Log = print, sensing: bool = True, frames_on_clock: bool = False,
               rasa_workers: Optional[str] = None) -> Dict[str, Any]:
    """Start the stack on free loopback ports and run :func:`run_load` once per count in
    ``conversations`` (one stack, fresh conversations each time); report each run and the
    largest count whose p95 turn latency stayed under ``p95_limit_ms`` with nothing failed.

    A short unreported warm-up run comes first, so the first run's memory figures start
    after the recognizers' one-off allocations (librosa's compiled kernels, TFLite arenas).
    ``sensing=False`` runs the stack with face and voice switched off and sends no frames or
    audio: what Rasa, the actions and text sensing alone cost at each count. ``rasa_workers``
    (a count or ``auto``; default the settings') sets how many Rasa processes serve the chat.
    """
    from dataclasses import replace

    from emobot.stack import Stack
    from emotion_sensing.config import parse_workers
    from emotion_sensing.machine import machine

    runs = []
    with tempfile.TemporaryDirectory(prefix="emobot-load-") as tmp:
        stack = Stack.on_free_ports(Path(tmp))
        if not sensing:
            stack.settings = replace(stack.settings, modalities=("text",))
        if rasa_workers is not None:
            stack.settings = replace(stack.settings, rasa_workers=parse_workers(str(rasa_workers)))
        if log:
            log(f"starting the stack with {stack.settings.rasa_workers} Rasa process(es) (about a minute)...")
        stack.start(timeout=240, progress=log)
        try:
            service = next(p for p in stack.processes if p.name == "emotion service")
            pids = {p.name: p.popen.pid for p in stack.processes}
            if warmup_s > 0:
                if log:
                    log(f"warming up for {warmup_s:.0f} s (not reported)...")
                run_load(stack.settings.rasa_url, stack.settings.service_listen_url, min(5, max(conversations)),
                         warmup_s, fps, message_every_s, frame=frame, log=None, streams=sensing)
            for count in conversations:
                result = run_load(stack.settings.rasa_url, stack.settings.service_listen_url, count, seconds, fps,
                                  message_every_s, service_pid=service.popen.pid, frame=frame, log=log,
                                  streams=sensing, pids=pids, frames_on_clock=frames_on_clock)
                runs.append(result)
                if log:
                    t = result["turns"]
                    log(f"N={count}: p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms, {t['answered']}/{t['sent']} answered, "
                        f"{result['failed_requests']} failed, frames dropped {result['frames']['dropped_by_service']}"
                        f"/{result['frames']['sent']}, service RSS {result['service_rss_mb']['start']} -> "
                        f"{result['service_rss_mb']['end']} MB, load generator "
                        f"{result['cpu']['load_generator']['share_of_machine']:.0%} of the machine"
                        f" (its timers p95 {(result['load_generator_loop_lag_ms'] or {}).get('p95')} ms late)")
        finally:
            stack.stop()
    passing = [r["conversations"] for r in runs
               if r["failed_requests"] == 0 and r["turns"]["answered"] == r["turns"]["sent"]
               and r["turns"]["p95_ms"] is not None and r["turns"]["p95_ms"] < p95_limit_ms]
    return {"bench": "load", "unit": "ms", "channel": "rest", "machine": machine(), "sensing": sensing,
            "rasa_workers": stack.settings.rasa_workers,
            "frames_on_clock": frames_on_clock,
            "p95_limit_ms": p95_limit_ms, "runs": runs,
            "largest_conversations_under_p95_limit": max(passing) if passing else None}
