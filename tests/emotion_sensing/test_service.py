"""The real aiohttp service on a loopback port, with the shipped text model."""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.service.app import create_app


@pytest.fixture
async def service(models_dir):
    settings = Settings(models_dir=models_dir, max_body_bytes=64 * 1024, max_text_chars=2000)
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        yield http
    await server.close()


async def test_health_says_which_recognizers_are_loaded(service):
    async with service.get("/health") as response:
        body = await response.json()
    assert response.status == 200
    assert body["status"] == "ok"
    assert body["modalities"]["text"]["classifier"] is True


async def test_turn_senses_anger_and_fuses_it(service):
    text = "I'm furious, my order never arrived and nobody answers"
    async with service.post("/v1/sessions/conv-1/turns", json={"text": text}) as response:
        body = await response.json()
    assert response.status == 200
    assert body["state"]["label"] == "angry"
    assert body["reading"]["extras"]["vader"]["compound"] < 0
    assert body["state"]["contributions"][0]["modality"] == "text"
    async with service.get("/v1/sessions/conv-1") as response:
        session = await response.json()
    assert session["turns"] == 1 and session["state"]["label"] == "angry"


async def test_stateless_text_analysis(service):
    async with service.post("/v1/text", json={"text": "This is wonderful, thank you so much!"}) as response:
        body = await response.json()
    assert body["reading"]["label"] == "happy"
    assert body["reading"]["valence"] > 0.3


async def expect_error(response, status, code):
    body = await response.json()
    assert response.status == status, body
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.parametrize(
    "data, headers, status, code",
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "malformed_json"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "malformed_json"),
        (b"", {"Content-Type": "application/json"}, 400, "empty_body"),
        (b'{"text": "caf\xe9"}', {"Content-Type": "application/json"}, 400, "invalid_encoding"),
        (b'{"text": ""}', {"Content-Type": "application/json"}, 422, "empty_text"),
        (b'{"text": "   "}', {"Content-Type": "application/json"}, 422, "empty_text"),
        (b'{"text": 42}', {"Content-Type": "application/json"}, 422, "invalid_text"),
        (b'{"words": "hi"}', {"Content-Type": "application/json"}, 422, "invalid_text"),
        (b'{"text": "hi"}', {"Content-Type": "text/html"}, 415, "unsupported_media_type"),
        (('{"text": "%s"}' % ("a" * 3000)).encode(), {"Content-Type": "application/json"}, 413, "text_too_long"),
        (b'{"text": "' + b"a" * 100_000 + b'"}', {"Content-Type": "application/json"}, 413, "body_too_large"),
    ],
)
async def test_bad_input_gets_a_clear_4xx_and_the_service_keeps_serving(service, data, headers, status, code):
    async with service.post("/v1/sessions/bad-1/turns", data=data, headers=headers) as response:
        await expect_error(response, status, code)
    async with service.post("/v1/sessions/bad-1/turns", json={"text": "where is my order?"}) as response:
        assert response.status == 200


async def test_unknown_and_invalid_sessions(service):
    async with service.get("/v1/sessions/never-seen") as response:
        await expect_error(response, 404, "unknown_session")
    async with service.delete("/v1/sessions/never-seen") as response:
        await expect_error(response, 404, "unknown_session")
    async with service.get("/v1/sessions/%3Cscript%3E") as response:
        await expect_error(response, 400, "invalid_session_id")
    async with service.get("/no/such/route") as response:
        await expect_error(response, 404, "not_found")
    async with service.put("/v1/text", json={"text": "x"}) as response:
        await expect_error(response, 405, "method_not_allowed")


async def test_forgetting_a_session_drops_its_readings(service):
    async with service.post("/v1/sessions/forget-me/turns", json={"text": "I am so sad today"}) as response:
        assert response.status == 200
    async with service.delete("/v1/sessions/forget-me") as response:
        assert (await response.json())["deleted"] is True
    async with service.get("/v1/sessions/forget-me") as response:
        assert response.status == 404
