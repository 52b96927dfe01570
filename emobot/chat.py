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


def _show(client: RasaRestClient, replies: List[Dict[str, Any]], out: TextIO) -> None:
    """The sensed emotion and the bot's replies to one user message."""
    try:
        slots = client.slots()
    except requests.RequestException:
        slots = {}
    print(f"  [{emotion_line(slots)}]", file=out)
    for reply in replies:
        if "text" in reply:
            print(f"bot> {reply['text']}", file=out)
        if "image" in reply:
            print(f"bot> [image] {reply['image']}", file=out)
    out.flush()


def chat(
    rasa_url: str,
    sender_id: Optional[str] = None,
    input_fn: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
    mic: bool = False,
) -> int:
    """Read lines until EOF, /quit or Ctrl-C; print the bot's replies and the emotion.

    With ``mic``, listen instead: each spoken utterance is transcribed offline and sent as
    the user's message, carrying its voice reading (:func:`chat_by_voice`).
    """
    if mic:
        return chat_by_voice(RasaRestClient(rasa_url, sender_id), out=out)
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
        except requests.RequestException as error:
            print(f"  ! Rasa did not answer ({error}); try again", file=out)
            continue
        _show(client, replies, out)
    print(f"Replay this conversation with: emobot replay {client.sender_id}", file=out)
    return 0


def _post_reading(service_url: str, sender_id: str, reading: Dict[str, Any]) -> bool:
    """Give the voice reading to the emotion service's session, so the turn's fusion has it."""
    body = {"modality": "voice", "probs": reading["probs"], "confidence": reading["confidence"]}
    try:
        response = requests.post(f"{service_url}/v1/sessions/{sender_id}/readings", json=body, timeout=2)
        return response.status_code == 200
    except requests.RequestException:
        return False


def chat_by_voice(client: RasaRestClient, out: TextIO = sys.stdout, service_url: Optional[str] = None,
                  microphone=None) -> int:
    """Listen on the microphone; each utterance becomes a user message with its voice reading.

    The reading travels in the message's ``metadata`` (``{"emobot": {"voice": reading,
    "transcript": ...}}``) and is also posted to the emotion service's session before the
    message, so the sensing action fuses it with the text of the same turn.
    """
    from emotion_sensing.config import Settings
    from emotion_sensing.speech.capture import Microphone, MicrophoneUnavailable
    from emotion_sensing.speech.model import MODEL_FILE

    settings = Settings.from_env()
    try:
        microphone = microphone or Microphone()
    except MicrophoneUnavailable as error:
        print(f"emobot chat --mic: {error}. Type instead with `emobot chat`.", file=out)
        return 2
    try:
        requests.get(f"{client.rasa_url}/status", timeout=5).raise_for_status()
    except requests.RequestException:
        print(f"Rasa is not answering at {client.rasa_url}. Start the stack with `emobot run` "
              "(or `make run`) in another terminal.", file=out)
        return 2
    model = settings.models_dir / MODEL_FILE
    if not model.exists():
        print(f"emobot chat --mic: no voice model at {model}; run `emobot train speech`", file=out)
        return 2
    from emotion_sensing.speech.recognizer import VoiceRecognizer
    from emotion_sensing.speech.transcribe import Transcriber, TranscriptionUnavailable

    print("Loading the voice model and the offline transcriber...", file=out, flush=True)
    recognizer = VoiceRecognizer(model)
    recognizer.warm_up()
    speaker = recognizer.new_speaker()
    transcriber = Transcriber()
    try:
        transcriber.load()
    except TranscriptionUnavailable as error:
        print(f"emobot chat --mic: no offline transcriber ({error})", file=out)
        return 2
    service = (service_url or settings.service_url).rstrip("/")
    print(f"Chatting by voice as {client.sender_id} ({microphone.info.get('name')}). "
          "Speak, then pause; Ctrl-C to leave.", file=out, flush=True)
    try:
        with microphone:
            for utterance in microphone.utterances():
                reading = recognizer.read(utterance.samples, speaker=speaker)
                if not reading.extras.get("speech"):
                    continue
                transcript = transcriber.transcribe(utterance.samples)
                if not transcript.text:
                    print("  (heard a voice but no words)", file=out, flush=True)
                    continue
                voice = reading.to_dict()
                print(f"you (voice)> {transcript.text}   [voice: {reading.label} {reading.confidence:.2f}]",
                      file=out, flush=True)
                _post_reading(service, client.sender_id, voice)
                try:
                    replies = client.send(transcript.text, metadata={
                        "emobot": {"voice": voice, "transcript": transcript.to_dict()}})
                except requests.RequestException as error:
                    print(f"  ! Rasa did not answer ({error}); say it again", file=out)
                    continue
                _show(client, replies, out)
    except KeyboardInterrupt:
        print(file=out)
    print(f"Replay this conversation with: emobot replay {client.sender_id}", file=out)
    return 0
