"""Terminal chat through Rasa's REST channel, showing each reply and the sensed emotion."""
from __future__ import annotations

import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TextIO, Union

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
    for number, button in enumerate(buttons(replies), 1):
        print(f"     {number}) {button.get('title', button.get('payload'))}", file=out)
    out.flush()


def buttons(replies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The buttons the bot's replies offer, in order (a number typed next picks one)."""
    return [b for reply in replies for b in reply.get("buttons") or [] if isinstance(b, dict) and b.get("payload")]


def chosen(text: str, offered: List[Dict[str, Any]]) -> Optional[str]:
    """The payload of the button whose number ``text`` is, if it is one of those offered."""
    text = text.strip()
    if text.isdigit() and 1 <= int(text) <= len(offered):
        return str(offered[int(text) - 1]["payload"])
    return None


def rasa_answers(client: RasaRestClient, out: TextIO) -> bool:
    """Whether Rasa answers at the client's URL; if not, says how to start the stack."""
    try:
        requests.get(f"{client.rasa_url}/status", timeout=5).raise_for_status()
        return True
    except requests.RequestException:
        print(f"Rasa is not answering at {client.rasa_url}. Start the stack with `emobot run` "
              "(or `make run`) in another terminal.", file=out)
        return False


def chat(
    rasa_url: str,
    sender_id: Optional[str] = None,
    input_fn: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
    mic: bool = False,
    camera: Union[int, str, None] = None,
    service_url: Optional[str] = None,
    audio: Optional[str] = None,
) -> int:
    """Read lines until EOF, /quit or Ctrl-C; print the bot's replies and the emotion.

    With ``camera`` (a camera index, or a video file's path), frames go to the emotion
    service while chatting and a status line shows the face reading (:class:`CameraSensor`).
    With ``audio`` (a sound file's path), its utterances are spoken as with ``mic`` (:class:`AudioFile`).

    With ``mic``, listen instead: each spoken utterance is transcribed offline and sent as
    the user's message, carrying its voice reading (:func:`chat_by_voice`).
    """
    recording = open_audio_file(audio, out) if audio else None
    if mic or recording:
        voice_client = RasaRestClient(rasa_url, sender_id)
        sensor = start_camera(camera, voice_client.sender_id, service_url, out)  # the face fuses with the voice
        try:
            return chat_by_voice(voice_client, out=out, service_url=service_url, microphone=recording)
        finally:
            if sensor:
                sensor.stop()
    client = RasaRestClient(rasa_url, sender_id)
    if not rasa_answers(client, out):
        return 2
    print(f"Chatting as {client.sender_id} with {client.rasa_url}. /quit to leave.", file=out)
    sensor = start_camera(camera, client.sender_id, service_url, out)
    offered: List[Dict[str, Any]] = []  # the last reply's buttons: typing a number picks one
    while True:
        if sensor:
            sensor.show_status()
        try:
            text = input_fn("you> ")
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            break
        finally:
            if sensor:
                sensor.hold()
        if text.strip() in ("/quit", "/exit"):
            break
        if not text.strip():
            continue
        payload = chosen(text, offered)
        if payload:
            print(f"  (button {text.strip()}: {payload})", file=out)
        try:
            replies = client.send(payload or text)
        except requests.RequestException as error:
            print(f"  ! Rasa did not answer ({error}); try again", file=out)
            continue
        offered = buttons(replies)
        _show(client, replies, out)
    if sensor:
        sensor.stop()
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
    if not rasa_answers(client, out):
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


# ---- camera: `emobot chat --camera N` / `--video FILE` ----------------------------------------

# A few frames a second, as the web page sends; the service drops frames it cannot keep up with.
FRAME_INTERVAL_S = 0.25
JPEG_QUALITY = 80
# Save the cursor, go up a line, rewrite it, come back: the status above the prompt stays live.
_REWRITE_LINE_ABOVE = "\x1b7\x1b[1A\r\x1b[2K{}\x1b8"


class CameraUnavailable(RuntimeError):
    """No picture from the camera or the video file; the message says why."""


class CameraSensor:
    """Reads a camera (or a video file, looped at its own pace) on a thread and posts a few
    frames a second to the emotion service's ``/v1/sessions/{id}/frames``, where the face
    reading joins the conversation's state. Keeps a one-line status of the latest answer."""

    def __init__(self, source: Union[int, str], sender_id: str, service_url: str, out: TextIO = sys.stdout,
                 interval_s: float = FRAME_INTERVAL_S) -> None:
        import cv2

        self.source = source
        self.url = f"{service_url.rstrip('/')}/v1/sessions/{sender_id}/frames"
        self.out = out
        self.interval_s = interval_s
        self.is_file = isinstance(source, str)
        if self.is_file and not Path(source).is_file():
            raise CameraUnavailable(f"video file {source} not found")
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened() or not self.capture.read()[0]:
            self.capture.release()
            what = f"video file {source} could not be read" if self.is_file else f"no camera at index {source}"
            raise CameraUnavailable(what)
        fps = self.capture.get(cv2.CAP_PROP_FPS) if self.is_file else 0
        # A file plays at its own speed: skip the frames that pass between two samples.
        self.frames_per_sample = max(1, round(fps * interval_s)) if fps and fps > 0 else 1
        self.status = "camera: starting"
        self.frames_sent = self.readings = 0
        self.live = bool(getattr(out, "isatty", lambda: False)())
        self._prompting = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)

    def start(self) -> CameraSensor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.capture.release()

    def show_status(self) -> None:
        """Print the status line; on a terminal it then updates in place until :meth:`hold`."""
        with self._lock:
            print(f"  [{self.status}]", file=self.out, flush=True)
            self._prompting = True

    def hold(self) -> None:
        """The person pressed Enter: stop rewriting the line above the cursor."""
        with self._lock:
            self._prompting = False

    def _frame(self):
        import cv2

        for _ in range(self.frames_per_sample - 1):
            self.capture.grab()
        ok, frame = self.capture.read()
        if not ok and self.is_file:  # the end of the video: play it again
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.capture.read()
        return frame if ok else None

    def _set_status(self, status: str) -> None:
        with self._lock:
            self.status = status
            if self.live and self._prompting:
                self.out.write(_REWRITE_LINE_ABOVE.format(f"  [{status}]"))
                self.out.flush()

    def _run(self) -> None:
        import cv2

        http = requests.Session()
        while not self._stop.wait(self.interval_s):
            frame = self._frame()
            if frame is None:
                self._set_status("camera: no picture")
                continue
            jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
            try:
                response = http.post(self.url, data=jpeg, headers={"Content-Type": "image/jpeg"}, timeout=5)
            except requests.RequestException:
                self._set_status("camera: the emotion service is not answering")
                continue
            self.frames_sent += 1
            if response.status_code == 429:  # the recognizer is busy: this frame was dropped
                continue
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            if response.status_code != 200:
                message = (answer.get("error") or {}).get("message") or f"HTTP {response.status_code}"
                self._set_status(f"camera off: {message}")
                if response.status_code in (401, 403, 404, 409):  # it will not get better by itself
                    return
                continue
            self._set_status(self._describe(answer))

    def _describe(self, answer: Dict[str, Any]) -> str:
        if answer.get("type") != "reading":
            return "camera: no face in view"
        self.readings += 1
        reading, state = answer["reading"], answer.get("state") or {}
        fused = state.get("label", "unknown")
        return (f"camera {EMOJI.get(reading['label'], '')} {reading['label']} {reading['confidence']:.2f}"
                f" · now {EMOJI.get(fused, '')} {fused}")


