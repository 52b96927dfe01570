"""The chat page in a real headless Chromium with fake camera and microphone devices.

The camera plays a y4m video of scikit-image's astronaut (a real face), the microphone a
wav. The page chats with the real stack (Rasa's socket.io channel, the action server, the
emotion service) and streams what the person switches on to the service's WebSocket.

The stack runs with text sensing off, so the emotion a reply is adapted to is what the
camera (or microphone) sensed, not what the words say.

Screenshots and the measured frame->reading delays go to .emobot/artifacts/ (git-ignored).
"""
from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
import wave
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np
import pytest
import requests
import yaml

from emobot.paths import DEMO_DIR
from emobot.stack import Stack
from emotion_sensing.service.web_routes import SOCKET_IO_CLIENT, page_url
from tests.browser import chromium, fake_media, skip_without_chromium

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / ".emobot" / "artifacts"
GREETING = "hello"  # utter_greet has a variation for angry, sad, fear and happy


# ---- fake media ---------------------------------------------------------------------------

def write_y4m(path: Path, bgr: np.ndarray, frames: int = 5, width: int = 640, height: int = 480) -> Path:
    """A YUV4MPEG2 4:2:0 video of one picture, letterboxed into width x height."""
    import cv2

    scale = min(width / bgr.shape[1], height / bgr.shape[0])
    picture = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - picture.shape[0]) // 2, (width - picture.shape[1]) // 2
    canvas[top:top + picture.shape[0], left:left + picture.shape[1]] = picture
    i420 = cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).tobytes()  # Y, then U, then V planes
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + i420)
    return path


