"""Typed keys of what the service application holds."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from emotion_sensing.config import Settings
from emotion_sensing.session import SessionStore
from emotion_sensing.text.recognizer import TextRecognizer

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", SessionStore)
TEXT = web.AppKey("text", TextRecognizer)
# The text model runs here, off the event loop (it takes a few ms; the loop keeps serving).
TEXT_EXECUTOR = web.AppKey("text_executor", ThreadPoolExecutor)
# Text readings started when the message reached Rasa, waiting for their turn (pending.py).
PENDING_TEXTS = web.AppKey("pending_texts", object)
# Per-modality status merged into /health, e.g. {"face": {"on": True, "model": "..."}}.
MODALITY_STATUS = web.AppKey("modality_status", dict)
# WebSocket stream: message type byte -> async handler(request, session, payload[, send]) -> list of events.
STREAM_HANDLERS = web.AppKey("stream_handlers", dict)
# Face and voice analysis: the low-priority sensing worker and its scheduler (sensing.py);
# None when neither modality is switched on.
SENSING = web.AppKey("sensing", object)
