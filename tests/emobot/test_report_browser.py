"""The HTML replay report opens in a real headless Chromium and shows its timeline.

Screenshots are kept under .emobot/artifacts/ (git-ignored) for a person to look at.
"""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.emobot.test_replay import BOT, SLOTS, USER, make_store

ARTIFACTS = Path(__file__).resolve().parents[2] / ".emobot" / "artifacts"
ANGRY_RED, HAPPY_GREEN = (0xD6, 0x27, 0x28), (0x2C, 0xA0, 0x2C)


def turn(text: str, label: str, valence: float) -> list:
    values = {"user_emotion": label, "emotion_valence": valence,
              "emotion_reading": {"sensing": "ok", "contributions": [{"modality": "text", "label": label, "share": 1.0}]}}
    slots = [{**s, "value": values.get(s["name"], s["value"])} for s in SLOTS]
    return [{**USER, "text": text}, *slots, *BOT]


@pytest.fixture
def browser():
    driver = chromium(1000, 1100, "--hide-scrollbars")
    yield driver
    driver.quit()


def colours(png: bytes) -> set:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return {colour for _, colour in image.getcolors(image.width * image.height)}


def test_the_report_opens_in_chromium_and_its_timeline_shows_every_turn(tmp_path, browser):
    from selenium.webdriver.common.by import By

    events = turn("I'm furious", "angry", -0.7) + turn("ok, that helps", "neutral", 0.0) + turn(
        "great, thank you!", "happy", 0.8
    )
    url = make_store(tmp_path / "t.db", {"alice": events})
    report = tmp_path / "alice.html"
    result = subprocess.run([sys.executable, "-m", "emobot", "replay", "alice", "--store", url, "--html", str(report)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    browser.get(report.as_uri())
    assert browser.title == "Conversation alice"
    timeline = browser.find_element(By.ID, "timeline")
    assert timeline.is_displayed()
    assert timeline.size["width"] >= 800 and timeline.size["height"] >= 200
    points = browser.find_elements(By.CSS_SELECTOR, "#timeline circle.turn")
    assert len(points) == 3 and all(p.is_displayed() for p in points)
    # Valence runs upwards: the happy turn is drawn above the angry one.
    assert points[2].location["y"] < points[1].location["y"] < points[0].location["y"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page_png, timeline_png = ARTIFACTS / "replay-report.png", ARTIFACTS / "replay-timeline.png"
    assert browser.save_screenshot(str(page_png))
    shot = timeline.screenshot_as_png
    timeline_png.write_bytes(shot)
    print(f"screenshots: {page_png} {timeline_png}")
    # The timeline as rendered holds the angry (red) and happy (green) points.
    seen = colours(shot)
    assert ANGRY_RED in seen and HAPPY_GREEN in seen
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == ["I'm furious", "ok, that helps",
                                                                           "great, thank you!"]
