"""One WebSocket per conversation for live camera frames and microphone audio.

``GET /v1/sessions/{id}/stream`` upgrades to a WebSocket. Client -> service:

- binary messages: one type byte, then the payload
  - ``0x01`` a camera frame (JPEG or PNG bytes)
  - ``0x02`` an audio chunk (16 kHz mono PCM16 little-endian)
- text messages: JSON ``{"type": "ping"}`` (answered ``pong``) or ``{"type": "state"}``
  (answered with the session's fused state).

Service -> client: JSON events, e.g. ``{"type": "reading", "reading": {...}, "state": {...}}``,
``{"type": "no_face"}``, ``{"type": "dropped", "modality": "face", "dropped": n}``,
``{"type": "error", "code": ..., "message": ...}``. Garbage never closes the socket; it is
answered with an error event. A page from an origin the service does not allow (origins.py)
gets one ``origin_not_allowed`` error event and the close code 4403, and nothing it sends is read.

Rate limits (limits.py) apply per session: frames beyond EMOBOT_SESSION_FRAMES_PER_S, audio
faster than 4x real time and control messages beyond EMOBOT_SESSION_REQUESTS_PER_S are
answered with a ``rate_limited`` error event and dropped.

Back-pressure: at most one frame per connection is being analysed and at most one waits;
a newer frame replaces the waiting one (counted as dropped). Audio chunks are never dropped
(the order of chunks matters): they are cut into utterances in arrival order, and the
utterances go to the sensing worker (sensing.py), which may drop one that waits too long.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Optional

from aiohttp import WSMsgType, web

from emotion_sensing.service.errors import ApiError
from emotion_sensing.service.face_routes import dropped_event
from emotion_sensing.service.keys import SETTINGS, STORE, STREAM_HANDLERS
from emotion_sensing.service.limits import AUDIO, FRAMES, LIMITS, REQUESTS
from emotion_sensing.service.origins import CLOSE_ORIGIN_NOT_ALLOWED, origin_problem
from emotion_sensing.session import valid_session_id

logger = logging.getLogger(__name__)
FRAME = 0x01
AUDIO_BYTES_PER_S = 16_000 * 2  # 16 kHz PCM16 mono


async def stream(request: web.Request) -> web.StreamResponse:
    session_id = request.match_info["session_id"]
    if not valid_session_id(session_id):
        raise ApiError(400, "invalid_session_id", "session id must be 1-128 characters of letters, digits and _.:@+-")
    settings = request.app[SETTINGS]
    # No permessage-deflate: JPEG frames and PCM audio hardly shrink (a 40 KB frame by 3%), and
    # deflating them costs the sender ~1 ms a frame (a phone, or the load generator on the
    # service's own cores) and the service the inflating.
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=settings.max_body_bytes, compress=False)
    await ws.prepare(request)
    problem = origin_problem(request)
    if problem is not None:
        # Upgraded only to say why: a browser cannot read the status of a refused handshake.
        await ws.send_json({"type": "error", "code": "origin_not_allowed", "message": problem, "at": time.time()})
        await ws.close(code=CLOSE_ORIGIN_NOT_ALLOWED, message=b"origin not allowed")
        return ws
    session = request.app[STORE].get_or_create(session_id)
    handlers = request.app[STREAM_HANDLERS]
    limits = request.app[LIMITS]

    def limited(kind: str, cost: float = 1.0) -> Optional[dict]:
        if limits.allow(session_id, kind, cost):
            return None
        return {"type": "error", "code": "rate_limited", "message": limits.message(kind)}
    waiting: Optional[bytes] = None
    frame_task: Optional[asyncio.Task] = None

    async def send(event: dict) -> None:
        if not ws.closed:
            await ws.send_json({**event, "at": time.time()})

    async def run_frames() -> None:
        nonlocal waiting
        while waiting is not None:
            payload, waiting = waiting, None
            for event in await handlers[FRAME](request, session, payload):
                await send(event)

    try:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                data: bytes = message.data
                if not data:
                    await send({"type": "error", "code": "empty_message", "message": "binary message is empty"})
                    continue
                kind, payload = data[0], data[1:]
                handler = handlers.get(kind)
                if handler is None:
                    await send({"type": "error", "code": "unknown_type",
                                "message": f"unknown message type 0x{kind:02x}; expected 0x01 frame or 0x02 audio"})
                    continue
                refusal = limited(FRAMES) if kind == FRAME else limited(AUDIO, len(payload) / AUDIO_BYTES_PER_S)
                if refusal is not None:
                    await send(refusal)
                    continue
                if kind == FRAME:
                    if waiting is not None:
                        await send(dropped_event(session))
                    waiting = payload
                    if frame_task is None or frame_task.done():
                        frame_task = asyncio.create_task(run_frames())
                else:
                    # Audio: cut into utterances now, read by the sensing worker later (the
                    # handler sends those events itself, so a busy worker never holds the socket).
                    for event in await handler(request, session, payload, send):
                        await send(event)
            elif message.type == WSMsgType.TEXT:
                await send(limited(REQUESTS) or _control(request, session, message.data))
            elif message.type == WSMsgType.ERROR:
                logger.info("stream %s closed with %s", session_id, ws.exception())
                break
    finally:
        if frame_task is not None and not frame_task.done():
            frame_task.cancel()
        for task in list(session.extras.get("voice", {}).get("pending", ())):
            task.cancel()
    return ws


def _control(request: web.Request, session, text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return {"type": "error", "code": "malformed_json", "message": f"malformed JSON: {error.msg}"}
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "ping":
        return {"type": "pong"}
    if kind == "state":
        return {"type": "state", "state": session.fuse(request.app[SETTINGS].fusion).to_dict(),
                "counts": session.counts(), "dropped": session.extras.get("face_dropped", 0)}
    return {"type": "error", "code": "unknown_control", "message": "expected {\"type\": \"ping\"} or {\"type\": \"state\"}"}


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/sessions/{session_id}/stream", stream)
