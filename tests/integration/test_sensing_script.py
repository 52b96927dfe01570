"""emobot-sensing.js on a site with rasa-webchat, in headless Chromium with fake devices.

A static page served from another origin (another port) runs rasa-webchat (the npm package,
installed by set-up into tests/web) talking to the demo through Rasa's socket.io channel, plus
the one script tag. The stack senses only face and voice, so the emotion a reply is adapted to
is what the camera saw. Screenshots and the frame->reading delay go to .emobot/artifacts/.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from emobot.paths import DEMO_DIR
from emobot.stack import free_port, http_ok
from tests.browser import chromium, fake_media, skip_without_chromium
from tests.integration.test_web_page import (  # noqa: F401 - pytest fixtures
    ARTIFACTS,
    media,
    tracker,
    wait_for,
)

pytestmark = pytest.mark.integration

WEBCHAT = Path(__file__).resolve().parents[1] / "web" / "node_modules" / "rasa-webchat" / "lib" / "index.js"
DOMAIN = yaml.safe_load((DEMO_DIR / "domain.yml").read_text())

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A shop</title>
<style>body {{ font-family: sans-serif; margin: 20px; }} #webchat {{ width: 420px; height: 520px; margin-left: 260px; }}</style>
</head><body>
<h1>A shop with a chat widget</h1>
<div id="webchat"></div>
<script src="rasa-webchat.js"></script>
<script>
  WebChat.default({{ selector: "#webchat", initPayload: "/greet", socketUrl: "{rasa}", socketPath: "/socket.io/",
                     title: "Shop assistant", embedded: true, showFullScreenButton: false,
                     params: {{ storage: "session" }} }}, null);
</script>
<script src="{service}/static/emobot-sensing.js" data-service="{service}"></script>
</body></html>
"""


