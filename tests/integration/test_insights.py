"""Insights over a tracker store written by real conversations through the running stack:
furious people the EmotionPolicy steps in for, calm ones; the report in headless Chromium."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from emobot.chat import RasaRestClient
from emotion_sensing.replay import store_url
from tests.browser import chromium, skip_without_chromium

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(own_stack):
    """This module's insights count every conversation in the store: it gets a stack of its own."""
    return own_stack

ARTIFACTS = Path(__file__).resolve().parents[2] / ".emobot" / "artifacts"


@pytest.fixture(scope="module")
def conversations(stack):
    furious, calm = [], []
    for _ in range(3):
        client = RasaRestClient(stack.settings.rasa_url, f"furious-{uuid.uuid4().hex[:6]}")
        for text in ("Where is my order? I'm furious!", "Where is my order? I'm furious!",
                     "This is outrageous, nobody ever answers"):
            client.send(text)
        furious.append(client.sender_id)
    for _ in range(3):
        client = RasaRestClient(stack.settings.rasa_url, f"calm-{uuid.uuid4().hex[:6]}")
        for text in ("hello", "Could you tell me where my order is?", "thanks, that's great!"):
            client.send(text)
        calm.append(client.sender_id)
    rated = {}
    for stars, texts in (("5", ("hi there", "thanks, that's great!", "yes")), ("5", ("thank you so much, brilliant!", "yes")),
                         ("1", ("This is outrageous, nobody ever answers", "I'm furious, this is useless")),
                         ("1", ("I'm so angry, my parcel is lost again",))):
        client = RasaRestClient(stack.settings.rasa_url, f"rated-{uuid.uuid4().hex[:6]}")
        for text in texts:
            client.send(text)
        client.send(f'/rate{{"rating": "{stars}"}}')  # the button's payload
        rated[client.sender_id] = stars
    return {"furious": furious, "calm": calm, "rated": rated,
            "store": store_url(stack.tracker_store_config(), stack.run_dir)}


def _insights(store: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emobot", "insights", "--store", store, "--min-n", "1", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_real_conversations_rank_as_they_went(conversations):
    import json

    done = _insights(conversations["store"], "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    intents = {row["intent"]: row["valence"]["mean"] for row in result["intents"] if row["valence"]}
    assert intents["complaint"] < intents["greet"] and intents["order_status"] < intents["thanks"]
    assert result["policy"]["stepped_in"] >= 3  # once in each furious conversation
    upset = {row["sender_id"] for row in result["ended_upset"]["conversations"]}
    assert set(conversations["furious"]) <= upset and not upset & set(conversations["calm"])
    # every typed turn is sensed; a rating button's click, without a camera, senses nothing (unknown)
    assert result["sensed_turns"] == result["user_turns"] - len(conversations["rated"])
    assert result["by_source"][0]["source"] == "text only"
    # The stars people gave, beside what was sensed before: the 1s came after angry turns, the 5s after happy
    ratings = result["ratings"]
    assert ratings["n"] == len(conversations["rated"]) and ratings["without_sensed_turns"] == 0
    low, high = ratings["by_rating"]
    assert (low["rating"], low["n"], high["rating"], high["n"]) == (1, 2, 5, 2)
    assert low["valence_before"]["mean"] < 0 < high["valence_before"]["mean"]
    assert "angry" in low["mix_before"]["counts"] and "happy" in high["mix_before"]["counts"]
    assert ratings["valence_correlation"]["r"] > 0.5


def test_the_html_report_and_the_page_open_in_chromium(stack, conversations, tmp_path):
    skip_without_chromium()
    from selenium.webdriver.common.by import By

    report = tmp_path / "insights.html"
    done = _insights(conversations["store"], "--html", str(report))
    assert done.returncode == 0, done.stderr
    driver = chromium(1200, 2400, "--hide-scrollbars")
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for source, shot in ((report.as_uri(), "insights-report.png"),
                             (f"{stack.settings.service_listen_url}/insights?min_n=1", "insights-page.png")):
            driver.get(source)
            assert driver.title == "Emotion insights"
            charts = driver.find_elements(By.CSS_SELECTOR, "img[src^='data:image/png']")
            assert len(charts) >= 4 and all(c.size["width"] > 300 and c.size["height"] > 100 for c in charts)
            stars = driver.find_elements(By.XPATH, "//h2[.='Ratings against what was sensed']/following-sibling::table[1]//tbody/tr")
            assert [row.text.split()[0] for row in stars] == ["1", "5"]
            assert driver.save_screenshot(str(ARTIFACTS / shot))
        links = driver.find_elements(By.CSS_SELECTOR, "a[href^='/replay/']")
        assert links, "the page links the conversations that ended upset to their replay"
        assert requests.get(links[0].get_attribute("href"), timeout=30).status_code == 200  # absolute in the DOM
    finally:
        driver.quit()
