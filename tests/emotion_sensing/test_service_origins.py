"""Which web pages may use the service: its own, and the origins in EMOBOT_ALLOWED_ORIGINS."""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.service.app import create_app

SHOP = "http://shop.example:8080"


@pytest.fixture
async def service(models_dir):
    server = TestServer(create_app(Settings(models_dir=models_dir, allowed_origins=(SHOP,))), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        yield http, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_the_script_and_its_modules_load_from_an_allowed_site(service):
    http, _ = service
    async with http.get("/static/emobot-sensing.js") as response:
        assert response.status == 200 and "javascript" in response.content_type
        assert "setSession" in await response.text()
    for path in ("/web/media.js", "/web/stream.js", "/web/pcm-worklet.js"):
        async with http.get(path, headers={"Origin": SHOP}) as response:
            assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == SHOP, path
    async with http.options("/v1/sessions/s1", headers={"Origin": SHOP, "Access-Control-Request-Method": "GET",
                                                        "Access-Control-Request-Headers": "authorization"}) as response:
        assert response.status == 204 and "Authorization" in response.headers["Access-Control-Allow-Headers"]
        assert response.headers["Access-Control-Allow-Origin"] == SHOP


async def test_the_modules_are_revalidated_so_an_upgrade_reaches_every_page(service):
    # app.js and the sensing script import from media.js and stream.js: an old cached module beside
    # a new one would break the page after an upgrade. Each load asks; an unchanged one costs a 304.
    http, _ = service
    for path in ("/web/app.js", "/web/media.js", "/web/stream.js", "/web/pcm-worklet.js"):
        async with http.get(path) as response:
            assert response.status == 200 and response.headers["Cache-Control"] == "no-cache", path
            etag = response.headers["ETag"]
        async with http.get(path, headers={"If-None-Match": etag}) as response:
            assert response.status == 304, path


async def test_a_site_not_listed_is_refused_and_says_why(service):
    http, _ = service
    for method, path in (("POST", "/v1/sessions/s1/turns"), ("GET", "/v1/sessions/s1"), ("GET", "/replay")):
        async with http.request(method, path, headers={"Origin": "https://evil.example"}, json={"text": "hi"}) as response:
            body = await response.json()
            assert response.status == 403 and body["error"]["code"] == "origin_not_allowed", path
            assert "https://evil.example" in body["error"]["message"] and "EMOBOT_ALLOWED_ORIGINS" in body["error"]["message"]
            assert "Access-Control-Allow-Origin" not in response.headers


async def test_any_page_may_load_the_script_and_its_modules(service):
    http, _ = service
    async with http.get("/web/media.js", headers={"Origin": "https://evil.example"}) as response:
        assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "https://evil.example"


async def test_the_services_own_pages_and_non_browser_clients_pass(service):
    http, base = service
    async with http.post("/v1/sessions/s2/turns", headers={"Origin": base}, json={"text": "hello"}) as response:
        assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
    async with http.post("/v1/sessions/s2/turns", json={"text": "hello"}) as response:
        assert response.status == 200


async def test_the_stream_of_a_page_not_listed_is_closed_with_the_reason(service):
    http, _ = service
    async with http.ws_connect("/v1/sessions/s3/stream", headers={"Origin": "https://evil.example"}) as ws:
        event = await ws.receive_json()
        assert event["type"] == "error" and event["code"] == "origin_not_allowed"
        closed = await ws.receive()
        assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4403
    async with http.get("/v1/sessions/s3") as response:
        assert response.status == 404  # nothing was kept for it
    async with http.ws_connect("/v1/sessions/s4/stream", headers={"Origin": SHOP}) as ws:
        await ws.send_str('{"type": "ping"}')
        assert (await ws.receive_json())["type"] == "pong"