class PageServer:
    """The shop's static page on its own loopback port (so its own origin)."""

    def __init__(self, folder: Path, port: Optional[int] = None) -> None:
        self.folder, self.port = folder, port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self, rasa: str, service: str) -> PageServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(WEBCHAT, self.folder / "rasa-webchat.js")
        (self.folder / "index.html").write_text(PAGE.format(rasa=rasa, service=service))
        self.process = subprocess.Popen([sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                                         "--directory", str(self.folder)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not http_ok(f"{self.origin}/index.html") and time.time() < deadline:
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def shop(request, tmp_path_factory) -> Iterator[Dict[str, Any]]:
    """The stack (face and voice sensing, the shop's origin allowed; conftest.py), the shop and a
    site not allowed."""
    skip_without_chromium()
    assert WEBCHAT.is_file(), f"{WEBCHAT} missing: run `make setup` (it runs npm ci in tests/web)"
    stack, origin = request.getfixturevalue("face_voice_stack")
    root = tmp_path_factory.mktemp("shop")
    allowed, other = PageServer(root / "shop", urlsplit(origin).port), PageServer(root / "elsewhere")
    assert allowed.origin == origin
    service, rasa = stack.settings.service_listen_url, stack.settings.rasa_url
    allowed.start(rasa, service)
    other.start(rasa, service)
    yield {"stack": stack, "allowed": allowed, "other": other}
    allowed.stop()
    other.stop()


@pytest.fixture
def open_shop(shop, media) -> Iterator[Callable[..., Any]]:  # noqa: F811 - the imported fixture
    drivers = []

    def open_(site: str = "allowed"):
        driver = chromium(1100, 800, *fake_media(media["astronaut"], media["silence"]), console=True)
        drivers.append(driver)
        driver.get(f"{shop[site].origin}/index.html")
        wait_for(lambda: driver.execute_script("return window.emobot && window.emobot.sessionId"), 60,
                 "the sensing script found no conversation id from rasa-webchat", driver)
        wait_for(lambda: bot_messages(driver), 60, "rasa-webchat got no greeting from the assistant", driver)
        return driver

    yield open_
    for driver in drivers:
        driver.quit()


def panel(driver, selector: str):
    return driver.execute_script("return document.querySelector('#emobot-sensing').shadowRoot.querySelector(arguments[0])",
                                 selector)


def stats(driver) -> Dict[str, Any]:
    return driver.execute_script("return window.emobot.stats()")


def bot_messages(driver) -> list:
    return driver.execute_script(
        "return [...document.querySelectorAll('.rw-response')].map((e) => e.innerText.trim()).filter(Boolean)")


def say(driver, text: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = len(bot_messages(driver))
    box = driver.find_element(By.CSS_SELECTOR, ".rw-new-message")
    box.send_keys(text, Keys.ENTER)
    wait_for(lambda: len(bot_messages(driver)) > before, 60, f"no reply to {text!r}", driver)
    time.sleep(1.0)  # a reply may come in several messages
    return bot_messages(driver)[before]


def greeting(emotion: str) -> set:
    found = set()
    for variation in DOMAIN["responses"]["utter_greet"]:
        values = {c["value"] for c in variation.get("condition") or [] if c.get("name") == "user_emotion"}
        if emotion in values or (emotion in ("unknown", "neutral") and not values):
            found.add(variation["text"].strip())
    return found


def test_the_face_seen_through_the_script_reaches_the_tracker_and_the_reply(shop, open_shop):
    driver = open_shop()
    session_id = driver.execute_script("return window.emobot.sessionId")
    assert driver.execute_script("return window.emobot.sessionSource") == "rasa-webchat"
    assert panel(driver, ".indicator").text == "○ not sensing"
    panel(driver, ".camera-switch").click()
    wait_for(lambda: stats(driver)["faceReadings"] >= 5, 60, "no face readings through the script", driver)
    indicator = panel(driver, ".indicator")
    assert indicator.get_attribute("data-on") == "true" and "camera" in indicator.text
    state = requests.get(f"{shop['stack'].settings.service_listen_url}/v1/sessions/{session_id}", timeout=10).json()
    sensed = state["state"]["label"]
    assert sensed not in ("unknown", "neutral"), state["state"]
    reply = say(driver, "hello")
    slots = tracker(shop["stack"], session_id)["slots"]
    assert slots["user_emotion"] == sensed
    assert reply in greeting(sensed), (reply, sensed)
    delay = stats(driver)["medianDelayMs"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "sensing-script-delay.json").write_text(json.dumps(
        {"median_frame_to_reading_ms": delay, "face_readings": stats(driver)["faceReadings"], "sensed": sensed}))
    assert driver.save_screenshot(str(ARTIFACTS / "sensing-script-webchat.png"))


def test_the_panel_folds_to_its_indicator_and_switches_and_stays_folded(shop, open_shop):
    driver = open_shop()

    def shown(selector: str) -> bool:
        return driver.execute_script("return getComputedStyle(arguments[0]).display !== 'none'", panel(driver, selector))

    def height() -> float:
        return driver.execute_script("return arguments[0].getBoundingClientRect().height", panel(driver, ".panel"))

    panel(driver, ".camera-switch").click()
    wait_for(lambda: stats(driver)["faceReadings"] >= 2, 60, "no face readings through the script", driver)
    unfolded = height()
    assert shown(".preview") and shown(".bars")
    panel(driver, ".fold").click()
    assert not shown(".preview") and not shown(".bars") and not shown(".about")
    assert shown(".indicator") and shown(".camera-switch") and "camera" in panel(driver, ".indicator").text
    assert height() < unfolded / 2 and panel(driver, ".fold").get_attribute("aria-expanded") == "false"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / "sensing-script-folded.png"))
    sent = stats(driver)["framesSent"]
    wait_for(lambda: stats(driver)["framesSent"] > sent, 10, "folding the panel stopped the camera", driver)

    driver.refresh()  # the tab remembers the fold
    wait_for(lambda: driver.execute_script("return window.emobot && window.emobot.sessionId"), 60,
             "the sensing script did not come back", driver)
    assert not shown(".bars") and panel(driver, ".indicator").text == "○ not sensing"
    panel(driver, ".fold").click()
    assert shown(".bars") and panel(driver, ".fold").get_attribute("aria-expanded") == "true"


def test_with_the_switches_off_nothing_is_sent(shop, open_shop):
    driver = open_shop()
    session_id = driver.execute_script("return window.emobot.sessionId")
    say(driver, "hello")
    figures = stats(driver)
    assert (figures["framesSent"], figures["audioChunksSent"], figures["streamStatus"]) == (0, 0, "off")
    assert panel(driver, ".indicator").text == "○ not sensing"
    assert tracker(shop["stack"], session_id)["slots"]["user_emotion"] == "unknown"
    assert requests.get(f"{shop['stack'].settings.service_listen_url}/v1/sessions/{session_id}",
                        timeout=10).json()["counts"] == {}


def test_a_site_that_is_not_allowed_is_refused(shop, open_shop):
    driver = open_shop("other")
    session_id = driver.execute_script("return window.emobot.sessionId")
    panel(driver, ".camera-switch").click()
    wait_for(lambda: stats(driver)["streamStatus"] == "refused", 30, "the stream was not refused", driver)
    message = panel(driver, ".message").text
    assert "may not use this emotion service" in message and shop["other"].origin in message
    assert panel(driver, ".indicator").text == "○ not sensing"  # the camera was switched off again
    assert stats(driver)["faceReadings"] == 0
    answer = requests.get(f"{shop['stack'].settings.service_listen_url}/v1/sessions/{session_id}", timeout=10)
    assert answer.status_code == 404 or "face" not in answer.json()["counts"]
    assert driver.save_screenshot(str(ARTIFACTS / "sensing-script-refused.png"))
