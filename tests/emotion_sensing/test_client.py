"""The client keeps the chat going: an absent or slow service yields unknown, in budget."""
from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.service.app import create_app
from emotion_sensing.service.client import EmotionClient
from tests.integration.helpers import closed_port

# Each reply is timed against its budget: alone, not beside other tests (`make test`).
pytestmark = pytest.mark.serial


async def test_absent_service_gives_unknown_quickly():
    client = EmotionClient(f"http://127.0.0.1:{closed_port()}", budget_ms=300)
    started = time.perf_counter()
    answer = await client.turn_or_unknown("s1", "I'm furious")
    await client.close()
    assert answer["state"]["label"] == "unknown"
    assert answer["sensing"].startswith("unavailable")
    assert time.perf_counter() - started < 1.0


async def test_slow_service_gives_unknown_within_the_budget():
    async def slow(request):
        await asyncio.sleep(5)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/sessions/{sid}/turns", slow)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = EmotionClient(str(server.make_url("")).rstrip("/"), budget_ms=200)
    started = time.perf_counter()
    answer = await client.turn_or_unknown("s1", "hello")
    elapsed = time.perf_counter() - started
    await client.close()
    await server.close()
    assert answer["sensing"] == "timeout"
    assert answer["state"]["label"] == "unknown"
    assert elapsed < 1.0


async def test_client_against_the_real_service(models_dir):
    server = TestServer(create_app(Settings(models_dir=models_dir)), host="127.0.0.1")
    await server.start_server()
    client = EmotionClient(str(server.make_url("")).rstrip("/"), budget_ms=2000)
    answer = await client.turn_or_unknown("s2", "I'm so scared, I think someone stole my card")
    health = await client.health()
    await client.close()
    await server.close()
    assert answer["sensing"] == "ok"
    assert answer["state"]["label"] == "fear"
    assert health["status"] == "ok"
