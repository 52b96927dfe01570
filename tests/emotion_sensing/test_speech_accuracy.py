"""The shipped voice model on RAVDESS actors it never heard (needs ../shared/datasets/ravdess)."""
from __future__ import annotations

import pytest

from tests.conftest import DATASETS
from tests.emotion_sensing.speech_audio import VOICE_MODEL, needs_voice_model

pytestmark = [pytest.mark.data, needs_voice_model]


@pytest.fixture(scope="module")
def ravdess_dir():
    if not (DATASETS / "ravdess" / "labels.csv").exists():
        pytest.skip(f"RAVDESS not found at {DATASETS / 'ravdess'} (set EMOBOT_DATASETS); see README 'Voice'")
    return DATASETS


def test_held_out_actors_reach_sixty_percent(ravdess_dir):
    from emotion_sensing.speech.evaluate import evaluate_ravdess

    result = evaluate_ravdess(ravdess_dir, VOICE_MODEL)
    assert result["n"] == 360  # actors 19-24, 60 clips each
    assert "Actor_19" in result["speakers"] and "Actor_24" in result["speakers"]
    assert result["accuracy"] >= 0.60
    # Standardising per speaker is what gets it there.
    assert result["accuracy_by_normalisation"]["none"] < result["accuracy"]
