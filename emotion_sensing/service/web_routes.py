"""The chat page: a web widget for the assistant with a live emotion panel.

| method | path | what |
|---|---|---|
| GET | / | redirects to /chat |
| GET | /chat | the page (``?session=ID`` continues a conversation) |
| GET | /chat/config.json | where the page finds Rasa's socket.io channel and HTTP API |
| GET | /web/... | the page's scripts and styles (emotion_sensing/service/web/) |
| GET | /vendor/socket.io.min.js | the official socket.io client, installed from npm by set-up |
| GET | /static/emobot-sensing.js | one script tag adds camera/microphone sensing to any page with a chat widget |

The page chats through Rasa's socket.io channel with the conversation id as socket.io
session id (so it is the sender id the sensing action asks the service about, and it also
travels in ``customData``), streams camera frames and microphone audio to this service's
WebSocket (stream.py) while the person has them switched on, and shows each modality's
readings, the fused state and the emotion each reply was adapted to (``user_emotion`` in
Rasa's tracker, read through its HTTP API).
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from emotion_sensing.config import Settings
from emotion_sensing.labels import LABELS, UNKNOWN
from emotion_sensing.service.errors import ApiError
from emotion_sensing.service.keys import SETTINGS

WEB_DIR = Path(__file__).parent / "web"
# Installed by `npm ci` in WEB_DIR (scripts/setup.sh); packaged into the wheel from there.
SOCKET_IO_CLIENT = WEB_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
PAGE_PATH = "/chat"
SENSING_SCRIPT = "emobot-sensing.js"
SENSING_SCRIPT_PATH = f"/static/{SENSING_SCRIPT}"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def page_url(settings: Settings) -> str:
    """The chat page's address, as `emobot run` prints it."""
    host = "127.0.0.1" if settings.host in WILDCARD_HOSTS else settings.host
    return f"http://{host}:{settings.service_port}{PAGE_PATH}"


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PAGE_PATH)


async def chat_page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def page_config(request: web.Request) -> web.Response:
    settings: Settings = request.app[SETTINGS]
    # A service listening on every interface is reached by the name the browser used.
    host = request.url.host if settings.host in WILDCARD_HOSTS else settings.host
    return web.json_response({
        "rasa_url": f"http://{host}:{settings.rasa_port}",
        "socketio_path": "/socket.io",
        "modalities": list(settings.modalities),
        "labels": list(LABELS),
        "unknown": UNKNOWN,
    })


async def sensing_script(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / SENSING_SCRIPT, headers={"Cache-Control": "no-cache",
                                                               "Content-Type": "text/javascript; charset=utf-8"})


async def socketio_client(request: web.Request) -> web.StreamResponse:
    if not SOCKET_IO_CLIENT.is_file():
        raise ApiError(404, "socketio_client_missing",
                       f"the socket.io client is not installed at {SOCKET_IO_CLIENT}; run `make setup` "
                       f"(or `npm ci --omit=dev` in {WEB_DIR})")
    return web.FileResponse(SOCKET_IO_CLIENT, headers={"Cache-Control": "max-age=3600"})


async def revalidate_modules(request: web.Request, response: web.StreamResponse) -> None:
    """The page's modules (``/web/``) import one another, and the sensing script imports them from
    other sites: a browser that kept one module from before an upgrade would run it beside a newer
    one. Each is revalidated on every load instead (a 304 while it is unchanged)."""
    if request.path.startswith("/web/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-cache"


def setup(app: web.Application, settings: Settings) -> None:
    """Add the page's routes."""
    app.on_response_prepare.append(revalidate_modules)
    app.router.add_get("/", root)
    app.router.add_get(PAGE_PATH, chat_page)
    app.router.add_get(f"{PAGE_PATH}/config.json", page_config)
    app.router.add_get("/vendor/socket.io.min.js", socketio_client)
    app.router.add_get(SENSING_SCRIPT_PATH, sensing_script)
    app.router.add_static("/web", WEB_DIR, append_version=False)
