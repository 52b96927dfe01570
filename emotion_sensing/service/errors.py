"""JSON errors: every failure the service reports has a status, a code and a message."""
from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from emotion_sensing.service.keys import SETTINGS

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A client error with a machine-readable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def _closing_if_unread(request: web.Request, response: web.Response) -> web.Response:
    """An error answer to a request with a body closes its connection. The body may not have
    been read (or not all of it): left on a kept-alive connection, its rest paused aiohttp's
    reading there, and the client's next request waited behind it for ever
    (test_service_fuzz.py found this). A new connection costs a refused client little."""
    if request.body_exists:
        response.force_close()
    return response


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> Any:
    """Turn every exception into a JSON error; unexpected ones are logged, never re-raised."""
    try:
        return await handler(request)
    except ApiError as error:
        return _closing_if_unread(request, error_response(error.status, error.code, error.message))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _HTTP_CODES.get(error.status, "http_error")
        message = error.text or error.reason
        if error.status == 413:
            message = f"request body too large (limit {request.app[SETTINGS].max_body_bytes} bytes)"
        return _closing_if_unread(request, error_response(error.status, code, message))
    except Exception:  # noqa: BLE001 - the service must keep serving
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return _closing_if_unread(request, error_response(500, "internal_error", "internal error; see the service log"))


async def read_json_object(request: web.Request) -> dict:
    """The request body as a JSON object, or an ApiError saying what is wrong with it."""
    content_type = request.content_type
    # Read (bounded by client_max_size) before refusing, so an unread body never lingers on a
    # kept-alive connection.
    body = await request.read()
    if body and content_type not in ("application/json", "application/octet-stream", ""):
        raise ApiError(415, "unsupported_media_type", f"expected application/json, got {content_type}")
    if not body:
        raise ApiError(400, "empty_body", "request body is empty; expected a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, "invalid_encoding", f"body is not UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ApiError(400, "malformed_json", f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:  # '[[[[...' deeper than the parser's stack
        raise ApiError(400, "malformed_json", "malformed JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "expected a JSON object")
    return data
