"""What the sensing worker runs: the face and voice recognizers and each session's derived state.

The service runs this in a child process at a lower CPU priority (sensing.py), so frame and
audio analysis never hold the service's event loop or its interpreter lock, and on a busy
machine the chat's processes (Rasa, the actions, the service's turns) get the CPU first. With
``EMOBOT_SENSING_WORKER=thread`` it runs on one thread of the service instead (embedding, tests).

Per-session state lives here, next to the models that use it: a face tracker (so detection
need not scan every frame) and the voice speaker's running statistics. Both are bounded
(least recently used first out) and dropped by :meth:`Sensors.forget`.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from emotion_sensing.processes import die_with_parent

logger = logging.getLogger(__name__)


def lower_priority(nice: int, whole_process: bool, idle: bool = False) -> int:
    """Lower the CPU priority of this process (or only the calling thread) by ``nice`` and,
    with ``idle``, put it in Linux's SCHED_IDLE class: it then runs only on CPU time no other
    process wants, and any other process that wakes takes the CPU from it at once. The
    niceness reached, or 0 when the system refuses (the worker then keeps the service's)."""
    if not hasattr(os, "setpriority"):
        return 0
    target = 0 if whole_process else threading.get_native_id()
    reached = 0
    try:
        if nice > 0:
            current = os.getpriority(os.PRIO_PROCESS, target)
            os.setpriority(os.PRIO_PROCESS, target, min(19, current + nice))
            reached = os.getpriority(os.PRIO_PROCESS, target) - current
        if idle and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(target, os.SCHED_IDLE, os.sched_param(0))
    except OSError as error:
        logger.info("sensing worker keeps its priority (%s)", error)
    return reached


class _Bounded(OrderedDict):
    """A dict that forgets its least recently used keys beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = max(1, limit)

    def use(self, key: str, make) -> Any:
        value = self.get(key)
        if value is None:
            value = self[key] = make()
            while len(self) > self.limit:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return value


class Sensors:
    """The face and voice recognizers that ``models_dir`` holds, for the ``modalities`` switched on.

    A recognizer whose model is missing or broken is left out and its status says why; the
    other one still works. ``status`` has the shape of /health's ``modalities`` entries.
    """

    def __init__(self, models_dir: Path, modalities: Iterable[str], max_sessions: int = 10_000) -> None:
        modalities = tuple(modalities)
        self.face = None
        self.voice = None
        self.transcriber = None
        self.status: Dict[str, Dict[str, Any]] = {"face": self._load_face(Path(models_dir), modalities),
                                                  "voice": self._load_voice(Path(models_dir), modalities)}
        self.trackers = _Bounded(max_sessions)
        self.speakers = _Bounded(max_sessions)

    def _load_face(self, models_dir: Path, modalities) -> Dict[str, Any]:
        from emotion_sensing.face.export import MODEL_FILE

        path = models_dir / MODEL_FILE
        status: Dict[str, Any] = {"on": False, "model": None}
        if "face" not in modalities:
            status["error"] = "switched off (EMOBOT_MODALITIES)"
        elif not path.exists():
            status["error"] = f"model not found: {path}"
        else:
            started = time.time()
            try:
                from emotion_sensing.face.recognizer import FaceRecognizer

                recognizer = FaceRecognizer(path)
                recognizer.warm_up()
            except Exception as error:  # noqa: BLE001 - a broken model must not stop the service
                logger.error("face recognizer not loaded: %s", error)
                status["error"] = str(error)
            else:
                self.face = recognizer
                status = {"on": True, "model": path.name, "architecture": recognizer.classifier.meta.get("architecture"),
                          "input_size": recognizer.classifier.input_size,
                          "networks": recognizer.classifier.describe_networks()}
                logger.info("face recognizer ready in %.1f s", time.time() - started)
        return status

    def _load_voice(self, models_dir: Path, modalities) -> Dict[str, Any]:
        from emotion_sensing.speech.model import MODEL_FILE
        from emotion_sensing.speech.transcribe import Transcriber

        # Loads Whisper on the first utterance that asks for a transcript.
        self.transcriber = Transcriber()
        path = models_dir / MODEL_FILE
        status: Dict[str, Any] = {"on": False}
        if "voice" not in modalities:
            status["reason"] = "switched off (EMOBOT_MODALITIES)"
        elif not path.exists():
            status["reason"] = f"no model at {path}; run `emobot train speech`"
        else:
            try:
                from emotion_sensing.speech.recognizer import VoiceRecognizer

                started = time.time()
                recognizer = VoiceRecognizer(path)
                recognizer.warm_up()
            except Exception as error:  # noqa: BLE001 - a broken model must not stop the service
                logger.exception("voice model %s could not be loaded", path)
                status["reason"] = f"model could not be loaded: {error}"
            else:
                self.voice = recognizer
                status.update(on=True, model=path.name, classifier=recognizer.model.meta.get("label"))
                logger.info("voice recognizer ready in %.1f s", time.time() - started)
        return status

    def analyse_face(self, session_id: Optional[str], data: bytes):
        """FrameAnalysis of one image's bytes; a session's frames share its face tracker.
        Raises ImageError (or ValueError) for bytes that are not a readable image."""
        from emotion_sensing.face.detect import FaceTracker
        from emotion_sensing.face.recognizer import decode_image

        image = decode_image(data)
        tracker = None
        if session_id is not None:
            tracker = self.trackers.use(session_id, lambda: FaceTracker(self.face.detector))
        return self.face.analyse(image, tracker=tracker)

    def read_voice(self, session_id: Optional[str], samples: np.ndarray, transcribe: bool) -> Tuple[Any, Optional[dict]]:
        """(voice Reading, transcript or None) of one 16 kHz utterance; a session's utterances
        teach its speaker's statistics, a one-off utterance is read against the population's."""
        from emotion_sensing.speech.audio import SAMPLE_RATE

        speaker = None if session_id is None else self.speakers.use(session_id, self.voice.new_speaker)
        reading = self.voice.read(samples, SAMPLE_RATE, speaker=speaker)
        transcript = None
        if transcribe:
            if reading.extras.get("speech"):
                from emotion_sensing.speech.transcribe import TranscriptionUnavailable

                try:
                    transcript = self.transcriber.transcribe(samples).to_dict()
                except TranscriptionUnavailable as error:
                    transcript = {"text": None, "engine": None, "error": str(error)}
            else:
                transcript = {"text": "", "engine": None, "seconds": 0.0}
        return reading, transcript

    def forget(self, session_id: str) -> bool:
        """Drop the session's tracker and speaker statistics; whether there were any."""
        had = self.trackers.pop(session_id, None) is not None
        return (self.speakers.pop(session_id, None) is not None) or had

    def describe(self) -> Dict[str, Any]:
        return {"status": self.status, "pid": os.getpid(), "nice": os.getpriority(os.PRIO_PROCESS, 0)
                if hasattr(os, "getpriority") else 0, "policy": _policy(0)}


def _policy(target: int) -> str:
    """The Linux scheduling class of a process or thread: ``idle``, ``normal`` or ``other``."""
    try:
        policy = os.sched_getscheduler(target)
    except (AttributeError, OSError):
        return "other"
    return {getattr(os, "SCHED_IDLE", -1): "idle", getattr(os, "SCHED_OTHER", -2): "normal"}.get(policy, "other")


# The worker process's one Sensors, made by start() (its pool initializer).
_SENSORS: Optional[Sensors] = None


def start(models_dir: str, modalities: Tuple[str, ...], max_sessions: int, nice: int, idle: bool) -> None:
    """Pool initializer of the worker process: lower its priority, then load the models."""
    global _SENSORS
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sensing worker %(levelname)s %(message)s")
    die_with_parent()
    lower_priority(nice, whole_process=True, idle=idle)
    _SENSORS = Sensors(Path(models_dir), modalities, max_sessions)


def timed(function, *args, clock=time.thread_time) -> Tuple[Any, float]:
    """(function(*args), CPU seconds it took by ``clock``): the cost the scheduler budgets."""
    started = clock()
    result = function(*args)
    return result, clock() - started


def call(method: str, *args) -> Tuple[Any, float]:
    """Run ``Sensors.method(*args)`` in the worker process; with its CPU cost, every thread of
    the process counted (the models' own thread pools included)."""
    if _SENSORS is None:
        raise RuntimeError("the sensing worker has not started")
    return timed(getattr(_SENSORS, method), *args, clock=time.process_time)
