"""The shipped text model on messages a support assistant hears."""
from __future__ import annotations

import pytest

from emotion_sensing.text.recognizer import MODEL_FILE, TextRecognizer


@pytest.fixture(scope="module")
def recognizer(models_dir):
    recognizer = TextRecognizer(models_dir / MODEL_FILE)
    assert recognizer.has_classifier, "models/text_emotion.joblib must ship with the project"
    return recognizer


@pytest.mark.parametrize(
    "text, label",
    [
        ("I'm furious, my order never arrived and nobody answers", "angry"),
        ("This is outrageous, I am so angry with your service", "angry"),
        ("I feel so sad and lonely today", "sad"),
        ("I'm really scared that my card details were stolen", "fear"),
        ("Thank you so much, this is wonderful!", "happy"),
        ("Could you tell me where my order is?", "neutral"),
        ("What are your opening hours?", "neutral"),
        ("Wow, I didn't expect that at all!", "surprise"),
    ],
)
def test_recognises_emotions_in_chat_messages(recognizer, text, label):
    assert recognizer.read(text).label == label


def test_reading_carries_vader_scores_and_blended_valence(recognizer):
    reading = recognizer.read("I hate this, it's terrible")
    assert set(reading.extras["vader"]) == {"neg", "neu", "pos", "compound"}
    assert reading.extras["vader"]["compound"] < 0
    assert reading.valence < 0
    assert recognizer.read("I love it, thanks!").valence > 0


def test_empty_text_is_refused(recognizer):
    with pytest.raises(ValueError):
        recognizer.read("   ")


def test_without_a_model_it_falls_back_to_vader(tmp_path):
    recognizer = TextRecognizer(tmp_path / "missing.joblib")
    assert not recognizer.has_classifier
    assert recognizer.read("I love this, wonderful!").label == "happy"
    assert recognizer.read("the parcel is in the box").label == "neutral"


def test_fast_path_matches_the_pipeline(recognizer):
    import joblib
    import numpy as np

    model = joblib.load(recognizer.model_path)
    for text in ["where is my order?", "I'm furious!!", "i feel lonely", "wow", "xqzt vbnm", "the the the the"]:
        assert np.allclose(recognizer.class_probabilities(text), model.predict_proba([text])[0], atol=1e-6)
