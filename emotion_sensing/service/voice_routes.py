"""The voice modality's routes and stream handler, registered by :func:`setup`.

| method | path | what |
|---|---|---|
| POST | /v1/speech | one-off voice reading of an uploaded utterance, no session |
| POST | /v1/sessions/{id}/audio | an utterance of the session's speaker: adds a voice reading, returns the fused state |

The body is the audio itself: a WAV, FLAC or OGG file (any rate, mono or stereo), or raw
16-bit little-endian mono PCM sent as ``Content-Type: audio/L16; rate=16000`` (or
``?format=pcm16&rate=16000``). ``?transcribe=1`` adds an offline transcript. Uploaded audio
is decoded in memory and never stored; a session keeps only running feature statistics of
its speaker (speech/speaker.py), which standardise each new utterance.

Stream (message type 0x02 of the service's WebSocket): raw PCM16 LE mono 16 kHz chunks.
Each session's chunks are cut into utterances by energy-based voice-activity detection
(speech/vad.py); each finished utterance yields ``{"type": "reading", ...}``. The audio held
per session is bounded by the longest utterance (15 s).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from aiohttp import web

from emotion_sensing.config import Settings
from emotion_sensing.service.errors import ApiError
from emotion_sensing.service.keys import MODALITY_STATUS, SETTINGS, STORE, STREAM_HANDLERS
from emotion_sensing.session import Session, valid_session_id
from emotion_sensing.speech.audio import SAMPLE_RATE, AudioError, decode, prepare
from emotion_sensing.speech.model import MODEL_FILE

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

VOICE = web.AppKey("voice", object)
TRANSCRIBER = web.AppKey("voice_transcriber", object)


def setup(app: web.Application, settings: Settings) -> None:
    """Load the voice recognizer (if its model is present) and add its routes.

    Registers its status under app[MODALITY_STATUS]["voice"] and, for the WebSocket
    stream, a handler under app[STREAM_HANDLERS][type byte].
    """
    from emotion_sensing.speech.transcribe import Transcriber

    status: Dict[str, Any] = {"on": False}
    app[VOICE] = None
    # Loads Whisper on the first request that asks for a transcript.
    app[TRANSCRIBER] = Transcriber()
    path = settings.models_dir / MODEL_FILE
    if "voice" not in settings.modalities:
        status["reason"] = "switched off (EMOBOT_MODALITIES)"
    elif not path.exists():
        status["reason"] = f"no model at {path}; run `emobot train speech`"
    else:
        try:
            from emotion_sensing.speech.recognizer import VoiceRecognizer

            started = time.time()
            recognizer = VoiceRecognizer(path)
            recognizer.warm_up()
            app[VOICE] = recognizer
            status.update(on=True, model=path.name, classifier=recognizer.model.meta.get("label"))
            logger.info("voice recognizer ready in %.1f s", time.time() - started)
        except Exception as error:  # noqa: BLE001 - a broken model must not stop the service
            logger.exception("voice model %s could not be loaded", path)
            status["reason"] = f"model could not be loaded: {error}"
    app[MODALITY_STATUS]["voice"] = status
    app.router.add_post("/v1/speech", analyse_speech)
    app.router.add_post("/v1/sessions/{session_id}/audio", add_audio)
    app[STREAM_HANDLERS][STREAM_TYPE] = stream_audio


def _recognizer(request: web.Request):
    recognizer = request.app[VOICE]
    if recognizer is None:
        reason = request.app[MODALITY_STATUS]["voice"].get("reason", "unavailable")
        code = "modality_off" if "switched off" in reason else "voice_unavailable"
        raise ApiError(409 if code == "modality_off" else 503, code, f"voice sensing is not available: {reason}")
    return recognizer


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


def _voice_state(session: Session, recognizer) -> Dict[str, Any]:
    """The session's derived voice state: speaker statistics and the stream's segmenter."""
    state = session.extras.get(EXTRAS_KEY)
    if state is None:
        state = session.extras[EXTRAS_KEY] = {"speaker": recognizer.new_speaker(), "segmenter": None}
    return state


async def _sense(app: web.Application, recognizer, samples: np.ndarray, speaker, transcribe: bool):
    """Reading (and transcript) of one 16 kHz utterance, off the event loop."""
    loop = asyncio.get_running_loop()
    reading = await loop.run_in_executor(None, lambda: recognizer.read(samples, SAMPLE_RATE, speaker=speaker))
    transcript = None
    if transcribe:
        if reading.extras.get("speech"):
            from emotion_sensing.speech.transcribe import TranscriptionUnavailable

            try:
                transcript = (await loop.run_in_executor(None, app[TRANSCRIBER].transcribe, samples)).to_dict()
            except TranscriptionUnavailable as error:
                transcript = {"text": None, "engine": None, "error": str(error)}
        else:
            transcript = {"text": "", "engine": None, "seconds": 0.0}
    return reading, transcript


async def analyse_speech(request: web.Request) -> web.Response:
    recognizer = _recognizer(request)
    samples, _ = await _read_audio(request)
    reading, transcript = await _sense(request.app, recognizer, samples, None, _wants_transcript(request))
    answer: Dict[str, Any] = {"reading": reading.to_dict()}
    if transcript is not None:
        answer["transcript"] = transcript
    return web.json_response(answer)


async def add_audio(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    if not valid_session_id(session_id):
        raise ApiError(400, "invalid_session_id", "session id must be 1-128 characters of letters, digits and _.:@+-")
    recognizer = _recognizer(request)
    samples, _ = await _read_audio(request)
    session = request.app[STORE].get_or_create(session_id)
    state = _voice_state(session, recognizer)
    reading, transcript = await _sense(request.app, recognizer, samples, state["speaker"], _wants_transcript(request))
    if reading.extras.get("speech"):
        session.add(reading)
    fused = session.fuse(request.app[SETTINGS].fusion)
    answer: Dict[str, Any] = {"session_id": session_id, "reading": reading.to_dict(), "state": fused.to_dict()}
    if transcript is not None:
        answer["transcript"] = transcript
    return web.json_response(answer)


def _error_event(code: str, message: str) -> Dict[str, Any]:
    return {"type": "error", "modality": "voice", "code": code, "message": message}


async def stream_audio(request: web.Request, session: Session, payload: bytes) -> List[Dict[str, Any]]:
    """Stream handler: one chunk of 16 kHz PCM16 LE mono; events for the utterances it ends."""
    recognizer = request.app[VOICE]
    if recognizer is None:
        return [_error_event("voice_unavailable", request.app[MODALITY_STATUS]["voice"].get("reason", "unavailable"))]
    if not payload:
        return []
    if len(payload) > MAX_CHUNK_BYTES:
        return [_error_event("chunk_too_large", f"a chunk may hold at most {MAX_CHUNK_BYTES} bytes (5 s)")]
    if len(payload) % 2:
        return [_error_event("truncated_audio", f"PCM16 chunks have an even number of bytes, got {len(payload)}")]
    from emotion_sensing.speech.vad import EnergySegmenter

    state = _voice_state(session, recognizer)
    if state["segmenter"] is None:
        state["segmenter"] = EnergySegmenter()
    samples = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
    events: List[Dict[str, Any]] = []
    transcribe = _wants_transcript(request)
    for utterance in state["segmenter"].push(samples):
        reading, transcript = await _sense(request.app, recognizer, utterance.samples, state["speaker"], transcribe)
        if not reading.extras.get("speech"):
            continue
        session.add(reading)
        event: Dict[str, Any] = {"type": "reading", "reading": reading.to_dict(),
                                 "utterance": {"start_s": round(utterance.start_s, 2),
                                               "duration_s": round(utterance.duration_s, 2)}}
        if transcript is not None:
            event["transcript"] = transcript
        events.append(event)
    if events:
        events.append({"type": "state", "state": session.fuse(request.app[SETTINGS].fusion).to_dict()})
    return events
