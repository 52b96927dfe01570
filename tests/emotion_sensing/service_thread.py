"""The real service on a loopback port, served from a background thread's event loop.

Synchronous tests (hypothesis's @given cannot drive an async test) talk to it over real
HTTP and WebSockets; the recognizers are the shipped ones.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import List, Optional

from aiohttp import web

from emotion_sensing.config import Settings
from emotion_sensing.service.app import create_app


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class ServiceThread:
    """``with ServiceThread(settings) as service: service.url ...``; ``errors`` are the ERROR logs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: Optional[web.Application] = None
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: Optional[web.AppRunner] = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="service", daemon=True)
        self._errors = _Collect()

    @property
    def errors(self) -> List[str]:
        return [record.getMessage() for record in self._errors.records]

    def start(self) -> ServiceThread:
        logging.getLogger("emotion_sensing").addHandler(self._errors)
        logging.getLogger("aiohttp").addHandler(self._errors)
        self.app = create_app(self.settings)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=120)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def call(self, function, *args):
        """Run ``function(*args)`` on the service's loop (its state is not thread-safe)."""
        async def run():
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
        logging.getLogger("emotion_sensing").removeHandler(self._errors)
        logging.getLogger("aiohttp").removeHandler(self._errors)

    def __enter__(self) -> ServiceThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
