"""Async client of the emotion service, with a hard time budget per call.

Callers in the chat path (the Rasa action) use :meth:`EmotionClient.turn_or_unknown`,
which never raises: a slow, absent or failing service yields the unknown state.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional

import aiohttp

from emotion_sensing.fusion import unknown_state

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """The service answered with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class EmotionClient:
    """A reusable connection pool to one emotion service."""

    def __init__(self, base_url: str, budget_ms: int = 300, token: Optional[str] = None) -> None:
        """``token``: the service's EMOBOT_SERVICE_TOKEN, sent as a bearer token (needed off loopback)."""
        self.base_url = base_url.rstrip("/")
        self.budget_s = budget_ms / 1000.0
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: Optional[aiohttp.ClientSession] = None

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.budget_s),
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30),
                headers=self.headers,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Dict[str, Any]:
        http = await self._http()
        async with http.request(method, self.base_url + path, **kwargs) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                error = (data or {}).get("error", {})
                raise ServiceError(response.status, error.get("code", "error"), error.get("message", ""))
            return data

    async def health(self) -> Dict[str, Any]:
        return await self._request("GET", "/health")

    async def analyse_text(self, text: str) -> Dict[str, Any]:
        return await self._request("POST", "/v1/text", json={"text": text})

    async def turn(self, session_id: str, text: str) -> Dict[str, Any]:
        """Add a user turn's text to the session and return the service's answer."""
        return await self._request("POST", f"/v1/sessions/{session_id}/turns", json={"text": text})

    async def prefetch(self, session_id: str, text: str) -> bool:
        """Ask the service to start reading a turn's text now, so that the turn's call finds
        the reading done; True when it was queued. Never raises."""
        try:
            await asyncio.wait_for(
                self._request("POST", f"/v1/sessions/{session_id}/texts", json={"text": text}), timeout=self.budget_s)
            return True
        except (asyncio.TimeoutError, ServiceError, aiohttp.ClientError, OSError, ValueError) as error:
            logger.debug("text prefetch for %s failed: %s", session_id, error)
            return False

    async def session(self, session_id: str) -> Dict[str, Any]:
        return await self._request("GET", f"/v1/sessions/{session_id}")

    async def forget(self, session_id: str) -> Dict[str, Any]:
        return await self._request("DELETE", f"/v1/sessions/{session_id}")

    async def turn_or_unknown(self, session_id: str, text: str) -> Dict[str, Any]:
        """Like :meth:`turn`, but within the budget and never raising.

        The answer always has ``state``; ``sensing`` says ``ok`` or why it is unknown.
        """
        started = time.perf_counter()
        try:
            answer = await asyncio.wait_for(self.turn(session_id, text), timeout=self.budget_s)
            answer["sensing"] = "ok"
        except asyncio.TimeoutError:
            answer = {"state": unknown_state().to_dict(), "sensing": "timeout"}
        except ServiceError as error:
            answer = {"state": unknown_state().to_dict(), "sensing": f"error: {error.code}"}
        except (aiohttp.ClientError, OSError, ValueError) as error:
            answer = {"state": unknown_state().to_dict(), "sensing": f"unavailable: {type(error).__name__}"}
        answer["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
        if answer["sensing"] != "ok":
            logger.warning("emotion sensing %s after %s ms", answer["sensing"], answer["elapsed_ms"])
        return answer
