"""Terminal chat through Rasa's REST channel, showing each reply and the sensed emotion."""
from __future__ import annotations

import sys
import uuid
from typing import Any, Callable, Dict, List, Optional, TextIO

import requests

EMOJI = {"angry": "😠", "disgust": "🤢", "fear": "😨", "happy": "😊", "sad": "😢",
         "surprise": "😮", "neutral": "😐", "unknown": "·"}


class RasaRestClient:
    """Sends messages to Rasa's REST channel and reads slots from its HTTP API."""

    def __init__(self, rasa_url: str, sender_id: Optional[str] = None, timeout: float = 30.0) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self.sender_id = sender_id or f"chat-{uuid.uuid4().hex[:8]}"
        self.timeout = timeout
        self._http = requests.Session()

    def send(self, text: str, metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        payload: Dict[str, Any] = {"sender": self.sender_id, "message": text}
        if metadata:
            payload["metadata"] = metadata
        response = self._http.post(f"{self.rasa_url}/webhooks/rest/webhook", json=payload, timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def slots(self) -> Dict[str, Any]:
        response = self._http.get(
            f"{self.rasa_url}/conversations/{self.sender_id}/tracker",
            params={"include_events": "NONE"},
            timeout=self.timeout,
        )
        response.raise_for_status()
        return response.json().get("slots", {})


def emotion_line(slots: Dict[str, Any]) -> str:
    """One status line: the fused emotion, its confidence and valence."""
    label = slots.get("user_emotion") or "unknown"
    reading = slots.get("emotion_reading") or {}
    line = f"{EMOJI.get(label, '')} {label}"
    if label != "unknown":
        line += f" {float(slots.get('emotion_confidence') or 0):.2f}, valence {float(slots.get('emotion_valence') or 0):+.2f}"
    sensing = reading.get("sensing")
    if sensing and sensing != "ok":
        line += f" (sensing: {sensing})"
    return line


def chat(
    rasa_url: str,
    sender_id: Optional[str] = None,
    input_fn: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
) -> int:
    """Read lines until EOF, /quit or Ctrl-C; print the bot's replies and the emotion."""
    client = RasaRestClient(rasa_url, sender_id)
    try:
        requests.get(f"{client.rasa_url}/status", timeout=5).raise_for_status()
    except requests.RequestException:
        print(f"Rasa is not answering at {client.rasa_url}. Start the stack with `emobot run` "
              "(or `make run`) in another terminal.", file=out)
        return 2
    print(f"Chatting as {client.sender_id} with {client.rasa_url}. /quit to leave.", file=out)
    while True:
        try:
            text = input_fn("you> ")
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            break
        if text.strip() in ("/quit", "/exit"):
            break
        if not text.strip():
            continue
        try:
            replies = client.send(text)
            slots = client.slots()
        except requests.RequestException as error:
            print(f"  ! Rasa did not answer ({error}); try again", file=out)
            continue
        print(f"  [{emotion_line(slots)}]", file=out)
        for reply in replies:
            if "text" in reply:
                print(f"bot> {reply['text']}", file=out)
            if "image" in reply:
                print(f"bot> [image] {reply['image']}", file=out)
        out.flush()
    print(f"Replay this conversation with: emobot replay {client.sender_id}", file=out)
    return 0
