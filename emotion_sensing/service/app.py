"""The emotion service: recognizers, per-session state and fusion behind a small REST API.

| method | path | what |
|---|---|---|
| GET | /health | liveness and which recognizers are loaded |
| POST | /v1/text | one-off text reading, no session |
| POST | /v1/sessions/{id}/texts | a message's text as it reaches Rasa: its reading starts now (202) |
| POST | /v1/sessions/{id}/turns | a user turn's text: adds a text reading (none for a button's /intent payload), returns the fused state |
| POST | /v1/sessions/{id}/readings | a face or voice reading from any sensor (below); returns the fused state |
| GET | /v1/sessions/{id} | the session's latest state and recent readings |
| DELETE | /v1/sessions/{id} | forget a session's readings |
| GET | /replay, /replay/{sender_id} | stored conversations and one's HTML report (replay_routes.py) |
| POST | /v1/face, /v1/sessions/{id}/frames | an image / a camera frame (face_routes.py) |
| GET | /v1/sessions/{id}/stream | WebSocket: frames and audio in, readings out (stream.py) |
| GET | /, /chat | the chat page: web widget with camera, microphone and emotion panel (web_routes.py) |
| GET | /openapi.json | the OpenAPI 3 document of this API (openapi.py) |

A sensor outside the service (a camera app, a phone, a test) posts its own readings:
``{"modality": "face" or "voice", "probs": {"angry": 0.7, "neutral": 0.3}, "confidence": 0.9}``;
probabilities are over the labels of emotion_sensing.labels (missing ones count as 0) and
sum to 1; confidence is the sensor's trust in the reading, 0..1.

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx status. Off loopback every
route but /health needs the service token (auth.py); each session is rate-limited (limits.py).
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional

from aiohttp import web

from emotion_sensing import __version__
from emotion_sensing.config import Settings
from emotion_sensing.fusion import unknown_state
from emotion_sensing.labels import LABELS
from emotion_sensing.processes import freeze_startup_heap
from emotion_sensing.reading import Reading
from emotion_sensing.service import face_routes, limits, openapi, replay_routes, stream, voice_routes, web_routes
from emotion_sensing.service.auth import check_exposure, require_token
from emotion_sensing.service.errors import ApiError, json_errors, read_json_object
from emotion_sensing.service.keys import (
    MODALITY_STATUS,
    PENDING_TEXTS,
    SENSING,
    SETTINGS,
    STORE,
    STREAM_HANDLERS,
    TEXT,
    TEXT_EXECUTOR,
)
from emotion_sensing.service.origins import check_origin
from emotion_sensing.service.pending import PendingTexts
from emotion_sensing.service.sensing import MODALITIES as SENSING_MODALITIES
from emotion_sensing.service.sensing import SensingPool
from emotion_sensing.session import valid_session_id
from emotion_sensing.slots import is_intent_payload
from emotion_sensing.stores import open_store
from emotion_sensing.text.recognizer import MODEL_FILE, TextRecognizer

logger = logging.getLogger(__name__)



def _session_id(request: web.Request) -> str:
    session_id = request.match_info["session_id"]
    if not valid_session_id(session_id):
        raise ApiError(
            400, "invalid_session_id", "session id must be 1-128 characters of letters, digits and _.:@+-"
        )
    return session_id


def _text_field(data: Dict[str, Any], settings: Settings) -> str:
    text = data.get("text")
    if not isinstance(text, str):
        raise ApiError(422, "invalid_text", "field 'text' must be a string")
    if not text.strip():
        raise ApiError(422, "empty_text", "field 'text' is empty")
    if len(text) > settings.max_text_chars:
        raise ApiError(
            413, "text_too_long", f"text has {len(text)} characters; the limit is {settings.max_text_chars}"
        )
    return text


async def read_text(app: web.Application, text: str) -> Reading:
    """The text reading, computed on the text thread (the model must not hold up the loop)."""
    return await asyncio.get_running_loop().run_in_executor(app[TEXT_EXECUTOR], app[TEXT].read, text)


async def health(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "pid": os.getpid(),
            "modalities": {
                "text": {"on": "text" in app[SETTINGS].modalities, "classifier": app[TEXT].has_classifier},
                **app[MODALITY_STATUS],
            },
            "sessions": len(app[STORE]),
            "texts": app[PENDING_TEXTS].counts(),
            "sensing": None if app[SENSING] is None else app[SENSING].to_dict(),
        }
    )


async def analyse_text(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    text = _text_field(await read_json_object(request), settings)
    return web.json_response({"reading": (await read_text(request.app, text)).to_dict()})


async def prefetch_text(request: web.Request) -> web.Response:
    """Start reading a turn's text now; its turn (same session, same text) will collect it."""
    session_id = _session_id(request)
    text = _text_field(await read_json_object(request), request.app[SETTINGS])
    request.app[PENDING_TEXTS].start(session_id, text, lambda t: read_text(request.app, t))
    return web.json_response({"session_id": session_id, "queued": True}, status=202)