def write_wav(path: Path, text: Optional[str] = None, rate: int = 16000, pause_s: float = 1.5) -> Path:
    """16 kHz mono PCM16: espeak-ng saying ``text`` then a pause, or ``pause_s`` of silence."""
    samples = np.zeros(0, np.int16)
    if text:
        spoken = path.with_suffix(".espeak.wav")
        subprocess.run(["espeak-ng", "-w", str(spoken), text], check=True, capture_output=True)
        with wave.open(str(spoken)) as source:
            voice = np.frombuffer(source.readframes(source.getnframes()), np.int16)
            source_rate = source.getframerate()
        positions = np.arange(0, len(voice), source_rate / rate)
        samples = np.interp(positions, np.arange(len(voice)), voice).astype(np.int16)
    samples = np.concatenate([samples, np.zeros(int(pause_s * rate), np.int16)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Dict[str, Path]:
    import cv2
    from skimage.data import astronaut

    folder = tmp_path_factory.mktemp("media")
    if not shutil.which("espeak-ng"):
        pytest.fail("espeak-ng is not installed (scripts/setup.sh installs it)")
    return {
        "astronaut": write_y4m(folder / "astronaut.y4m", cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)),
        "silence": write_wav(folder / "silence.wav"),
        "speech": write_wav(folder / "speech.wav", "I am so happy today, everything worked out wonderfully!"),
    }


# ---- the stack and the browser ----------------------------------------------------------------

@pytest.fixture(scope="module")
def web_stack(request) -> Stack:
    """The real stack on free ports, sensing only face and voice (conftest.py), started only
    where the browser can run."""
    skip_without_chromium()
    assert SOCKET_IO_CLIENT.is_file(), f"{SOCKET_IO_CLIENT} missing: run `make setup` (it runs npm ci)"
    stack = request.getfixturevalue("face_voice_stack")[0]
    health = requests.get(f"{stack.settings.service_listen_url}/health", timeout=10).json()
    if not health["modalities"]["face"]["on"]:
        pytest.fail(f"the service has no face recognizer: {health['modalities']['face']}")
    return stack


@pytest.fixture
def open_page(web_stack, media) -> Iterator[Callable[..., Any]]:
    """Opens the chat page in a fresh headless Chromium fed by the given fake devices."""
    drivers = []

    def open_(audio: str = "silence", video: str = "astronaut"):
        driver = chromium(1200, 900, *fake_media(media[video], media[audio]), console=True)
        drivers.append(driver)
        driver.get(page_url(web_stack.settings))
        wait_for(lambda: driver.execute_script("return window.emobot && window.emobot.sessionId"), 30,
                 "the page did not start", driver)
        wait_for(lambda: connection_state(driver) == "connected", 60, "the page did not connect to Rasa", driver)
        return driver

    yield open_
    for driver in drivers:
        driver.quit()


def connection_state(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "connection").get_attribute("data-state")


def wait_for(condition: Callable[[], Any], timeout: float, what: str, driver=None) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    logs = ""
    if driver is not None:
        try:
            logs = "\n".join(str(entry["message"]) for entry in driver.get_log("browser")[-20:])
        except Exception:  # noqa: BLE001 - the logs only help explain the failure
            pass
    pytest.fail(f"{what} within {timeout:.0f} s\nbrowser console:\n{logs}")


def stats(driver) -> Dict[str, Any]:
    return driver.execute_script("return window.emobot.stats()")


def session(stack: Stack, session_id: str) -> Dict[str, Any]:
    response = requests.get(f"{stack.settings.service_listen_url}/v1/sessions/{session_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def tracker(stack: Stack, session_id: str) -> Dict[str, Any]:
    return requests.get(f"{stack.settings.rasa_url}/conversations/{session_id}/tracker", timeout=10).json()


def say(driver, text: str) -> Dict[str, str]:
    """Type a message and wait for the reply with the emotion the page says it was adapted to."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = len(driver.find_elements(By.CSS_SELECTOR, ".msg.bot"))
    box = driver.find_element(By.ID, "message-input")
    box.send_keys(text, Keys.ENTER)

    def adapted_reply():
        replies = driver.find_elements(By.CSS_SELECTOR, ".msg.bot")
        if len(replies) > before and replies[-1].get_attribute("data-emotion"):
            return replies[-1]
        return None

    reply = wait_for(adapted_reply, 60, f"no adapted reply to {text!r}", driver)
    return {"text": reply.find_element(By.CSS_SELECTOR, ".text").text,
            "emotion": reply.get_attribute("data-emotion"),
            "source": reply.get_attribute("data-emotion-source")}


def variation(response: str, emotion: str) -> str:
    """The text Rasa picks for a response given user_emotion (the conditional one, else the plain one)."""
    domain = yaml.safe_load((DEMO_DIR / "domain.yml").read_text())
    variations = domain["responses"][response]
    for candidate in variations:
        if any(c.get("name") == "user_emotion" and c.get("value") == emotion for c in candidate.get("condition", [])):
            return candidate["text"]
    return next(v["text"] for v in variations if not v.get("condition"))


def face_contribution(state: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    return next((c for c in state.get("contributions", []) if c["modality"] == "face"), None)


def sensing_indicator(driver) -> Dict[str, str]:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, "sensing-indicator")
    return {"on": element.get_attribute("data-on"), "text": element.text}


# ---- the tests ------------------------------------------------------------------------------

def test_the_camera_face_reaches_the_service_and_the_reply_follows_it(open_page, web_stack):
    from selenium.webdriver.common.by import By

    driver = open_page()
    session_id = driver.execute_script("return window.emobot.sessionId")
    assert sensing_indicator(driver) == {"on": "false", "text": "○ not sensing"}

    driver.find_element(By.ID, "camera-switch").click()
    wait_for(lambda: stats(driver)["faceReadings"] >= 5, 90, "no face readings came back for the camera's frames", driver)
    indicator = sensing_indicator(driver)
    assert indicator["on"] == "true" and "camera" in indicator["text"]
    assert driver.find_element(By.ID, "preview").get_attribute("videoWidth") != "0"

    # The service holds the face readings, and the page's face bars show them.
    state = session(web_stack, session_id)
    assert state["counts"].get("face", 0) >= 5
    face = face_contribution(state["state"])
    assert face is not None, state["state"]
    wait_for(lambda: driver.find_element(By.ID, "bars-face").get_attribute("data-stale") == "false", 10,
             "the page's face bars stayed empty", driver)
    assert driver.find_element(By.ID, "face-label").get_attribute("data-label") in face["probs"]
    # With text sensing off, the fused state is the camera's.
    sensed = state["state"]["label"]

    reply = say(driver, GREETING)
    slots = tracker(web_stack, session_id)["slots"]
    assert slots["user_emotion"] == sensed
    contributions = {c["modality"]: c for c in slots["emotion_reading"]["contributions"]}
    assert set(contributions) == {"face"} and contributions["face"]["n_readings"] >= 5
    assert reply == {"text": variation("utter_greet", sensed), "emotion": sensed, "source": "tracker"}
    # The message carried the session id in customData, as a sensor page would.
    user = [e for e in tracker(web_stack, session_id)["events"] if e["event"] == "user"][-1]
    assert user["metadata"]["emobot"] == {"session_id": session_id, "source": "web", "camera": True, "microphone": False}

    # Each panel heading keeps its name apart from its reading ("fusedhappy 0.98, ..." ran together once).
    gaps = driver.execute_script(
        "return [...document.querySelectorAll('.panel h2')].map(h => { const r = document.createRange();"
        " r.selectNodeContents(h.firstChild); return h.querySelector('.label').getBoundingClientRect().left"
        " - r.getBoundingClientRect().right; });")
    assert len(gaps) == 4 and min(gaps) >= 8, gaps

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / "web-chat.png"))
    figures = stats(driver)
    delays = figures["delaysMs"]
    (ARTIFACTS / "web-stream-delay.json").write_text(json.dumps(
        {"frames_sent": figures["framesSent"], "face_readings": figures["faceReadings"],
         "median_frame_to_reading_ms": statistics.median(delays), "median_round_trip_ms": figures["medianRoundTripMs"],
         "delays_ms": delays}, indent=2))
    print(f"\nframe -> reading in the session state: median {statistics.median(delays):.0f} ms over {len(delays)} frames")

    # Switching the camera off stops the frames.
    driver.find_element(By.ID, "camera-switch").click()
    wait_for(lambda: sensing_indicator(driver)["on"] == "false", 10, "the sensing indicator stayed on", driver)
    sent = stats(driver)["framesSent"]
    time.sleep(1.5)
    assert stats(driver)["framesSent"] == sent
    assert driver.find_element(By.ID, "preview").get_attribute("srcObject") is None


def test_a_reply_with_buttons_shows_them_and_a_click_sends_the_payload(open_page, web_stack):
    """The demo's rating question (asked of a happy user who says thanks) offers 1-5 stars."""
    from selenium.webdriver.common.by import By

    driver = open_page()
    session_id = driver.execute_script("return window.emobot.sessionId")
    driver.find_element(By.ID, "camera-switch").click()
    wait_for(lambda: stats(driver)["faceReadings"] >= 3, 60, "no face readings", driver)
    wait_for(lambda: (face_contribution(session(web_stack, session_id)["state"]) or {}).get("label") == "happy", 30,
             "the astronaut's face was not read happy", driver)
    assert say(driver, "thanks")["text"] == variation("utter_ask_feedback", "happy")
    rating = yaml.safe_load((DEMO_DIR / "domain.yml").read_text())["responses"]["utter_ask_rating"][0]
    assert say(driver, "yes")["text"] == rating["text"]
    shown = driver.find_elements(By.CSS_SELECTOR, ".msg.bot:last-of-type .buttons button")
    assert [b.text for b in shown] == [b["title"] for b in rating["buttons"]]
    before = len(driver.find_elements(By.CSS_SELECTOR, ".msg.bot"))
    shown[4].click()
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, ".msg.bot")) > before, 60, "no reply to the click", driver)
    assert driver.find_elements(By.CSS_SELECTOR, ".msg.user")[-1].text == rating["buttons"][4]["title"]
    assert driver.find_elements(By.CSS_SELECTOR, ".msg.bot .text")[-1].text == variation("utter_thank_rating", "happy")
    # One answer per question: the row is spent, the chosen star marked, and a second click sends nothing
    assert [b.is_enabled() for b in shown] == [False] * 5
    assert [b.get_attribute("aria-pressed") for b in shown] == [None, None, None, None, "true"]
    users_shown = len(driver.find_elements(By.CSS_SELECTOR, ".msg.user"))
    driver.execute_script("arguments[0].click()", shown[0])  # as a script would: a disabled button ignores it
    time.sleep(1.0)
    assert len(driver.find_elements(By.CSS_SELECTOR, ".msg.user")) == users_shown
    kept = tracker(web_stack, session_id)
    assert [e["text"] for e in kept["events"] if e["event"] == "user"] == ["thanks", "yes", '/rate{"rating": "5"}']
    assert kept["slots"]["rating"] == "5"


