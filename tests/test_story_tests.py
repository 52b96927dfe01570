"""Rasa's own story tests (tests/stories/) pass on the trained model: each emotional state
takes its own path through the same requests."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from emobot.paths import latest_rasa_model

ROOT = Path(__file__).resolve().parents[1]
STORIES = ROOT / "tests" / "stories"


def story_count() -> int:
    return sum(len((yaml.safe_load(f.read_text()) or {}).get("stories", [])) for f in STORIES.glob("*.yml"))


@pytest.mark.integration
def test_every_story_test_passes_on_the_trained_model(tmp_path):
    try:
        model = latest_rasa_model(ROOT)
    except FileNotFoundError as error:
        pytest.fail(str(error))
    rasa = Path(sys.executable).parent / "rasa"
    result = subprocess.run(
        [str(rasa), "test", "core", "--model", str(model), "--stories", str(STORIES), "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=540,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    failed = (tmp_path / "failed_test_stories.yml").read_text()
    assert "None of the test stories failed" in failed, failed
    # Conversation level: every story counted, every one correct.
    correct = re.search(r"CONVERSATION level:.*?Correct:\s+(\d+) / (\d+)", log, re.S)
    assert correct, log[-3000:]
    assert int(correct.group(1)) == int(correct.group(2)) == story_count() >= 8