async def add_turn(request: web.Request) -> web.Response:
    session_id = _session_id(request)
    settings = request.app[SETTINGS]
    text = _text_field(await read_json_object(request), settings)
    session = request.app[STORE].get_or_create(session_id)
    reading: Optional[Reading] = None
    if is_intent_payload(text):
        # A button's payload has no words to read, and the earlier turns' words are left out from now
        # until the person writes again (Session.words_before). Face and voice still count; with
        # neither, the state is unknown and the mood waits for the next turn.
        session.words_before = time.time()
    else:
        reading = await request.app[PENDING_TEXTS].collect(session_id, text, lambda t: read_text(request.app, t))
        if "text" in settings.modalities:
            session.add(reading)
    session.turns += 1
    state = session.fuse(settings.fusion)
    session.end_turn(state)
    return web.json_response({"session_id": session_id, "turn": session.turns,
                              "reading": None if reading is None else reading.to_dict(), "state": state.to_dict()})


# Modalities an outside sensor may report; text arrives with the user's turn instead.
SENSOR_MODALITIES = ("face", "voice")
READING_FIELDS = ("modality", "probs", "confidence")
PROBS_SUM_TOLERANCE = 0.02


def _unit_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _sensor_reading(data: Dict[str, Any], settings: Settings) -> Reading:
    """A Reading from a posted body, or an ApiError naming the first thing wrong with it."""
    unknown = sorted(set(data) - set(READING_FIELDS))
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field(s) {', '.join(unknown)}; expected {', '.join(READING_FIELDS)}")
    modality = data.get("modality")
    if modality not in SENSOR_MODALITIES:
        raise ApiError(422, "invalid_modality", f"field 'modality' must be one of {', '.join(SENSOR_MODALITIES)}; got {modality!r}")
    if modality not in settings.modalities:
        raise ApiError(409, "modality_off", f"the {modality} modality is switched off (EMOBOT_MODALITIES)")
    probs = data.get("probs")
    if not isinstance(probs, dict) or not probs:
        raise ApiError(422, "invalid_probs", f"field 'probs' must be an object of label -> probability over {', '.join(LABELS)}")
    strangers = sorted(set(probs) - set(LABELS))
    if strangers:
        raise ApiError(422, "invalid_probs", f"unknown label(s) {', '.join(strangers)} in 'probs'; labels are {', '.join(LABELS)}")
    bad = sorted(label for label, p in probs.items() if not _unit_number(p))
    if bad:
        raise ApiError(422, "invalid_probs", f"'probs' of {', '.join(bad)} must be numbers between 0 and 1")
    total = sum(probs.values())
    if abs(total - 1.0) > PROBS_SUM_TOLERANCE:
        raise ApiError(422, "invalid_probs", f"'probs' must sum to 1 (missing labels count as 0); they sum to {total:.3f}")
    confidence = data.get("confidence")
    if not _unit_number(confidence):
        raise ApiError(422, "invalid_confidence", f"field 'confidence' must be a number between 0 and 1; got {confidence!r}")
    return Reading(modality, tuple(float(probs.get(label, 0.0)) for label in LABELS), float(confidence),
                   extras={"source": "api"})