def test_with_the_camera_and_microphone_off_nothing_is_sent(open_page, web_stack):
    from selenium.webdriver.common.by import By

    driver = open_page()
    session_id = driver.execute_script("return window.emobot.sessionId")

    reply = say(driver, GREETING)
    time.sleep(2)  # several frame intervals: a page that streamed by itself would have sent by now
    figures = stats(driver)
    assert (figures["framesSent"], figures["audioChunksSent"], figures["streamStatus"]) == (0, 0, "off")
    assert sensing_indicator(driver) == {"on": "false", "text": "○ not sensing"}
    state = session(web_stack, session_id)
    assert state["counts"] == {} and state["state"]["contributions"] == []
    assert tracker(web_stack, session_id)["slots"]["user_emotion"] == "unknown"
    assert reply == {"text": variation("utter_greet", "unknown"), "emotion": "unknown", "source": "tracker"}
    note = driver.find_elements(By.CSS_SELECTOR, ".msg.bot .adapted")[-1].text
    assert note == "no emotion sensed: the plain wording"  # was "adapted to unknown"


def test_a_camera_that_will_not_start_says_why_and_its_switch_goes_off(open_page, web_stack):
    from selenium.webdriver.common.by import By

    driver = open_page()
    # As when the person refuses the browser's permission prompt.
    driver.execute_script("navigator.mediaDevices.getUserMedia = () => "
                          "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'))")
    switch = driver.find_element(By.ID, "camera-switch")
    switch.click()
    message = driver.find_element(By.ID, "media-message")
    wait_for(lambda: message.is_displayed(), 10, "no message said why the camera did not start", driver)
    assert message.text == "camera unavailable: Permission denied"
    assert not switch.is_selected()
    assert sensing_indicator(driver) == {"on": "false", "text": "○ not sensing"}
    assert stats(driver)["framesSent"] == 0

    # Switching it on again, with the camera back, clears the message.
    driver.execute_script("delete navigator.mediaDevices.getUserMedia")
    switch.click()
    wait_for(lambda: sensing_indicator(driver)["on"] == "true", 10, "the camera did not start the second time", driver)
    assert not message.is_displayed()
    switch.click()
    wait_for(lambda: sensing_indicator(driver)["on"] == "false", 10, "the sensing indicator stayed on", driver)


