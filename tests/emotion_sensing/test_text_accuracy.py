"""The shipped text model reaches its stated accuracy on the public test splits."""
from __future__ import annotations

import pytest

from emotion_sensing.text.datasets import load_dair, load_goemotions_ekman
from emotion_sensing.text.recognizer import MODEL_FILE
from emotion_sensing.text.train import eval_text

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def results(datasets_dir, models_dir):
    splits = [
        load_dair(datasets_dir / "dair_emotion", "test"),
        load_goemotions_ekman(datasets_dir / "goemotions", "test"),
    ]
    return {r["dataset"]: r for r in eval_text(splits, models_dir / MODEL_FILE, log=None)["datasets"]}


def test_dair_emotion_test_accuracy(results):
    result = results["dair_emotion/test"]
    assert result["n"] == 2000
    assert result["accuracy"] >= 0.88


def test_goemotions_ekman_test_macro_f1(results):
    assert results["goemotions_ekman/test"]["macro_f1"] >= 0.50


def test_vader_valence_agreement_is_reported(results):
    agreement = results["dair_emotion/test"]["valence_agreement"]
    assert 0.5 < agreement["vader_only"] < 1.0
    assert agreement["recognizer"] >= agreement["vader_only"]
