"""The face modality's routes and stream handler, registered by :func:`setup`.

| method | path | what |
|---|---|---|
| POST | /v1/face | one image (JPEG/PNG bytes): every face with its probabilities, no session |
| POST | /v1/sessions/{id}/frames | one camera frame: the primary face becomes a face reading |

Stream message type 0x01 carries the same frame bytes. Frames are analysed on one worker
thread; when it is busy the new frame is dropped and counted (429 over REST), never queued,
so a slow machine sheds load instead of falling behind. Frames are never written anywhere:
only the derived reading is kept.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

from aiohttp import web

from emotion_sensing.config import Settings
from emotion_sensing.service.errors import ApiError
from emotion_sensing.service.keys import MODALITY_STATUS, SETTINGS, STORE, STREAM_HANDLERS
from emotion_sensing.session import Session, valid_session_id

logger = logging.getLogger(__name__)
FRAME = 0x01
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream")


def _lower_thread_priority(nice: int) -> None:
    """Give the calling thread a lower CPU priority (Linux schedules threads as tasks)."""
    if nice > 0 and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError as error:  # not permitted here: the thread keeps the process's priority
            logger.info("face worker keeps its priority (%s)", error)


class FaceWorker:
    """One thread running the recognizer; at most ``max_pending`` frames in flight.

    The thread runs at a lower CPU priority (``nice``, default 10): on a busy machine the
    chat comes first (Rasa, the actions, the service's own requests) and frames that cannot
    be analysed in time are dropped, which the stream already does and counts.
    """

    def __init__(self, recognizer, max_pending: int = 2, nice: int = 10) -> None:
        self.recognizer = recognizer
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face",
                                           initializer=_lower_thread_priority, initargs=(nice,))
        self.max_pending = max_pending
        self.pending = 0
        self.analysed = 0
        self.dropped = 0

    def busy(self) -> bool:
        return self.pending >= self.max_pending

    async def analyse(self, data: bytes, tracker=None):
        """Decode and analyse on the worker thread; raises ImageError for bad bytes."""
        from emotion_sensing.face.recognizer import decode_image

        def work():
            return self.recognizer.analyse(decode_image(data), tracker=tracker)

        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, work)
        finally:
            self.pending -= 1
            self.analysed += 1


FACE = web.AppKey("face_worker", FaceWorker)


def _worker(app: web.Application) -> FaceWorker:
    worker = app.get(FACE)
    if worker is None:
        raise ApiError(409, "face_unavailable",
                       "face sensing is off or its model is missing (see /health)")
    return worker


async def _image_bytes(request: web.Request) -> bytes:
    if request.content_type not in IMAGE_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       f"expected image bytes (image/jpeg or image/png), got {request.content_type or 'no type'}")
    data = await request.read()
    if not data:
        raise ApiError(400, "empty_body", "request body is empty; expected JPEG or PNG bytes")
    return data


async def _analyse(worker: FaceWorker, data: bytes, tracker=None):
    from emotion_sensing.face.recognizer import ImageError

    try:
        return await worker.analyse(data, tracker)
    except ImageError as error:
        raise ApiError(422, "invalid_image", str(error)) from None
    except ValueError as error:
        raise ApiError(422, "invalid_image", f"unsupported image: {error}") from None


async def analyse_image(request: web.Request) -> web.Response:
    worker = _worker(request.app)
    analysis = await _analyse(worker, await _image_bytes(request))
    return web.json_response(analysis.to_dict())


def _tracker(session: Session, worker: FaceWorker):
    from emotion_sensing.face.detect import FaceTracker

    tracker = session.extras.get("face_tracker")
    if tracker is None:
        # The worker's one detector (one thread uses it): a cascade per session cost ~4 MB
        # and a file load each, and stayed with the session.
        tracker = session.extras["face_tracker"] = FaceTracker(worker.recognizer.detector)
    return tracker


async def _add_frame(app: web.Application, session: Session, data: bytes) -> dict:
    """Analyse one frame into the session; the event the caller reports back."""
    worker = _worker(app)
    if worker.busy():
        worker.dropped += 1
        session.extras["face_dropped"] = session.extras.get("face_dropped", 0) + 1
        return {"type": "dropped", "modality": "face", "dropped": session.extras["face_dropped"]}
    analysis = await _analyse(worker, data, _tracker(session, worker))
    reading = analysis.reading()
    if reading is None:
        return {"type": "no_face", "modality": "face", "analysis": analysis.to_dict()}
    session.add(reading)
    state = session.fuse(app[SETTINGS].fusion)
    return {"type": "reading", "reading": reading.to_dict(), "state": state.to_dict(),
            "faces": len(analysis.faces)}


async def add_frame(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    if not valid_session_id(session_id):
        raise ApiError(400, "invalid_session_id",
                       "session id must be 1-128 characters of letters, digits and _.:@+-")
    if "face" not in request.app[SETTINGS].modalities:
        raise ApiError(409, "modality_off", "face sensing is switched off (EMOBOT_MODALITIES)")
    data = await _image_bytes(request)
    session = request.app[STORE].get_or_create(session_id)
    event = await _add_frame(request.app, session, data)
    if event["type"] == "dropped":
        raise ApiError(429, "frame_dropped", "the face recognizer is busy; frame dropped (send fewer frames)")
    return web.json_response({"session_id": session_id, **event})


async def stream_frame(request: web.Request, session: Session, payload: bytes) -> List[dict]:

    if "face" not in request.app[SETTINGS].modalities:
        return [{"type": "error", "code": "modality_off", "message": "face sensing is switched off"}]
    try:
        return [await _add_frame(request.app, session, payload)]
    except ApiError as error:
        return [{"type": "error", "code": error.code, "message": error.message}]


def setup(app: web.Application, settings: Settings) -> None:
    """Load the face recognizer when its model is present and face sensing is on."""
    from emotion_sensing.face.export import MODEL_FILE

    path = settings.models_dir / MODEL_FILE
    status = {"on": False, "model": None}
    if "face" in settings.modalities and path.exists():
        started = time.time()
        try:
            from emotion_sensing.face.recognizer import FaceRecognizer

            recognizer = FaceRecognizer(path)
            recognizer.warm_up()
        except Exception as error:  # noqa: BLE001 - a broken model must not stop the service
            logger.error("face recognizer not loaded: %s", error)
            status["error"] = str(error)
        else:
            app[FACE] = FaceWorker(recognizer, nice=settings.face_nice)
            status = {"on": True, "model": path.name, "architecture": recognizer.classifier.meta.get("architecture"),
                      "input_size": recognizer.classifier.input_size}
            logger.info("face recognizer ready in %.1f s", time.time() - started)
    elif "face" in settings.modalities:
        status["error"] = f"model not found: {path}"
    app[MODALITY_STATUS]["face"] = status
    app[STREAM_HANDLERS][FRAME] = stream_frame
    app.router.add_post("/v1/face", analyse_image)
    app.router.add_post("/v1/sessions/{session_id}/frames", add_frame)

    async def stop(app: web.Application) -> None:
        worker: Optional[FaceWorker] = app.get(FACE)
        if worker is not None:
            worker.executor.shutdown(wait=False)

    app.on_cleanup.append(stop)
