"""Which web pages may use the service: its own, and the origins in EMOBOT_ALLOWED_ORIGINS.

A page on another site that embeds ``emobot-sensing.js`` talks to the service from its own
origin. The browser says which (the ``Origin`` header); a request from an origin that is
neither the service's own nor listed is refused with 403 ``origin_not_allowed`` (its WebSocket
is closed with code 4403 after an error event saying why, which the page can show). The script
and its modules (``/static/``, ``/web/``) load from any page: they hold no data. Listed origins
get the CORS headers their state polling needs.
Requests without an ``Origin`` (the action server, ``emobot chat``, curl) are not a browser's
and are left to the token rules (auth.py).
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional

from aiohttp import web

from emotion_sensing.service.errors import ApiError
from emotion_sensing.service.keys import SETTINGS

CLOSE_ORIGIN_NOT_ALLOWED = 4403
# The scripts and styles hold no conversation data: any page may load them (so that a page that
# is not allowed still gets the sensing panel, and with it the stream's reason for refusing).
STATIC_PREFIXES = ("/web/", "/static/")
ALLOW_HEADERS = "Authorization, Content-Type"
ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".rstrip("/")


def origin_problem(request: web.Request) -> Optional[str]:
    """Why this request's page may not use the service, or None if it may."""
    origin = request.headers.get("Origin")
    if not origin:
        return None
    origin = origin.rstrip("/")
    allowed = request.app[SETTINGS].allowed_origins
    if origin == own_origin(request) or origin in allowed or "*" in allowed:
        return None
    return (f"pages from {origin} may not use this emotion service; its operator lists the sites that may in "
            f"EMOBOT_ALLOWED_ORIGINS (now: {', '.join(allowed) or 'only its own pages'})")


def _cors(request: web.Request, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    if origin and origin.rstrip("/") != own_origin(request):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"


@web.middleware
async def check_origin(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    """403 for pages of origins not allowed; CORS headers and preflight answers for allowed ones.
    The stream's WebSocket checks for itself (stream.py), to close with a reason the page can read."""
    if request.path.endswith("/stream") and request.headers.get("Upgrade", "").lower() == "websocket":
        return await handler(request)
    problem = None if request.path.startswith(STATIC_PREFIXES) else origin_problem(request)
    if problem is not None:
        raise ApiError(403, "origin_not_allowed", problem)
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        response = web.Response(status=204, headers={"Access-Control-Allow-Methods": ALLOW_METHODS,
                                                     "Access-Control-Allow-Headers": ALLOW_HEADERS,
                                                     "Access-Control-Max-Age": "600"})
        _cors(request, response)
        return response
    response = await handler(request)
    _cors(request, response)
    return response
