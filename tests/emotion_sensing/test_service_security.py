"""Loopback by default, a token off loopback, per-session rate limits, and forgetting a session."""
from __future__ import annotations

import subprocess
import sys

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from emobot.cli import main as emobot
from emotion_sensing.config import Settings, is_loopback
from emotion_sensing.service.app import create_app
from emotion_sensing.service.auth import ExposedWithoutToken
from emotion_sensing.service.client import EmotionClient, ServiceError
from emotion_sensing.service.limits import LIMITS
from tests.emotion_sensing.service_thread import ServiceThread

TOKEN = "s3cret-token"
TEXT_ONLY = ("text",)


@pytest.fixture
async def serve(models_dir):
    """serve(**settings) -> (base URL, app) of a real service on loopback."""
    servers = []

    async def start(**overrides):
        settings = Settings(models_dir=models_dir, **{"modalities": TEXT_ONLY, **overrides})
        server = TestServer(create_app(settings), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/"), server.app

    yield start
    for server in servers:
        await server.close()


def test_everything_listens_on_loopback_by_default():
    settings = Settings.from_env(environ={})
    assert settings.host == "127.0.0.1" and is_loopback(settings.host)
    assert settings.service_url.startswith("http://127.0.0.1:")
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.1.1"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.20", "example.com"))


def test_the_service_refuses_to_listen_off_loopback_without_a_token(models_dir):
    with pytest.raises(ExposedWithoutToken, match="EMOBOT_SERVICE_TOKEN"):
        create_app(Settings(host="0.0.0.0", models_dir=models_dir))
    started = subprocess.run(
        [sys.executable, "-m", "emotion_sensing.service", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "EMOBOT_MODALITIES": "text"},
    )
    assert started.returncode != 0
    assert "refusing to listen on 0.0.0.0" in started.stderr and "EMOBOT_SERVICE_TOKEN" in started.stderr


async def test_with_a_token_every_route_but_health_needs_it(serve):
    url, _ = await serve(service_token=TOKEN)
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/health") as response:
            assert response.status == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            async with http.post(url + "/v1/sessions/t-1/turns", json={"text": "hi"}, headers=headers) as response:
                assert response.status == 401
                assert (await response.json())["error"]["code"] == "unauthorized"
        async with http.get(url + "/openapi.json") as response:
            assert response.status == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.post(url + "/v1/sessions/t-1/turns", json={"text": "hi"}, headers=auth) as response:
            assert response.status == 200
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url + "/v1/sessions/t-1/stream")
        assert refused.value.status == 401
        async with http.ws_connect(url + f"/v1/sessions/t-1/stream?token={TOKEN}") as ws:
            await ws.send_str('{"type": "ping"}')
            assert (await ws.receive_json())["type"] == "pong"


async def test_the_action_servers_client_sends_the_token(serve):
    url, _ = await serve(service_token=TOKEN)
    client = EmotionClient(url, budget_ms=5000, token=TOKEN)
    anonymous = EmotionClient(url, budget_ms=5000)
    try:
        assert (await client.turn("t-2", "I am so happy"))["state"]["label"] == "happy"
        with pytest.raises(ServiceError) as refused:
            await anonymous.turn("t-2", "hello")
        assert refused.value.status == 401
        assert (await anonymous.turn_or_unknown("t-2", "hello"))["sensing"] == "error: unauthorized"
    finally:
        await client.close()
        await anonymous.close()


async def test_a_session_sending_too_fast_gets_429_and_others_do_not(serve):
    url, app = await serve(session_requests_per_s=2)  # a burst of 2 s: 4 requests
    app[LIMITS].clock = lambda: 0.0  # time stands still: nothing refills, however slow the machine
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(8):
            async with http.post(url + "/v1/sessions/fast/turns", json={"text": "hi"}) as response:
                statuses.append(response.status)
                if response.status == 429:
                    error = (await response.json())["error"]
        assert statuses == [200] * 4 + [429] * 4
        assert error["code"] == "rate_limited" and "EMOBOT_SESSION_REQUESTS_PER_S" in error["message"]
        async with http.post(url + "/v1/sessions/calm/turns", json={"text": "hi"}) as response:
            assert response.status == 200
        async with http.delete(url + "/v1/sessions/fast") as response:
            assert response.status == 200  # forgetting is never rate-limited


