"""The shipped text model reaches its stated accuracy and calibration on the public splits of
all three corpora (the card's figures; the model saw none of these test rows)."""
from __future__ import annotations

import pytest

from emotion_sensing.text.recognizer import MODEL_FILE
from emotion_sensing.text.train import CORPORA, eval_text, load_split

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def corpora_dir(datasets_dir):
    if not (datasets_dir / "dailydialog").exists():
        pytest.skip(f"DailyDialog not found at {datasets_dir / 'dailydialog'}; see README 'Datasets'")
    return datasets_dir


@pytest.fixture(scope="module")
def results(corpora_dir, models_dir):
    splits = [load_split(corpora_dir, corpus, "test") for corpus in CORPORA]
    return {r["dataset"]: r for r in eval_text(splits, models_dir / MODEL_FILE)["datasets"]}


@pytest.fixture(scope="module")
def validation(corpora_dir, models_dir):
    splits = [load_split(corpora_dir, corpus, "val") for corpus in CORPORA]
    return {r["dataset"]: r for r in eval_text(splits, models_dir / MODEL_FILE)["datasets"]}


def test_dair_emotion_test_accuracy(results):
    result = results["dair_emotion/test"]
    assert result["n"] == 2000
    assert result["accuracy"] >= 0.90


def test_goemotions_ekman_test_macro_f1(results):
    assert results["goemotions_ekman/test"]["macro_f1"] >= 0.58


def test_dailydialog_test(results):
    result = results["dailydialog/test"]
    assert result["n"] == 7740
    assert result["micro_f1_emotions"] >= 0.50


@pytest.mark.xfail(reason="issue 15 target not reached yet: the shipped model's DailyDialog macro-F1 is 0.428 "
                          "with AVX-512, 0.423 on AVX2 only (anger, disgust, fear and sadness are rare there and mostly read neutral)", strict=False)
def test_dailydialog_test_macro_f1(results):
    assert results["dailydialog/test"]["macro_f1"] >= 0.45


@pytest.mark.parametrize("split", ["dair_emotion/val", "goemotions_ekman/dev", "dailydialog/validation"])
def test_confidence_is_calibrated_on_every_validation_split(validation, split):
    assert validation[split]["ece"] <= 0.05, validation[split]["ece"]


def test_vader_valence_agreement_is_reported(results):
    agreement = results["dair_emotion/test"]["valence_agreement"]
    assert 0.5 < agreement["vader_only"] < 1.0
    assert agreement["recognizer"] >= agreement["vader_only"]
