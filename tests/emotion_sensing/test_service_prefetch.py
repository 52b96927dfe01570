"""A message's text read before its turn asks: the turn collects the reading started when the
message reached Rasa."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.reading import Reading
from emotion_sensing.service.app import create_app
from emotion_sensing.service.pending import PendingTexts


@pytest.fixture
async def service(models_dir):
    server = TestServer(create_app(Settings(models_dir=models_dir)), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        yield http
    await server.close()


async def _texts(http) -> dict:
    async with http.get("/health") as response:
        return (await response.json())["texts"]


async def test_a_prefetched_text_is_collected_by_its_turn(service):
    text = "I'm furious, my order never arrived and nobody answers"
    async with service.post("/v1/sessions/p-1/texts", json={"text": text}) as response:
        assert response.status == 202 and (await response.json())["queued"] is True
    async with service.post("/v1/sessions/p-1/turns", json={"text": text}) as response:
        body = await response.json()
    assert body["reading"]["label"] == "angry" and body["state"]["label"] == "angry"
    assert await _texts(service) == {"pending": 0, "prefetched": 1, "prefetch_used": 1, "prefetch_late": 0}


async def test_a_post_that_arrives_after_its_turn_is_not_read_again(service):
    text = "I'm so scared my card was stolen"
    async with service.post("/v1/sessions/p-5/turns", json={"text": text}) as response:
        assert (await response.json())["reading"]["label"] == "fear"
    async with service.post("/v1/sessions/p-5/texts", json={"text": text}) as response:
        assert response.status == 202
    assert await _texts(service) == {"pending": 0, "prefetched": 0, "prefetch_used": 0, "prefetch_late": 1}
    # The same words again later are a new message: posted first, collected by their turn.
    async with service.post("/v1/sessions/p-5/texts", json={"text": text}):
        pass
    async with service.post("/v1/sessions/p-5/turns", json={"text": text}) as response:
        assert (await response.json())["reading"]["label"] == "fear"
    assert await _texts(service) == {"pending": 0, "prefetched": 1, "prefetch_used": 1, "prefetch_late": 1}


async def test_a_turn_with_other_text_reads_its_own(service):
    async with service.post("/v1/sessions/p-2/texts", json={"text": "thank you, that is wonderful"}):
        pass
    async with service.post("/v1/sessions/p-2/turns", json={"text": "I'm furious"}) as response:
        body = await response.json()
    assert body["reading"]["label"] == "angry"
    assert (await _texts(service))["prefetch_used"] == 0
    async with service.post("/v1/sessions/p-3/turns", json={"text": "thank you, that is wonderful"}) as response:
        assert (await response.json())["reading"]["label"] == "happy"  # another session's prefetch is not taken
    assert (await _texts(service))["prefetch_used"] == 0


async def test_bad_prefetches_are_refused(service):
    for body, status in (({"text": ""}, 422), ({"txt": "hi"}, 422), ({"text": "x" * 6000}, 413)):
        async with service.post("/v1/sessions/p-4/texts", json=body) as response:
            assert response.status == status, body
    async with service.post("/v1/sessions/bad id!/texts", json={"text": "hi"}) as response:
        assert response.status == 400


async def test_pending_readings_are_bounded_and_expire():
    async def read(text: str) -> Reading:
        await asyncio.sleep(0)
        return Reading("text", (0, 0, 0, 1, 0, 0, 0), 1.0)

    pending = PendingTexts(ttl_s=0.05, max_pending=3)
    for i in range(5):
        pending.start("s", f"t{i}", read)
    assert len(pending) == 3 and await pending.take("s", "t0") is None
    assert (await pending.take("s", "t4")).label == "happy"
    await asyncio.sleep(0.1)
    pending.start("s", "new", read)  # starting one drops the expired
    assert len(pending) == 1
