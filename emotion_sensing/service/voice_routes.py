"""The voice modality's routes and stream handler, registered by :func:`setup`.

| method | path | what |
|---|---|---|
| POST | /v1/speech | one-off voice reading of an uploaded utterance, no session |
| POST | /v1/sessions/{id}/audio | an utterance of the session's speaker: adds a voice reading, returns the fused state |

The body is the audio itself: a WAV, FLAC or OGG file (any rate, mono or stereo), or raw
16-bit little-endian mono PCM sent as ``Content-Type: audio/L16; rate=16000`` (or
``?format=pcm16&rate=16000``). ``?transcribe=1`` adds an offline transcript. Uploaded audio
is decoded in memory and never stored; a session keeps only running feature statistics of
its speaker (speech/speaker.py, held by the sensing worker), which standardise each new
utterance. Utterances are read by the sensing worker (sensing.py): at most two wait per
session, and one that waits too long is dropped (429 ``voice_busy`` over REST, a ``dropped``
event on the stream).

Stream (message type 0x02 of the service's WebSocket): raw PCM16 LE mono 16 kHz chunks.
Each session's chunks are cut into utterances by energy-based voice-activity detection
(speech/vad.py); each finished utterance yields ``{"type": "reading", ...}`` and a ``state``
event when the worker has read it, without holding up the socket meanwhile. The audio held
per session is bounded by the longest utterance (15 s).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import numpy as np
from aiohttp import web

from emotion_sensing.config import Settings
from emotion_sensing.service.errors import ApiError
from emotion_sensing.service.keys import MODALITY_STATUS, SENSING, SETTINGS, STORE, STREAM_HANDLERS
from emotion_sensing.service.sensing import Dropped, SensingPool, SensingUnavailable
from emotion_sensing.session import Session, valid_session_id
from emotion_sensing.speech.audio import SAMPLE_RATE, AudioError, decode, prepare

logger = logging.getLogger(__name__)

STREAM_TYPE = 0x02
# The longest utterance a request or a stream may carry, in seconds of audio.
MAX_UTTERANCE_S = 30.0
# One stream chunk: at most 5 s of 16 kHz PCM16.
MAX_CHUNK_BYTES = 5 * SAMPLE_RATE * 2
EXTRAS_KEY = "voice"
PCM_TYPES = ("audio/l16", "audio/pcm", "audio/x-pcm")
FILE_TYPES = (
    "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/flac", "audio/x-flac", "audio/ogg",
    "application/octet-stream", "",
)

def setup(app: web.Application, settings: Settings) -> None:
    """Voice routes and the stream's audio handler; the recognizer runs in the sensing worker
    (sensing.py), whose status is reported under app[MODALITY_STATUS]["voice"]."""
    pool: Optional[SensingPool] = app.get(SENSING)
    app[MODALITY_STATUS]["voice"] = pool.status["voice"] if pool is not None else {
        "on": False, "reason": "switched off (EMOBOT_MODALITIES)"}
    app.router.add_post("/v1/speech", analyse_speech)
    app.router.add_post("/v1/sessions/{session_id}/audio", add_audio)
    app[STREAM_HANDLERS][STREAM_TYPE] = stream_audio


def _pool(app: web.Application) -> SensingPool:
    pool = app.get(SENSING)
    if pool is None or not pool.available("voice"):
        reason = app[MODALITY_STATUS]["voice"].get("reason", "unavailable")
        code = "modality_off" if "switched off" in reason else "voice_unavailable"
        raise ApiError(409 if code == "modality_off" else 503, code, f"voice sensing is not available: {reason}")
    return pool


def _sample_rate(text: str) -> int:
    try:
        rate = int(text)
    except ValueError:
        raise ApiError(422, "invalid_rate", f"rate must be a whole number of Hz, got {text!r}") from None
    if not 4_000 <= rate <= 192_000:
        raise ApiError(422, "invalid_rate", f"rate must be between 4000 and 192000 Hz, got {rate}")
    return rate


def _pcm_rate(request: web.Request) -> Optional[int]:
    """The PCM sample rate when the body is raw PCM16, else None (a file)."""
    content_type = request.content_type.lower()
    if content_type in PCM_TYPES:
        params = _params(request)
        if params.get("channels", "1") != "1":
            raise ApiError(415, "unsupported_audio_format", "raw PCM must be mono (channels=1)")
        return _sample_rate(params.get("rate", str(SAMPLE_RATE)))
    if request.query.get("format", "").lower() in ("pcm16", "pcm", "l16"):
        return _sample_rate(request.query.get("rate", str(SAMPLE_RATE)))
    if content_type not in FILE_TYPES:
        raise ApiError(
            415, "unsupported_media_type",
            f"expected audio (audio/wav, audio/flac, audio/ogg or audio/L16; rate=16000), got {content_type}",
        )
    return None


def _params(request: web.Request) -> Dict[str, str]:
    header = request.headers.get("Content-Type", "")
    params = {}
    for part in header.split(";")[1:]:
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return params


async def _read_audio(request: web.Request) -> Tuple[np.ndarray, int]:
    pcm_rate = _pcm_rate(request)
    body = await request.read()
    try:
        samples, rate = decode(body, pcm_sample_rate=pcm_rate, max_seconds=MAX_UTTERANCE_S)
    except AudioError as error:
        status = {"unsupported_audio_format": 415, "audio_too_long": 413}.get(error.code, 400)
        raise ApiError(status, error.code, error.message) from None
    frames = samples.shape[0] if samples.ndim else 0
    if frames / rate > MAX_UTTERANCE_S:
        raise ApiError(
            413, "audio_too_long", f"{frames / rate:.1f} s of audio; one utterance may last at most {MAX_UTTERANCE_S:g} s"
        )
    try:
        return await asyncio.get_running_loop().run_in_executor(None, prepare, samples, rate), SAMPLE_RATE
    except AudioError as error:
        raise ApiError(400, error.code, error.message) from None


def _wants_transcript(request: web.Request) -> bool:
    return request.query.get("transcribe", "").lower() in ("1", "true", "yes")


def _segmenter(session: Session):
    """The session's stream segmenter (voice-activity detection), made on its first chunk."""
    from emotion_sensing.speech.vad import EnergySegmenter

    state = session.extras.setdefault(EXTRAS_KEY, {})
    if state.get("segmenter") is None:
        state["segmenter"] = EnergySegmenter()
    return state["segmenter"]


