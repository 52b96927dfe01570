"""`emobot forget SENDER_ID`: delete what the stack holds about one conversation.

By default only the emotion service's readings (DELETE /v1/sessions/{id}): the derived face,
voice and text readings and the fused state. With ``--tracker`` also the conversation's
events in Rasa's SQL tracker store (messages, slots such as user_emotion, actions) — a
running Rasa server may still hold the conversation in memory until it restarts or the
conversation's lock expires, and a store that is not SQL is left alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import requests

from emotion_sensing.config import Settings
from emotion_sensing.session import valid_session_id


class ForgetError(RuntimeError):
    """Something could not be deleted; the message says what and why."""


@dataclass
class Forgotten:
    sender_id: str
    readings: bool  # the service held readings for it (and deleted them)
    tracker_events: Optional[int] = None  # events deleted from the tracker store (None: not asked)


def forget_readings(sender_id: str, settings: Settings, timeout: float = 5.0) -> bool:
    """Delete the session's readings in the emotion service; False when it held none."""
    url = f"{settings.service_url.rstrip('/')}/v1/sessions/{sender_id}"
    headers = {"Authorization": f"Bearer {settings.service_token}"} if settings.service_token else {}
    try:
        response = requests.delete(url, headers=headers, timeout=timeout)
    except requests.RequestException as error:
        raise ForgetError(f"the emotion service at {settings.service_url} did not answer ({type(error).__name__}); "
                          "is it running (`emobot run`)? Its readings live only in its memory, so a stopped "
                          "service holds none.") from None
    if response.status_code == 404:
        return False
    if response.status_code == 401:
        raise ForgetError("the emotion service wants a token: set EMOBOT_SERVICE_TOKEN")
    if response.status_code >= 400:
        raise ForgetError(f"the emotion service refused: {response.status_code} {response.text[:200]}")
    return True


def forget_tracker_events(sender_id: str, store_url: str) -> int:
    """Delete the conversation's events from Rasa's SQL tracker store; how many were deleted."""
    import sqlalchemy as sa

    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as connection:
            if not sa.inspect(connection).has_table("events"):
                return 0
            result = connection.execute(sa.text("DELETE FROM events WHERE sender_id = :s"), {"s": sender_id})
            return int(result.rowcount or 0)
    except sa.exc.SQLAlchemyError as error:
        raise ForgetError(f"could not delete from the tracker store {store_url}: {error}") from None
    finally:
        engine.dispose()


def forget(sender_id: str, settings: Settings, tracker_store_url: Optional[str] = None) -> Forgotten:
    """Readings always; tracker events too when ``tracker_store_url`` is given."""
    if not valid_session_id(sender_id):
        raise ForgetError("a sender id is 1-128 characters of letters, digits and _.:@+-")
    readings = forget_readings(sender_id, settings)
    events = forget_tracker_events(sender_id, tracker_store_url) if tracker_store_url else None
    return Forgotten(sender_id, readings, events)