def start_camera(source: Union[int, str, None], sender_id: str, service_url: Optional[str],
                 out: TextIO = sys.stdout) -> Optional[CameraSensor]:
    """A running :class:`CameraSensor`, or None (with a one-line reason) when there is no picture."""
    if source is None:
        return None
    from emotion_sensing.config import Settings

    service = (service_url or Settings.from_env().service_url).rstrip("/")
    try:
        sensor = CameraSensor(source, sender_id, service, out)
    except CameraUnavailable as error:
        print(f"  ! {error}: chatting without the camera.", file=out, flush=True)
        return None
    print(f"Sensing your face from {'the video ' + str(source) if sensor.is_file else f'camera {source}'} "
          f"(frames go to {service}).", file=out, flush=True)
    return sensor.start()


# ---- a sound file as the microphone: `emobot chat --audio FILE` ----------------------------------

class AudioFile:
    """A recording standing in for the microphone of :func:`chat_by_voice`: its utterances
    (cut by the same voice-activity detection) are spoken one after another."""

    def __init__(self, path: str) -> None:
        from emotion_sensing.speech.audio import AudioError, load

        if not Path(path).is_file():
            raise AudioError("not_found", f"audio file {path} not found")
        self.samples = load(path)
        self.info = {"name": f"audio file {Path(path).name}"}

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def utterances(self):
        from emotion_sensing.speech.vad import segment

        yield from segment(self.samples)


def open_audio_file(path: str, out: TextIO = sys.stdout) -> Optional[AudioFile]:
    """The file's :class:`AudioFile`, or None with a one-line reason (the chat goes on by typing)."""
    from emotion_sensing.speech.audio import AudioError

    try:
        return AudioFile(path)
    except AudioError as error:
        print(f"  ! {error}: type instead.", file=out, flush=True)
        return None