async def test_frames_beyond_the_frame_rate_are_refused(serve, astronaut_bgr):
    import cv2

    jpeg = cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()
    url, app = await serve(modalities=("text", "face"), session_frames_per_s=1)  # a burst of 2 frames
    # Time stands still: a slow first frame (CI took over 1 s) must not refill the bucket.
    app[LIMITS].clock = lambda: 0.0
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(4):
            async with http.post(url + "/v1/sessions/cam/frames", data=jpeg,
                                 headers={"Content-Type": "image/jpeg"}) as response:
                statuses.append((response.status, (await response.json()).get("error", {}).get("code")))
        assert statuses[:2] == [(200, None)] * 2
        assert statuses[2:] == [(429, "rate_limited")] * 2
        async with http.ws_connect(url + "/v1/sessions/cam/stream") as ws:
            for _ in range(3):
                await ws.send_bytes(b"\x01" + jpeg)
            events = [await ws.receive_json(timeout=60) for _ in range(3)]
        assert any(e["type"] == "error" and e["code"] == "rate_limited" for e in events), events


def _tracker_db(path) -> str:
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as db:
        db.execute(sa.text("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, "
                           "timestamp REAL, intent_name TEXT, action_name TEXT, data TEXT)"))
        for sender in ("forget-me", "forget-me", "keep-me"):
            db.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (:s, 'user', 1, '{}')"),
                       {"s": sender})
    engine.dispose()
    return url


def test_emobot_forget_deletes_the_readings_and_with_tracker_the_events(models_dir, tmp_path, monkeypatch, capsys):
    settings = Settings(models_dir=models_dir, modalities=TEXT_ONLY, service_token=TOKEN)
    store = _tracker_db(tmp_path / "tracker.db")
    with ServiceThread(settings) as service:
        import requests

        auth = {"Authorization": f"Bearer {TOKEN}"}
        for sender in ("forget-me", "keep-me"):
            requests.post(f"{service.url}/v1/sessions/{sender}/turns", json={"text": "I am sad"}, headers=auth)
        monkeypatch.setenv("EMOBOT_SERVICE_URL", service.url)
        monkeypatch.setenv("EMOBOT_SERVICE_TOKEN", TOKEN)
        assert emobot(["forget", "forget-me"]) == 0
        out = capsys.readouterr().out
        assert "emotion readings deleted" in out and "stays in Rasa's tracker store" in out
        assert requests.get(f"{service.url}/v1/sessions/forget-me", headers=auth).status_code == 404
        assert requests.get(f"{service.url}/v1/sessions/keep-me", headers=auth).status_code == 200

        assert emobot(["forget", "keep-me", "--tracker", "--store", store]) == 0
        assert "1 events deleted from the tracker store" in capsys.readouterr().out
        assert emobot(["forget", "keep-me"]) == 0
        assert "held no readings" in capsys.readouterr().out

        monkeypatch.setenv("EMOBOT_SERVICE_TOKEN", "wrong")
        assert emobot(["forget", "forget-me"]) == 2
        assert "EMOBOT_SERVICE_TOKEN" in capsys.readouterr().err
    engine = sa.create_engine(store)
    with engine.connect() as db:
        left = [r[0] for r in db.execute(sa.text("SELECT sender_id FROM events"))]
    engine.dispose()
    assert left == ["forget-me", "forget-me"]
    monkeypatch.setenv("EMOBOT_SERVICE_TOKEN", TOKEN)
    assert emobot(["forget", "forget-me"]) == 2  # the service is stopped now
    assert "did not answer" in capsys.readouterr().err


def test_a_session_bucket_refills_at_its_rate_up_to_a_two_second_burst(models_dir):
    from emotion_sensing.service.limits import FRAMES, SessionLimits

    now = [0.0]
    limits = SessionLimits(Settings(models_dir=models_dir, session_frames_per_s=2), clock=lambda: now[0])
    assert [limits.allow("s", FRAMES) for _ in range(5)] == [True] * 4 + [False]  # 2 s at 2 frames/s
    now[0] += 0.5  # one frame's worth
    assert [limits.allow("s", FRAMES) for _ in range(2)] == [True, False]
    now[0] += 60  # a long pause refills no more than the burst
    assert [limits.allow("s", FRAMES) for _ in range(5)] == [True] * 4 + [False]
    assert limits.allow("other", FRAMES) and limits.refused[FRAMES] == 3
