"""The face modality's routes and stream handler, registered by :func:`setup`.

| method | path | what |
|---|---|---|
| POST | /v1/face | one image (JPEG/PNG bytes): every face with its probabilities, no session |
| POST | /v1/sessions/{id}/frames | one camera frame: the primary face becomes a face reading |

Stream message type 0x01 carries the same frame bytes. Frames are analysed by the sensing
worker (sensing.py), which holds at most the newest frame per session and serves sessions
fairly; a frame that is replaced or waits too long is dropped and counted (429 over REST),
so a slow machine sheds load instead of falling behind. Frames are never written anywhere:
only the derived reading is kept.
"""
from __future__ import annotations

import logging
from typing import List, Optional

from aiohttp import web

from emotion_sensing.config import Settings
from emotion_sensing.service.errors import ApiError
from emotion_sensing.service.keys import MODALITY_STATUS, SENSING, SETTINGS, STORE, STREAM_HANDLERS
from emotion_sensing.service.sensing import Dropped, SensingPool, SensingUnavailable
from emotion_sensing.session import Session, valid_session_id

logger = logging.getLogger(__name__)
FRAME = 0x01
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream")


def _pool(app: web.Application) -> SensingPool:
    pool = app.get(SENSING)
    if pool is None or not pool.available("face"):
        raise ApiError(409, "face_unavailable",
                       "face sensing is off or its model is missing (see /health)")
    return pool


async def _image_bytes(request: web.Request) -> bytes:
    if request.content_type not in IMAGE_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       f"expected image bytes (image/jpeg or image/png), got {request.content_type or 'no type'}")
    data = await request.read()
    if not data:
        raise ApiError(400, "empty_body", "request body is empty; expected JPEG or PNG bytes")
    return data


async def _analyse(pool: SensingPool, session_id: Optional[str], data: bytes):
    from emotion_sensing.face.recognizer import ImageError

    try:
        return await pool.face(session_id, data)
    except ImageError as error:
        raise ApiError(422, "invalid_image", str(error)) from None
    except ValueError as error:
        raise ApiError(422, "invalid_image", f"unsupported image: {error}") from None
    except SensingUnavailable as error:
        raise ApiError(503, "sensing_unavailable", str(error)) from None


async def analyse_image(request: web.Request) -> web.Response:
    pool = _pool(request.app)
    data = await _image_bytes(request)
    try:
        analysis = await _analyse(pool, None, data)
    except Dropped:
        raise ApiError(429, "face_busy", "the face recognizer is busy; try again shortly") from None
    return web.json_response(analysis.to_dict())


def dropped_event(session: Session) -> dict:
    """Count one more of the session's frames dropped; the stream's ``dropped`` event."""
    session.extras["face_dropped"] = session.extras.get("face_dropped", 0) + 1
    return {"type": "dropped", "modality": "face", "dropped": session.extras["face_dropped"]}


async def _add_frame(app: web.Application, session: Session, data: bytes) -> dict:
    """Analyse one frame into the session; the event the caller reports back."""
    pool = _pool(app)
    try:
        analysis = await _analyse(pool, session.session_id, data)
    except Dropped:
        return dropped_event(session)
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
    """Face routes; the recognizer runs in the sensing worker (sensing.py), whose status is reported."""
    pool: Optional[SensingPool] = app.get(SENSING)
    app[MODALITY_STATUS]["face"] = pool.status["face"] if pool is not None else {
        "on": False, "model": None, "error": "switched off (EMOBOT_MODALITIES)"}
    app[STREAM_HANDLERS][FRAME] = stream_frame
    app.router.add_post("/v1/face", analyse_image)
    app.router.add_post("/v1/sessions/{session_id}/frames", add_frame)
