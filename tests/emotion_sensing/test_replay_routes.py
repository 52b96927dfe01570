"""The service's replay pages: the conversations of the tracker store and one's HTML report."""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.service.app import create_app
from tests.emobot.test_replay import BOT, SLOTS, USER, make_store


async def serve(settings: Settings):
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    return server, aiohttp.ClientSession(base_url=str(server.make_url("")))


@pytest.fixture
async def service(models_dir, tmp_path):
    url = make_store(tmp_path / "t.db", {"alice": [USER, *SLOTS, *BOT, USER, *BOT], "bob": [USER]})
    server, http = await serve(Settings(models_dir=models_dir, tracker_store_url=url))
    async with http:
        yield http
    await server.close()


async def test_the_list_links_every_conversation(service):
    async with service.get("/replay") as response:
        page = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert "href='/replay/alice'" in page and "href='/replay/bob'" in page
    async with service.get("/replay", params={"format": "json"}) as response:
        listed = (await response.json())["conversations"]
    assert {c["sender_id"]: c["user_turns"] for c in listed} == {"alice": 2, "bob": 1}


async def test_a_conversation_page_is_the_report_with_its_timeline(service):
    async with service.get("/replay/alice") as response:
        page = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert '<svg id="timeline"' in page and page.count('class="turn"') == 2
    assert "I&#x27;m furious" in page and "I&#x27;m truly sorry." in page


async def test_unknown_and_invalid_ids_get_clear_errors(service):
    async with service.get("/replay/carol") as response:
        body = await response.json()
    assert response.status == 404 and body["error"]["code"] == "unknown_conversation"
    assert "no conversation with sender id 'carol'" in body["error"]["message"]
    async with service.get("/replay/bad%20id") as response:
        assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_sender_id"


async def test_an_empty_missing_or_unconfigured_store(models_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no endpoints.yml here
    cases = {
        "missing": Settings(models_dir=models_dir, tracker_store_url=f"sqlite:///{tmp_path / 'none.db'}"),
        "unconfigured": Settings(models_dir=models_dir),
    }
    server, http = await serve(cases["missing"])
    async with http:
        async with http.get("/replay") as response:
            assert response.status == 200 and "No conversations in the tracker store yet" in await response.text()
        async with http.get("/replay/alice") as response:
            assert response.status == 404 and "does not exist" in (await response.json())["error"]["message"]
    await server.close()
    server, http = await serve(cases["unconfigured"])
    async with http:
        async with http.get("/replay") as response:
            body = await response.json()
        assert response.status == 503 and body["error"]["code"] == "no_tracker_store"
        assert "EMOBOT_TRACKER_STORE_URL" in body["error"]["message"]
    await server.close()


async def test_the_store_comes_from_endpoints_yml_in_the_working_folder(models_dir, tmp_path, monkeypatch):
    make_store(tmp_path / "tracker.db", {"dave": [USER, *SLOTS, *BOT]})
    (tmp_path / "endpoints.yml").write_text("tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: tracker.db\n")
    monkeypatch.chdir(tmp_path)
    server, http = await serve(Settings(models_dir=models_dir))
    async with http:
        async with http.get("/replay/dave") as response:
            assert response.status == 200 and "Conversation dave" in await response.text()
    await server.close()
