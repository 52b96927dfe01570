"""Who may talk to the service: anyone on this machine, or whoever holds the token.

On loopback (the default) the service needs no token. Bound to any other address it
refuses to start without ``EMOBOT_SERVICE_TOKEN``, and then every request but ``GET /health``
and the chat page's static files must carry ``Authorization: Bearer <token>`` (a browser's WebSocket, which cannot set
headers, may send ``?token=`` on the stream URL instead); others get 401.
"""
from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, Dict, Optional

from aiohttp import web

from emotion_sensing.config import Settings, is_loopback
from emotion_sensing.service.errors import ApiError
from emotion_sensing.service.keys import SETTINGS

# Liveness and the chat page's static files (they hold no conversation data) stay open.
OPEN_PATHS = ("/health", "/", "/chat", "/chat/config.json", "/vendor/socket.io.min.js")
OPEN_PREFIXES = ("/web/", "/static/")


class ExposedWithoutToken(ValueError):
    """The service was asked to listen off loopback with no token."""


def check_exposure(settings: Settings) -> None:
    """Raise ExposedWithoutToken when ``settings`` would expose an unauthenticated service."""
    if not is_loopback(settings.host) and not settings.service_token:
        raise ExposedWithoutToken(
            f"refusing to listen on {settings.host}: off loopback the emotion service requires a token. "
            "Set EMOBOT_SERVICE_TOKEN (e.g. `export EMOBOT_SERVICE_TOKEN=$(openssl rand -hex 32)`) for the "
            "service and for the action server, or listen on 127.0.0.1 (EMOBOT_HOST)."
        )


def auth_headers(token: Optional[str]) -> Dict[str, str]:
    """The headers a client sends to a service that requires ``token``."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _presented(request: web.Request) -> Optional[str]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.path.endswith("/stream"):
        return request.query.get("token")
    return None


@web.middleware
async def require_token(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> Any:
    """401 unless the request carries the service's token (when it has one)."""
    token = request.app[SETTINGS].service_token
    if token and request.path not in OPEN_PATHS and not request.path.startswith(OPEN_PREFIXES):
        presented = _presented(request)
        if presented is None:
            raise ApiError(401, "unauthorized", "this service requires a token: send 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token.encode()):
            raise ApiError(401, "unauthorized", "wrong token")
    return await handler(request)
