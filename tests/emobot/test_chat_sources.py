"""`emobot chat --camera N` / `--video FILE` / `--audio FILE`: face and voice sensed while
chatting in the terminal.

The video is scikit-image's astronaut (a real face), the audio espeak-ng. The chat runs
against the real stack, with text sensing off so the reply follows what is sensed.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from emobot.chat import EMOJI, CameraSensor, CameraUnavailable, chat, open_audio_file, start_camera
from emobot.cli import build_parser
from emobot.paths import DEMO_DIR
from emobot.stack import Stack, free_port

NO_CAMERA = 97  # a camera index no machine of ours has


@pytest.fixture(scope="module")
def astronaut_video(tmp_path_factory) -> Path:
    """A short MJPEG video of the astronaut, letterboxed to 640x480."""
    import cv2
    from skimage.data import astronaut

    picture = cv2.resize(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR), (480, 480), interpolation=cv2.INTER_AREA)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 80:560] = picture
    path = tmp_path_factory.mktemp("video") / "astronaut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _ in range(10):
        writer.write(frame)
    writer.release()
    assert path.stat().st_size > 10_000
    return path


def test_the_chat_options_take_a_camera_index_or_a_video_file():
    parser = build_parser()
    assert parser.parse_args(["chat", "--camera", "1"]).camera == 1
    assert parser.parse_args(["chat", "--video", "demo.mp4"]).video == "demo.mp4"
    with pytest.raises(SystemExit):
        parser.parse_args(["chat", "--camera", "0", "--video", "demo.mp4"])


def test_no_camera_and_a_missing_video_each_say_why(tmp_path):
    out = io.StringIO()
    assert start_camera(NO_CAMERA, "s", f"http://127.0.0.1:{free_port()}", out) is None
    assert start_camera(str(tmp_path / "nothing.mp4"), "s", f"http://127.0.0.1:{free_port()}", out) is None
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(CameraUnavailable, match="could not be read"):
        CameraSensor(str(tmp_path / "broken.mp4"), "s", "http://127.0.0.1:1")
    assert out.getvalue().splitlines() == [
        f"  ! no camera at index {NO_CAMERA}: chatting without the camera.",
        f"  ! video file {tmp_path / 'nothing.mp4'} not found: chatting without the camera.",
    ]


def test_an_unreachable_service_shows_in_the_status_line(astronaut_video):
    sensor = CameraSensor(str(astronaut_video), "s", f"http://127.0.0.1:{free_port()}", io.StringIO(),
                          interval_s=0.05).start()
    try:
        deadline = time.time() + 10
        while sensor.status == "camera: starting" and time.time() < deadline:
            time.sleep(0.05)
    finally:
        sensor.stop()
    assert sensor.status == "camera: the emotion service is not answering"


# ---- against the real stack ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def face_stack(face_voice_stack) -> Stack:
    """The real stack sensing face and voice (tests/conftest.py)."""
    return face_voice_stack[0]


def face_readings(stack: Stack, sender: str) -> int:
    response = requests.get(f"{stack.settings.service_listen_url}/v1/sessions/{sender}", timeout=10)
    return response.json()["counts"].get("face", 0) if response.status_code == 200 else 0


def greeting_for(emotion: str) -> str:
    variations = yaml.safe_load((DEMO_DIR / "domain.yml").read_text())["responses"]["utter_greet"]
    for v in variations:
        if any(c.get("value") == emotion for c in v.get("condition", [])):
            return v["text"]
    return next(v["text"] for v in variations if not v.get("condition"))


@pytest.mark.integration
def test_chat_with_a_video_as_camera_senses_the_face_and_the_reply_follows_it(face_stack, astronaut_video):
    sender = f"cam-{uuid.uuid4().hex[:8]}"
    lines = iter(["hello", "/quit"])

    def type_after_the_face_is_seen(prompt: str) -> str:
        deadline = time.time() + 60
        while face_readings(face_stack, sender) < 3 and time.time() < deadline:
            time.sleep(0.2)
        return next(lines)

    out = io.StringIO()
    code = chat(face_stack.settings.rasa_url, sender_id=sender, input_fn=type_after_the_face_is_seen, out=out,
                camera=str(astronaut_video), service_url=face_stack.settings.service_listen_url)
    text = out.getvalue()
    assert code == 0, text
    assert f"Sensing your face from the video {astronaut_video}" in text
    state = requests.get(f"{face_stack.settings.service_listen_url}/v1/sessions/{sender}", timeout=10).json()
    assert state["counts"]["face"] >= 3
    slots = requests.get(f"{face_stack.settings.rasa_url}/conversations/{sender}/tracker", timeout=10).json()["slots"]
    emotion = slots["user_emotion"]
    assert [c["modality"] for c in slots["emotion_reading"]["contributions"]] == ["face"]
    face = slots["emotion_reading"]["contributions"][0]["label"]
    # The status line before the second prompt shows the camera's reading.
    assert f"  [camera {EMOJI[face]} {face} " in text
    assert f"bot> {greeting_for(emotion)}" in text
    # The chat is over: the camera stopped sending.
    count = state["counts"]["face"]
    time.sleep(1)
    assert face_readings(face_stack, sender) == count


@pytest.mark.integration
def test_buttons_are_numbered_and_a_number_sends_its_payload(face_stack):
    """The rating question offers 1-5 stars as buttons, as the chat page shows them; the terminal
    numbers them and a typed number sends that button's payload (they were not shown at all)."""
    sender = f"buttons-{uuid.uuid4().hex[:8]}"
    happy = {"modality": "face", "probs": {"happy": 0.95, "neutral": 0.05}, "confidence": 0.95}
    lines = iter(["thanks", "yes", "4", "/quit"])

    def type_looking_happy(prompt: str) -> str:
        posted = requests.post(f"{face_stack.settings.service_listen_url}/v1/sessions/{sender}/readings",
                               json=happy, timeout=10)
        assert posted.status_code == 200, posted.text
        return next(lines)

    out = io.StringIO()
    code = chat(face_stack.settings.rasa_url, sender_id=sender, input_fn=type_looking_happy, out=out,
                service_url=face_stack.settings.service_listen_url)
    text = out.getvalue()
    assert code == 0, text
    responses = yaml.safe_load((DEMO_DIR / "domain.yml").read_text())["responses"]
    [rating] = responses["utter_ask_rating"]
    assert f"bot> {rating['text']}" in text, text
    assert "\n".join(f"     {n}) {b['title']}" for n, b in enumerate(rating["buttons"], 1)) in text
    assert """  (button 4: /rate{"rating": "4"})""" in text
    plain = next(v["text"] for v in responses["utter_thank_rating"] if not v.get("condition"))
    assert f"bot> {plain}" in text
    tracker = requests.get(f"{face_stack.settings.rasa_url}/conversations/{sender}/tracker", timeout=10).json()
    assert [e["text"] for e in tracker["events"] if e["event"] == "user"] == ["thanks", "yes", '/rate{"rating": "4"}']
    assert tracker["slots"]["rating"] == "4"  # kept for emobot insights


