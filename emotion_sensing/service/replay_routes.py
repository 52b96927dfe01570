"""Replay pages: stored conversations with their emotion annotations, in the browser.

| method | path | what |
|---|---|---|
| GET | /replay | the conversations in the tracker store, newest first (``?format=json`` for JSON) |
| GET | /replay/{sender_id} | one conversation: the HTML report with its valence/emotion timeline |
| GET | /insights | emotion across conversations (insights.py): ``?since=7d&until=...&model_id=...&min_n=5&by=day``, ``&format=json`` |

The pages read Rasa's SQL tracker store: ``Settings.tracker_store_url``
(EMOBOT_TRACKER_STORE_URL), else the ``tracker_store`` block of the endpoints.yml in the
working folder. Reading and rendering are the library's own (``emotion_sensing.replay``,
``emotion_sensing.report``): the service needs nothing of the Rasa-side package.
"""
from __future__ import annotations

import asyncio
import html
import time
from pathlib import Path
from typing import Callable, TypeVar

from aiohttp import web

from emotion_sensing.config import Settings
from emotion_sensing.service.errors import ApiError
from emotion_sensing.service.keys import SETTINGS
from emotion_sensing.session import valid_session_id

T = TypeVar("T")


def _store_url(settings: Settings) -> str:
    """The tracker store's SQLAlchemy URL, or an ApiError saying how to configure one."""
    if settings.tracker_store_url:
        return settings.tracker_store_url
    from emotion_sensing.replay import store_url

    endpoints = Path.cwd() / "endpoints.yml"
    block = None
    if endpoints.is_file():
        import yaml

        block = (yaml.safe_load(endpoints.read_text()) or {}).get("tracker_store")
    if not block:
        raise ApiError(
            503, "no_tracker_store",
            f"no tracker store configured: set EMOBOT_TRACKER_STORE_URL or a tracker_store block in {endpoints}",
        )
    return store_url(block, endpoints.parent)


async def _read(request: web.Request, read: Callable[[str], T]) -> T:
    """Run ``read(url)`` off the event loop; replay's own errors become clear JSON errors."""
    from emotion_sensing.replay import EmptyStore, ReplayError, UnknownConversation

    try:
        url = _store_url(request.app[SETTINGS])
        return await asyncio.get_running_loop().run_in_executor(None, read, url)
    except (UnknownConversation, EmptyStore) as error:
        raise ApiError(404, "unknown_conversation", str(error)) from None
    except ReplayError as error:
        raise ApiError(503, "tracker_store_unreadable", str(error)) from None


def _list_page(conversations: list) -> str:
    rows = "".join(
        f"<tr><td><a href='/replay/{html.escape(c['sender_id'], quote=True)}'>{html.escape(c['sender_id'])}</a></td>"
        f"<td>{c['user_turns']}</td><td>{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(c['last'] or 0))}</td></tr>"
        for c in conversations
    )
    body = (
        f"<table><thead><tr><th>conversation</th><th>user turns</th><th>last activity</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>" if conversations else "<p>No conversations in the tracker store yet.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conversations</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 24px; }} td, th {{ padding: 4px 12px; text-align: left; }}</style>
</head><body><h1>Conversations</h1>{body}</body></html>
"""


def _conversations(url: str) -> list:
    from emotion_sensing.replay import EmptyStore, TrackerReader

    try:
        return TrackerReader(url).conversations()
    except EmptyStore:
        return []


async def list_conversations(request: web.Request) -> web.Response:
    from_store: list = await _read(request, _conversations)
    if request.query.get("format") == "json":
        return web.json_response({"conversations": from_store})
    return web.Response(text=_list_page(from_store), content_type="text/html")


async def conversation_report(request: web.Request) -> web.Response:
    sender_id = request.match_info["sender_id"]
    if not valid_session_id(sender_id):
        raise ApiError(400, "invalid_sender_id", "sender id must be 1-128 characters of letters, digits and _.:@+-")

    def render(url: str) -> str:
        from emotion_sensing.replay import replay
        from emotion_sensing.report import to_html

        return to_html(sender_id, replay(sender_id, url))

    return web.Response(text=await _read(request, render), content_type="text/html")


async def insights_page(request: web.Request) -> web.Response:
    from emotion_sensing.insights import InsightsError, Query, insights, parse_when
    from emotion_sensing.insights_report import to_html

    q = request.query
    try:
        query = Query(since=parse_when(q.get("since")), until=parse_when(q.get("until")), model_id=q.get("model_id"),
                      min_n=int(q.get("min_n", 5)), upset_valence=float(q.get("upset", -0.3)),
                      bucket=q.get("by", "day") if q.get("by", "day") in ("day", "hour") else "day",
                      rating_slot=q.get("rating_slot", "rating"))
    except ValueError as error:
        raise ApiError(400, "invalid_query", str(error)) from None

    def compute(url: str):
        try:
            return insights(url, query)
        except InsightsError as error:
            return {"error": str(error)}

    result = await _read(request, compute)
    if "error" in result:
        if q.get("format") == "json":
            raise ApiError(404, "no_turns", result["error"])
        page = f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Emotion insights</title></head>" \
               f"<body><h1>Emotion insights</h1><p>{html.escape(result['error'])}</p></body></html>"
        return web.Response(text=page, content_type="text/html", status=404)
    if q.get("format") == "json":
        return web.json_response(result)
    rendered = await asyncio.get_running_loop().run_in_executor(None, lambda: to_html(result, base_url=""))
    return web.Response(text=rendered, content_type="text/html")


def setup(app: web.Application, settings: Settings) -> None:
    """Add the replay and insights pages."""
    app.router.add_get("/insights", insights_page)
    app.router.add_get("/replay", list_conversations)
    app.router.add_get("/replay/{sender_id}", conversation_report)
