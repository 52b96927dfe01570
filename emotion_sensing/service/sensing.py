"""Face and voice analysis off the chat's path: one low-priority worker and a fair scheduler.

Sensing is an extra; it must never make the assistant slow. So:

- **A worker of its own.** Frames and utterances are analysed in a child process
  (``EMOBOT_SENSING_WORKER=process``, the default) at a lower CPU priority
  (``EMOBOT_SENSING_NICE``, default 10): the service's event loop only moves bytes, and its
  interpreter lock and CPU stay free for the turns (their text reading runs on the service's
  text thread, the fused state on the loop). On a saturated machine the kernel gives the chat's
  processes the CPU first; the worker gets what is left.
- **One job at a time, chosen fairly.** The worker takes the next job only when it has
  finished the last, so nothing queues inside it. Waiting work is held here, bounded: per
  session the newest frame (a newer one replaces it) and the two newest utterances. The next
  job goes to the modality that has used less than its share of the worker's measured CPU
  time (``EMOBOT_SENSING_FACE_SHARE``, three quarters to the face by default) and, within
  it, to the session served longest ago, so every streaming session gets a face reading every
  ``sessions / analysed per second`` seconds, however many send frames.
- **Dropped, counted, said.** A frame that waited longer than ``max_wait_s["face"]``
  (1.5 s) or an utterance older than ``max_wait_s["voice"]`` (10 s) is stale and dropped (on
  time, also while the worker rests between jobs); the
  caller hears :class:`Dropped` (a ``dropped`` stream event, a 429 over REST). When the machine
  is saturated sensing degrades — fewer readings, older state, then ``unknown`` as readings
  age out of fusion's window — and turn latency holds.

:attr:`SensingPool.stats` (in /health) says what the worker costs and achieves: jobs done,
dropped and why, CPU ms per job, jobs per second, and how often each streaming session is
served.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import math
import multiprocessing
import time
from collections import OrderedDict, deque
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Optional, Tuple

from emotion_sensing.config import Settings
from emotion_sensing.machine import usable_cores
from emotion_sensing.service import sensing_worker

logger = logging.getLogger(__name__)

MODALITIES = ("face", "voice")
# Half-life (s) of the CPU time each modality is charged with when choosing the next job.
SHARE_HALF_LIFE_S = 10.0
# Waiting utterances kept per session (the newest); frames: one, the newest.
VOICE_WAITING_PER_SESSION = 2
# Sessionless jobs (POST /v1/face, /v1/speech) waiting at once, per modality.
MAX_ONE_OFF_WAITING = 64
# How long a restarted worker process may take to load its models.
START_TIMEOUT_S = 300.0
# Streaming sessions: those served within this many seconds.
ACTIVE_S = 10.0


class Dropped(Exception):
    """The job was not analysed: ``reason`` is ``replaced`` (a newer one came), ``stale``
    (it waited too long), ``full`` (too many waiting) or ``stopped`` (the service is stopping)."""

    def __init__(self, modality: str, reason: str) -> None:
        super().__init__(f"{modality} analysis dropped ({reason})")
        self.modality = modality
        self.reason = reason


class SensingUnavailable(RuntimeError):
    """The worker failed (crashed, or its job raised something unexpected); being restarted."""


@dataclass
class _Job:
    modality: str
    key: str
    method: str
    args: tuple
    future: asyncio.Future
    queued: float


@dataclass
class ModalityStats:
    analysed: int = 0
    dropped: Dict[str, int] = field(default_factory=lambda: {"replaced": 0, "stale": 0, "full": 0, "stopped": 0})
    failed: int = 0
    cpu_s: float = 0.0
    wait_s: float = 0.0
    # (monotonic time, cpu seconds) of recent jobs, for the rate and cost now.
    recent: Deque[Tuple[float, float]] = field(default_factory=lambda: deque(maxlen=512))

    def to_dict(self, now: float, sessions: int) -> Dict[str, Any]:
        window = [(t, c) for t, c in self.recent if now - t <= 30.0]
        span = max(1.0, now - window[0][0]) if window else 1.0
        per_s = len(window) / span if window else 0.0
        done = self.analysed or 1
        return {
            "analysed": self.analysed,
            "dropped": dict(self.dropped),
            "failed": self.failed,
            "cpu_ms_per_job": round(1000 * self.cpu_s / done, 1),
            "wait_ms_per_job": round(1000 * self.wait_s / done, 1),
            "per_s": round(per_s, 2),
            "active_sessions": sessions,
            # How often each streaming session gets a reading at the present rate.
            "every_s_per_session": round(sessions / per_s, 2) if per_s and sessions else None,
        }


def _machine_jiffies() -> Optional[Tuple[int, int]]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (Linux /proc/stat)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


class Budget:
    """How many cores sensing may use now: what the rest of the machine leaves below ``target``
    of its capacity, between ``floor`` and ``ceiling`` cores.

    Measured every ``period_s`` from the machine's CPU counters, less the worker's own use: a
    quiet machine lends sensing up to ``ceiling`` (readings come fast), a machine busy with the
    chat leaves it ``floor`` (each session still read every few seconds). Sensing gets slower
    before the chat does: on a 2-core machine, a worker on the otherwise idle core still slowed
    Rasa's turns (p50 112 -> 228 ms at 50 conversations, even in Linux's idle class).
    """

    def __init__(self, ceiling: float, floor: float, target: float, cores: Optional[int] = None,
                 period_s: float = 1.0, sample=_machine_jiffies) -> None:
        self.ceiling, self.floor, self.target = ceiling, min(floor, ceiling), target
        if cores is None:
            cores = usable_cores()
        self.cores = cores
        self.period_s = period_s
        self.sample = sample
        self.cores_now = ceiling
        self.others = 0.0  # cores the rest of the machine used in the last period
        self._last = None
        self._worker_cpu = 0.0

    def charge(self, cpu_s: float) -> None:
        """The worker used ``cpu_s`` since the last update."""
        self._worker_cpu += cpu_s

    def update(self, now: float) -> float:
        sample = self.sample()
        if sample is None or self.ceiling <= 0:
            return self.cores_now
        if self._last is not None:
            (busy0, total0, t0), (busy1, total1) = self._last, sample
            if total1 > total0 and now > t0:
                busy_cores = (busy1 - busy0) / (total1 - total0) * self.cores
                self.others = max(0.0, busy_cores - self._worker_cpu / (now - t0))
                spare = self.target * self.cores - self.others
                self.cores_now = max(self.floor, min(self.ceiling, spare))
        self._last = (*sample, now)
        self._worker_cpu = 0.0
        return self.cores_now


class _ProcessBackend:
    """The Sensors in a child process (spawned: no copy of the service's threads or models)."""

    kind = "process"

    def __init__(self, settings: Settings) -> None:
        self._args = (str(settings.models_dir), tuple(m for m in settings.modalities if m in MODALITIES),
                      settings.max_sessions, settings.sensing_nice, settings.sensing_idle)
        self.executor: Executor = self._new()
        self.describe: Dict[str, Any] = self.executor.submit(sensing_worker.call, "describe").result(
            timeout=START_TIMEOUT_S)[0]

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=sensing_worker.start, initargs=self._args)

    def submit(self, method: str, *args):
        return self.executor.submit(sensing_worker.call, method, *args)

    def restart(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class _ThreadBackend:
    """The Sensors in this process, on one thread at a lower priority (embedding, tests)."""

    kind = "thread"

    def __init__(self, settings: Settings) -> None:
        self.sensors = sensing_worker.Sensors(settings.models_dir, settings.modalities, settings.max_sessions)
        nice = settings.sensing_nice
        self.executor: Executor = ThreadPoolExecutor(1, thread_name_prefix="sensing",
                                                     initializer=sensing_worker.lower_priority,
                                                     initargs=(nice, False, settings.sensing_idle))
        self.describe = {**self.sensors.describe(), "nice": nice, "policy": "idle" if settings.sensing_idle else "normal"}

    def submit(self, method: str, *args):
        return self.executor.submit(sensing_worker.timed, getattr(self.sensors, method), *args)

    def restart(self) -> None:  # a thread's job failing does not break the thread
        pass

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class _NoBackend:
    """No worker (it failed to start): face and voice say why, the rest of the service runs."""

    kind = "none"

    def __init__(self, why: str) -> None:
        self.describe = {"status": {"face": {"on": False, "model": None, "error": why},
                                    "voice": {"on": False, "reason": why}}, "pid": None, "nice": None}

    def submit(self, method: str, *args):
        raise RuntimeError(self.describe["status"]["voice"]["reason"])

    def restart(self) -> None:
        raise RuntimeError(self.describe["status"]["voice"]["reason"])

    def shutdown(self) -> None:
        pass


class SensingPool:
    """The scheduler in front of one sensing worker (see the module doc)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 max_wait_s: Optional[Dict[str, float]] = None, share: Optional[Dict[str, float]] = None,
                 backend: Any = None) -> None:
        started = time.time()
        if backend is None:
            try:
                backend = _ProcessBackend(settings) if settings.sensing_worker == "process" else _ThreadBackend(settings)
            except Exception as error:  # noqa: BLE001 - the chat goes on without face and voice
                logger.error("the sensing worker did not start: %s", error)
                backend = _NoBackend(f"the sensing worker did not start: {error}")
        self.backend = backend
        self.status: Dict[str, Dict[str, Any]] = self.backend.describe["status"]
        logger.info("sensing worker (%s, pid %s, nice %s) ready in %.1f s", self.backend.kind,
                    self.backend.describe.get("pid"), self.backend.describe.get("nice"), time.time() - started)
        self.clock = clock
        self.max_wait_s = max_wait_s or {"face": 1.5, "voice": 10.0}
        self.share = share or {"face": settings.sensing_face_share, "voice": 1.0 - settings.sensing_face_share}
        self.stats = {m: ModalityStats() for m in MODALITIES}
        self._waiting: Dict[str, OrderedDict[str, Deque[_Job]]] = {m: OrderedDict() for m in MODALITIES}
        self._served: Dict[str, OrderedDict[str, float]] = {m: OrderedDict() for m in MODALITIES}
        self._spent = {m: 0.0 for m in MODALITIES}
        self._spent_at = clock()
        self._running: Optional[_Job] = None
        # The CPU budget: after a job of c CPU seconds the worker rests c * (1 / cores - 1) s.
        self.budget = Budget(settings.sensing_cpu, settings.sensing_min_cpu, settings.sensing_target)
        self._budget_at = -math.inf
        self._rest_until = 0.0
        self._wake: Optional[asyncio.TimerHandle] = None
        self._wake_at = math.inf
        self._one_off = itertools.count()
        self._closed = False
        self._max_sessions = max(1, settings.max_sessions)

    # ---- what callers use -------------------------------------------------------------

    def available(self, modality: str) -> bool:
        return bool(self.status.get(modality, {}).get("on"))

    async def face(self, session_id: Optional[str], data: bytes):
        """FrameAnalysis of one image (a session's frames share its tracker); raises Dropped,
        SensingUnavailable, or the worker's ImageError for unreadable bytes."""
        return await self._submit("face", session_id, "analyse_face", data)

    async def voice(self, session_id: Optional[str], samples, transcribe: bool = False):
        """(Reading, transcript or None) of one 16 kHz utterance; raises Dropped or SensingUnavailable."""
        return await self._submit("voice", session_id, "read_voice", samples, transcribe)

    async def forget(self, session_id: str) -> None:
        """Drop the session's waiting jobs and the worker's state of it (tracker, speaker)."""
        for modality in MODALITIES:
            for job in self._waiting[modality].pop(session_id, ()):
                self._drop(job, "stopped")
            self._served[modality].pop(session_id, None)
        if not any(self.available(m) for m in MODALITIES):
            return
        try:
            await self._call("forget", session_id)
        except (BrokenProcessPool, RuntimeError) as error:  # a dead worker's state died with it
            logger.warning("the sensing worker could not forget %s: %s", session_id, error)

    def to_dict(self) -> Dict[str, Any]:
        now = self.clock()
        out: Dict[str, Any] = {"worker": self.backend.kind, "pid": self.backend.describe.get("pid"),
                               "nice": self.backend.describe.get("nice"),
                               "policy": self.backend.describe.get("policy"),
                               "cpu_budget": {"cores_now": round(self.budget.cores_now, 2),
                                              "others_cores": round(self.budget.others, 2),
                                              "ceiling": self.budget.ceiling, "floor": self.budget.floor,
                                              "target_share_of_machine": self.budget.target},
                               "share": dict(self.share),
                               "max_wait_s": dict(self.max_wait_s),
                               "waiting": {m: sum(len(q) for q in self._waiting[m].values()) for m in MODALITIES}}
        for modality in MODALITIES:
            active = sum(1 for t in self._served[modality].values() if now - t <= ACTIVE_S)
            out[modality] = self.stats[modality].to_dict(now, active)
        return out

    def close(self) -> None:
        self._closed = True
        for modality in MODALITIES:
            for queue in self._waiting[modality].values():
                for job in queue:
                    self._drop(job, "stopped")
            self._waiting[modality].clear()
        self.backend.shutdown()

    # ---- scheduling -------------------------------------------------------------------

    async def _call(self, method: str, *args):
        """A small bookkeeping call on the worker, outside the scheduler (it queues behind at most one job)."""
        future = asyncio.wrap_future(self.backend.submit(method, *args))
        return (await future)[0]

    async def _submit(self, modality: str, session_id: Optional[str], method: str, *args):
        loop = asyncio.get_running_loop()
        job = _Job(modality, session_id if session_id is not None else f"\x00{next(self._one_off)}", method,
                   (session_id, *args), loop.create_future(), self.clock())
        if self._closed:
            raise Dropped(modality, "stopped")
        waiting = self._waiting[modality]
        queue = waiting.get(job.key)
        if queue is None:
            if session_id is None and sum(k.startswith("\x00") for k in waiting) >= MAX_ONE_OFF_WAITING:
                self._drop(job, "full")
                box, job = [job.future], None
                return await self._outcome(box)
            queue = waiting[job.key] = deque()
        limit = 1 if modality == "face" else VOICE_WAITING_PER_SESSION
        while len(queue) >= limit:
            self._drop(queue.popleft(), "replaced")
        queue.append(job)
        self._pump()
        # The frame keeps neither the job nor its session's queue (which may hold the next job).
        box, job, queue = [job.future], None, None
        return await self._outcome(box)

    @staticmethod
    async def _outcome(box: list):
        """The result of the job whose future is the one item of ``box`` (taken out of it).

        No frame the exception passes through may hold the job or its future: a job that ends
        in an exception (Dropped, most often) would otherwise form a cycle (the exception's
        traceback holds the frame, the frame the future, the future the exception) that keeps
        the frame's and the utterance's bytes until the cyclic garbage collector runs, which
        under load is seldom: the service grew ~1.5 MB/s at 50 streaming conversations (issue
        21). So the caller keeps only the emptied box and this frame forgets the future."""
        future = box.pop()
        try:
            return await future
        finally:
            del future

    def _drop(self, job: _Job, reason: str) -> None:
        self.stats[job.modality].dropped[reason] += 1
        if not job.future.done():
            job.future.set_exception(Dropped(job.modality, reason))

    def _expire(self, now: float) -> None:
        for modality in MODALITIES:
            waiting = self._waiting[modality]
            for key in list(waiting):
                queue = waiting[key]
                while queue and now - queue[0].queued > self.max_wait_s[modality]:
                    self._drop(queue.popleft(), "stale")
                if not queue:
                    del waiting[key]

    def _decay(self, now: float) -> None:
        factor = math.exp(-math.log(2) * max(0.0, now - self._spent_at) / SHARE_HALF_LIFE_S)
        for modality in MODALITIES:
            self._spent[modality] *= factor
        self._spent_at = now

    def _next(self, now: float) -> Optional[_Job]:
        candidates = [m for m in MODALITIES if self._waiting[m]]
        if not candidates:
            return None
        self._decay(now)
        # The modality furthest below its share of the worker's time goes next.
        modality = min(candidates, key=lambda m: (self._spent[m] / max(self.share.get(m, 0.5), 1e-6), m))
        waiting, served = self._waiting[modality], self._served[modality]
        # Within it, the session served longest ago (never served: first), oldest job first.
        key = min(waiting, key=lambda k: (served.get(k, -math.inf), waiting[k][0].queued))
        queue = waiting[key]
        job = queue.popleft()
        if not queue:
            del waiting[key]
        if not key.startswith("\x00"):
            served[key] = now
            served.move_to_end(key)
            while len(served) > self._max_sessions:
                served.popitem(last=False)
        return job

    def _pump(self) -> None:
        if self._running is not None or self._closed:
            return
        now = self.clock()
        self._expire(now)
        if now < self._rest_until:
            # Resting to keep to the budget. Waiting frames still go stale on time meanwhile, so
            # their senders hear it and send fresh ones: expired only when the rest ended (1.75 s
            # after a 0.2 s utterance at 0.1 core), every frame waiting was stale at once, the face
            # had no work to offer and the next job went to voice again (issue 21: at 50
            # conversations faces got a third of the worker's time against a half share).
            wake_at = min(self._rest_until, self._next_expiry())
            if self._wake is None or wake_at < self._wake_at:
                if self._wake is not None:
                    self._wake.cancel()
                self._wake_at = wake_at
                self._wake = asyncio.get_running_loop().call_later(max(0.0, wake_at - now), self._woken)
            return
        job = self._next(now)
        if job is None:
            return
        if job.future.done():  # its caller went away (a closed stream): nothing to do
            self._pump()
            return
        self._running = job
        self.stats[job.modality].wait_s += now - job.queued
        try:
            concurrent = self.backend.submit(job.method, *job.args)
        except (BrokenProcessPool, RuntimeError) as error:
            self._failed(job, error)
            return
        concurrent.add_done_callback(
            lambda done: job.future.get_loop().call_soon_threadsafe(self._finished, job, done))

    def _woken(self) -> None:
        self._wake = None
        self._pump()

    def _next_expiry(self) -> float:
        """When the oldest waiting job of any modality goes stale (infinity when none waits)."""
        return min((queue[0].queued + self.max_wait_s[modality]
                    for modality in MODALITIES for queue in self._waiting[modality].values() if queue),
                   default=math.inf)

    def _finished(self, job: _Job, done) -> None:
        self._running = None
        stats = self.stats[job.modality]
        try:
            result, cpu_s = done.result()
        except BrokenProcessPool as error:
            self._failed(job, error)
        except Exception as error:  # noqa: BLE001 - the job's own error (an unreadable image) goes to its caller
            stats.analysed += 1
            if not job.future.done():
                job.future.set_exception(error)
        else:
            now = self.clock()
            stats.analysed += 1
            stats.cpu_s += cpu_s
            stats.recent.append((now, cpu_s))
            self._decay(now)
            self._spent[job.modality] += cpu_s
            self.budget.charge(cpu_s)
            if now - self._budget_at >= self.budget.period_s:
                self.budget.update(now)
                self._budget_at = now
            cores = self.budget.cores_now
            if 0 < cores < 1:
                self._rest_until = now + cpu_s * (1.0 / cores - 1.0)
            if not job.future.done():
                job.future.set_result(result)
        self._pump()

    def _failed(self, job: _Job, error: BaseException) -> None:
        self._running = None
        self.stats[job.modality].failed += 1
        logger.error("sensing worker failed (%s); restarting it", error)
        if not job.future.done():
            job.future.set_exception(SensingUnavailable(f"the sensing worker failed: {error}; it is being restarted"))
        try:
            self.backend.restart()
        except Exception as restart_error:  # noqa: BLE001 - keep the chat up; sensing stays off
            logger.error("sensing worker could not be restarted: %s", restart_error)
            self._closed = True
        self._pump()

