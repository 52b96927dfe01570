"""Headless Chromium for the tests that look at a page: Debian's chromium and chromium-driver,
driven by selenium. Where they are missing, those tests skip and say how to install them."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Tuple

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def skip_without_chromium() -> None:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")


def fake_media(video: Path, audio: Path) -> Tuple[str, ...]:
    """Chromium's arguments for a camera and a microphone played from files (y4m, wav), allowed
    without asking, and media that plays without a click."""
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
            f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={audio}")


def chromium(width: int, height: int, *arguments: str, console: bool = False):
    """A started headless Chromium (a selenium WebDriver: the caller quits it) with a window of
    ``width`` x ``height`` and ``arguments`` added; ``console`` keeps the page's console messages
    for ``driver.get_log("browser")``. Skips the test where Chromium is missing."""
    skip_without_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", *arguments):
        options.add_argument(argument)
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