@pytest.mark.integration
def test_chat_without_a_camera_says_so_and_goes_on(face_stack):
    lines = iter(["hello", "/quit"])
    out = io.StringIO()
    code = chat(face_stack.settings.rasa_url, input_fn=lambda prompt: next(lines), out=out, camera=NO_CAMERA,
                service_url=face_stack.settings.service_listen_url)
    text = out.getvalue()
    assert code == 0, text
    assert f"  ! no camera at index {NO_CAMERA}: chatting without the camera." in text
    assert f"bot> {greeting_for('unknown')}" in text


def test_a_missing_audio_file_says_why(tmp_path):
    out = io.StringIO()
    assert open_audio_file(str(tmp_path / "nothing.wav"), out) is None
    assert out.getvalue() == f"  ! audio file {tmp_path / 'nothing.wav'} not found: type instead.\n"


@pytest.mark.parametrize("source", ["typed", "audio file"])
def test_without_rasa_the_chat_says_how_to_start_it(tmp_path, source):
    import soundfile

    audio = None
    if source == "audio file":
        audio = tmp_path / "silence.wav"
        soundfile.write(str(audio), np.zeros(16000, np.float32), 16000)
    rasa_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    out = io.StringIO()
    code = chat(rasa_url, out=out, input_fn=lambda prompt: pytest.fail("asked for a message"),
                audio=str(audio) if audio else None)
    assert code == 2
    assert out.getvalue().endswith(f"Rasa is not answering at {rasa_url}. Start the stack with `emobot run` "
                                   "(or `make run`) in another terminal.\n"), out.getvalue()


@pytest.mark.integration
def test_chat_with_an_audio_file_speaks_its_utterances(face_stack, tmp_path):
    if not shutil.which("espeak-ng"):
        pytest.fail("espeak-ng is not installed (scripts/setup.sh installs it)")
    speech = tmp_path / "hello.wav"
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(speech), "Hello there."], check=True, capture_output=True)
    sender = f"audio-{uuid.uuid4().hex[:8]}"
    out = io.StringIO()
    code = chat(face_stack.settings.rasa_url, sender_id=sender, out=out, audio=str(speech),
                service_url=face_stack.settings.service_listen_url)
    text = out.getvalue()
    assert code == 0, text
    assert "you (voice)> hello" in text.lower(), text  # the transcript of espeak's voice
    tracker = requests.get(f"{face_stack.settings.rasa_url}/conversations/{sender}/tracker", timeout=10).json()
    [user] = [e for e in tracker["events"] if e["event"] == "user"]
    assert user["metadata"]["emobot"]["voice"]["modality"] == "voice"
    emotion = tracker["slots"]["user_emotion"]
    assert [c["modality"] for c in tracker["slots"]["emotion_reading"]["contributions"]] == ["voice"]
    assert f"bot> {greeting_for(emotion)}" in text