async def _sense(pool: SensingPool, session_id: Optional[str], samples: np.ndarray, transcribe: bool):
    """(Reading, transcript or None) of one 16 kHz utterance, from the sensing worker; ApiError
    429 when it was dropped (the worker is busy), 503 when the worker failed."""
    try:
        return await pool.voice(session_id, samples, transcribe)
    except Dropped:
        raise ApiError(429, "voice_busy", "the voice recognizer is busy; utterance dropped (try again shortly)") from None
    except SensingUnavailable as error:
        raise ApiError(503, "sensing_unavailable", str(error)) from None


async def analyse_speech(request: web.Request) -> web.Response:
    pool = _pool(request.app)
    samples, _ = await _read_audio(request)
    reading, transcript = await _sense(pool, None, samples, _wants_transcript(request))
    answer: Dict[str, Any] = {"reading": reading.to_dict()}
    if transcript is not None:
        answer["transcript"] = transcript
    return web.json_response(answer)


async def add_audio(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    if not valid_session_id(session_id):
        raise ApiError(400, "invalid_session_id", "session id must be 1-128 characters of letters, digits and _.:@+-")
    pool = _pool(request.app)
    samples, _ = await _read_audio(request)
    session = request.app[STORE].get_or_create(session_id)
    reading, transcript = await _sense(pool, session_id, samples, _wants_transcript(request))
    if reading.extras.get("speech"):
        session.add(reading)
    fused = session.fuse(request.app[SETTINGS].fusion)
    answer: Dict[str, Any] = {"session_id": session_id, "reading": reading.to_dict(), "state": fused.to_dict()}
    if transcript is not None:
        answer["transcript"] = transcript
    return web.json_response(answer)


def _error_event(code: str, message: str) -> Dict[str, Any]:
    return {"type": "error", "modality": "voice", "code": code, "message": message}


async def stream_audio(request: web.Request, session: Session, payload: bytes,
                       send: Optional[Callable[[Dict[str, Any]], Awaitable[None]]] = None) -> List[Dict[str, Any]]:
    """Stream handler: one chunk of 16 kHz PCM16 LE mono.

    Chunks are cut into utterances here (cheap); each finished utterance is read by the
    sensing worker. With ``send`` (the stream) the handler returns at once and the utterance's
    events are sent when its reading arrives, so a busy worker never holds up the socket;
    without it, the events of the utterances this chunk ended are returned.
    """
    pool = request.app.get(SENSING)
    if pool is None or not pool.available("voice"):
        return [_error_event("voice_unavailable", request.app[MODALITY_STATUS]["voice"].get("reason", "unavailable"))]
    if not payload:
        return []
    if len(payload) > MAX_CHUNK_BYTES:
        return [_error_event("chunk_too_large", f"a chunk may hold at most {MAX_CHUNK_BYTES} bytes (5 s)")]
    if len(payload) % 2:
        return [_error_event("truncated_audio", f"PCM16 chunks have an even number of bytes, got {len(payload)}")]
    samples = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
    transcribe = _wants_transcript(request)
    events: List[Dict[str, Any]] = []
    for utterance in _segmenter(session).push(samples):
        work = _utterance_events(request.app, pool, session, utterance, transcribe)
        if send is None:
            events += await work
        else:
            task = asyncio.ensure_future(_send_all(work, send))
            pending = session.extras[EXTRAS_KEY].setdefault("pending", set())
            pending.add(task)
            task.add_done_callback(pending.discard)
    return events


async def _send_all(work: Awaitable[List[Dict[str, Any]]], send: Callable[[Dict[str, Any]], Awaitable[None]]) -> None:
    for event in await work:
        await send(event)


async def _utterance_events(app: web.Application, pool: SensingPool, session: Session, utterance,
                            transcribe: bool) -> List[Dict[str, Any]]:
    """The events one utterance gives: its reading and the new fused state; dropped or failed, said so."""
    try:
        reading, transcript = await pool.voice(session.session_id, utterance.samples, transcribe)
    except Dropped as dropped:
        state = session.extras.setdefault(EXTRAS_KEY, {})
        state["dropped"] = state.get("dropped", 0) + 1
        return [{"type": "dropped", "modality": "voice", "reason": dropped.reason, "dropped": state["dropped"]}]
    except SensingUnavailable as error:
        return [_error_event("sensing_unavailable", str(error))]
    if not reading.extras.get("speech"):
        return []
    session.add(reading)
    event: Dict[str, Any] = {"type": "reading", "reading": reading.to_dict(),
                             "utterance": {"start_s": round(utterance.start_s, 2),
                                           "duration_s": round(utterance.duration_s, 2)}}
    if transcript is not None:
        event["transcript"] = transcript
    return [event, {"type": "state", "state": session.fuse(app[SETTINGS].fusion).to_dict()}]