def test_the_microphone_streams_16khz_audio_and_the_voice_is_read(open_page, web_stack):
    from selenium.webdriver.common.by import By

    health = requests.get(f"{web_stack.settings.service_listen_url}/health", timeout=10).json()
    if not health["modalities"]["voice"]["on"]:
        pytest.fail(f"the service has no voice recognizer: {health['modalities']['voice']}")
    driver = open_page(audio="speech")
    session_id = driver.execute_script("return window.emobot.sessionId")

    driver.find_element(By.ID, "mic-switch").click()
    indicator = wait_for(lambda: (i := sensing_indicator(driver))["on"] == "true" and i, 10, "no sensing indicator", driver)
    assert "microphone" in indicator["text"] and "camera" not in indicator["text"]
    wait_for(lambda: session(web_stack, session_id)["counts"].get("voice", 0) >= 1, 90,
             "no voice reading from the microphone's audio", driver)
    figures = stats(driver)
    assert figures["audioBytesSent"] >= 16000 * 2  # at least a second of 16 kHz PCM16
    assert figures["framesSent"] == 0
    wait_for(lambda: driver.find_element(By.ID, "bars-voice").get_attribute("data-stale") == "false", 10,
             "the page's voice bars stayed empty", driver)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / "web-chat-voice.png"))


def test_the_stream_reconnects_after_the_service_drops_it(open_page, web_stack):
    """Kill the service under a streaming page: the page says so, keeps chatting, reconnects by
    itself once the service is back, and the frames flow again (last: it restarts the service)."""
    from selenium.webdriver.common.by import By

    driver = open_page()
    driver.find_element(By.ID, "camera-switch").click()
    wait_for(lambda: stats(driver)["faceReadings"] >= 3, 90, "no face readings before the drop", driver)

    web_stack.process("emotion service").kill()
    wait_for(lambda: stats(driver)["streamStatus"] in ("reconnecting", "connecting") and stats(driver)["reconnects"] >= 1,
             30, "the page did not notice the dropped stream", driver)
    reply = say(driver, GREETING)  # chatting goes on without the service
    assert reply["emotion"] == "unknown", reply

    web_stack.restart_process("emotion service")
    before = stats(driver)["faceReadings"]
    wait_for(lambda: stats(driver)["faceReadings"] >= before + 3, 90, "the frames did not flow again", driver)
    figures = stats(driver)
    assert figures["streamStatus"] == "open" and figures["reconnects"] >= 1
    session_id = driver.execute_script("return window.emobot.sessionId")
    sensed = session(web_stack, session_id)["state"]["label"]
    assert sensed != "unknown"
    assert say(driver, GREETING)["emotion"] == sensed
