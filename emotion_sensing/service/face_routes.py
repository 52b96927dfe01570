"""The face modality's routes and stream handler, registered by :func:`setup`."""
from __future__ import annotations

from aiohttp import web

from emotion_sensing.config import Settings


def setup(app: web.Application, settings: Settings) -> None:
    """Load the face recognizer (if its model is present) and add its routes.

    Registers its status under app[MODALITY_STATUS]["face"] and, for the WebSocket
    stream, a handler under app[STREAM_HANDLERS][type byte].
    """
