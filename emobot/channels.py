"""A socket.io input channel that works with python-socketio 5.

Rasa 3.6's SocketIOInput calls ``sio.enter_room(...)`` without ``await``; in python-socketio 5
that is a coroutine, so the socket never joins its session's room and the browser never
receives ``bot_uttered`` (RasaHQ/rasa#13027). This subclass re-registers the
``session_request`` handler with the call awaited. Named in credentials.yml as
``emobot.channels.SocketIOInput``.

Behind :mod:`emobot.front` (several Rasa processes on one port) each process starts its session
ids with its number, so the front can send a session's every request to the process that holds it.
"""
from __future__ import annotations

import inspect
import logging
import os
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from sanic import Blueprint

from emobot import rasa_patches
from emobot.front import PROCESS_ENV, session_prefix

logger = logging.getLogger(__name__)
# Rasa imports this module from credentials.yml, so the speed fix lands in its process.
rasa_patches.apply()


class SocketIOInput(RasaSocketIOInput):
    """Rasa's socket.io channel with session persistence fixed."""

    @classmethod
    def name(cls) -> str:
        return "socketio"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = super().blueprint(on_new_message)
        sio = self.sio
        process = os.environ.get(PROCESS_ENV, "")
        if process.isdigit():
            generate, prefix = sio.eio.generate_id, session_prefix(int(process))
            sio.eio.generate_id = lambda: prefix + generate()

        async def session_request(sid: str, data: Optional[Dict]) -> None:
            data = data or {}
            if data.get("session_id") is None:
                data["session_id"] = uuid.uuid4().hex
            if self.session_persistence:
                joined = sio.enter_room(sid, data["session_id"], namespace=self.namespace or "/")
                if inspect.isawaitable(joined):
                    await joined
            await sio.emit("session_confirm", data["session_id"], room=sid)
            logger.debug("socket %s joined session %s", sid, data["session_id"])

        sio.on("session_request", namespace=self.namespace)(session_request)
        return blueprint
