"""Rasa's endpoint requests over kept connections: one connection for many requests, Rasa's
own answers and errors, and a restarted server found again."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

from emobot import keepalive
from emotion_sensing.processes import free_port


async def _server(port: int, peers: list):
    async def webhook(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername")[1])
        body = await request.json()
        if body.get("fail"):
            return web.json_response({"error": "no"}, status=400)
        return web.json_response({"events": [], "echo": body, "token": request.query.get("token"),
                                  "header": request.headers.get("X-Test")})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture
def kept(monkeypatch):
    monkeypatch.delenv("EMOBOT_KEEPALIVE", raising=False)
    original = EndpointConfig.session
    keepalive.install()
    yield
    EndpointConfig.session = original
    keepalive._ORIGINAL = None
    keepalive.close_all()


def test_requests_share_one_connection_and_keep_rasas_answers(kept):
    port = free_port()
    endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook", token="secret", headers={"X-Test": "yes"})

    async def scenario():
        peers: list = []
        runner = await _server(port, peers)
        try:
            answers = [await endpoint.request(json={"n": n}, method="post") for n in range(5)]
            with pytest.raises(ClientResponseError) as refused:
                await endpoint.request(json={"fail": True}, method="post")
            after_error = await endpoint.request(json={"n": 5}, method="post")
        finally:
            await runner.cleanup()
        return peers, answers, refused.value, after_error

    peers, answers, refused, after_error = asyncio.run(scenario())
    assert [a["echo"] for a in answers] == [{"n": n} for n in range(5)]
    assert all(a["token"] == "secret" and a["header"] == "yes" for a in answers)
    assert refused.status == 400
    assert after_error["echo"] == {"n": 5}
    assert len(set(peers)) == 1, f"one kept connection expected, the server saw client ports {peers}"


def test_a_restarted_server_is_found_again(kept):
    port = free_port()
    endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")

    async def scenario():
        peers: list = []
        runner = await _server(port, peers)
        first = await endpoint.request(json={"n": 1}, method="post")
        await runner.cleanup()  # the action server stops, its connections with it
        runner = await _server(port, peers)
        try:
            second = await endpoint.request(json={"n": 2}, method="post")
        finally:
            await runner.cleanup()
        return first, second, peers

    first, second, peers = asyncio.run(scenario())
    assert first["echo"] == {"n": 1} and second["echo"] == {"n": 2}
    assert len(peers) == 2 and peers[0] != peers[1]


def test_switched_off_rasa_opens_a_session_per_request(monkeypatch):
    monkeypatch.setenv("EMOBOT_KEEPALIVE", "0")
    original = EndpointConfig.session
    keepalive.install()
    try:
        assert EndpointConfig.session is original
    finally:
        keepalive._ORIGINAL = None