async def add_reading(request: web.Request) -> web.Response:
    session_id = _session_id(request)
    settings = request.app[SETTINGS]
    reading = _sensor_reading(await read_json_object(request), settings)
    session = request.app[STORE].get_or_create(session_id)
    session.add(reading)
    state = session.fuse(settings.fusion)
    return web.json_response({"session_id": session_id, "reading": reading.to_dict(), "state": state.to_dict()})


async def get_session(request: web.Request) -> web.Response:
    session_id = _session_id(request)
    session = request.app[STORE].get(session_id)
    if session is None:
        raise ApiError(404, "unknown_session", f"no session {session_id!r}")
    state = session.fuse(request.app[SETTINGS].fusion)
    return web.json_response(
        {
            "session_id": session_id,
            "turns": session.turns,
            "state": state.to_dict(),
            "counts": session.counts(),
            "readings": [r.to_dict() for r in list(session.readings)[-50:]],
        }
    )


async def delete_session(request: web.Request) -> web.Response:
    session_id = _session_id(request)
    known = request.app[STORE].delete(session_id)
    if request.app[SENSING] is not None:
        # Its face tracker and speaker statistics live in the sensing worker.
        await request.app[SENSING].forget(session_id)
    if not known:
        raise ApiError(404, "unknown_session", f"no session {session_id!r}")
    return web.json_response({"session_id": session_id, "deleted": True})


async def _stop_text_executor(app: web.Application) -> None:
    app[TEXT_EXECUTOR].shutdown(wait=False)


async def _stop_sensing(app: web.Application) -> None:
    if app[SENSING] is not None:
        app[SENSING].close()


def create_app(settings: Optional[Settings] = None, text: Optional[TextRecognizer] = None) -> web.Application:
    """The aiohttp application; recognizers load here, before the first request."""
    settings = settings or Settings.from_env()
    check_exposure(settings)
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[json_errors, check_origin, require_token, limits.session_rate_limits])
    app[SETTINGS] = settings
    # Readings older than fusion's window no longer count: not kept either (memory stays flat).
    app[STORE] = open_store(settings.session_store, max_sessions=settings.max_sessions,
                            max_age_s=settings.fusion.window_s)
    limits.setup(app, settings)
    started = time.time()
    app[TEXT] = text or TextRecognizer(settings.models_dir / MODEL_FILE)
    app[TEXT].read("warm up")
    app[TEXT_EXECUTOR] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="text")
    app[PENDING_TEXTS] = PendingTexts()
    app.on_cleanup.append(_stop_text_executor)
    app[MODALITY_STATUS] = {}
    app[STREAM_HANDLERS] = {}
    # Face and voice run in the sensing worker, off the turns' path (sensing.py).
    app[SENSING] = SensingPool(settings) if set(settings.modalities) & set(SENSING_MODALITIES) else None
    app.on_cleanup.append(_stop_sensing)
    face_routes.setup(app, settings)
    voice_routes.setup(app, settings)
    replay_routes.setup(app, settings)
    stream.setup(app)
    web_routes.setup(app, settings)
    openapi.setup(app, settings)
    logger.info("recognizers ready in %.1f s", time.time() - started)
    app.router.add_get("/health", health)
    app.router.add_post("/v1/text", analyse_text)
    app.router.add_post("/v1/sessions/{session_id}/texts", prefetch_text)
    app.router.add_post("/v1/sessions/{session_id}/turns", add_turn)
    app.router.add_post("/v1/sessions/{session_id}/readings", add_reading)
    app.router.add_get("/v1/sessions/{session_id}", get_session)
    app.router.add_delete("/v1/sessions/{session_id}", delete_session)
    return app


def serve(settings: Optional[Settings] = None) -> None:
    """Run the service until interrupted."""
    settings = settings or Settings.from_env()
    try:
        check_exposure(settings)
    except ValueError as error:
        raise SystemExit(f"emotion service: {error}") from None
    app = create_app(settings)
    freeze_startup_heap()  # the models loaded: full collections skip them from now on
    print(f"emotion service on http://{settings.host}:{settings.service_port}", flush=True)
    web.run_app(app, host=settings.host, port=settings.service_port, print=None, access_log=None)


__all__ = ["create_app", "serve", "unknown_state"]
