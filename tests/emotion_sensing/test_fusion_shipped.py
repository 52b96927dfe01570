"""The shipped fusion (models/fusion.json) on the cases a support chat meets most: a polite or
content-free message typed by someone whose face is angry or sad, a message that carries anger
beside a calm face, and a content-free reply after an angry turn. Messages are read by the real
text model; faces by the real face model where the datasets are present."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotion_sensing.config import DEFAULT_DATASETS_DIR, Settings
from emotion_sensing.fusion import fuse
from emotion_sensing.labels import LABELS
from emotion_sensing.reading import Reading
from emotion_sensing.session import Session

SHIPPED = Settings().fusion
pytestmark = pytest.mark.skipif(SHIPPED.model is None, reason="models/fusion.json missing: run `emobot train fusion`")
NOW = 1_000_000.0

# The table: the message, the face's label, what the fused state must be.
POLITE_BESIDE_UPSET_FACE = [
    ("Where is my order? It's number 12345.", "angry"),
    ("I want a refund for the blender.", "sad"),
    ("ok", "angry"),
    ("Can I talk to a person?", "angry"),
]


@pytest.fixture(scope="module")
def text():
    from emotion_sensing.text.recognizer import MODEL_FILE, TextRecognizer

    return TextRecognizer(Settings().models_dir / MODEL_FILE)


def peaked(label, p):
    rest = (1 - p) / (len(LABELS) - 1)
    return tuple(p if name == label else rest for name in LABELS)


def face_stream(probs, now=NOW):
    """12 face readings over the last 3 s, as the service keeps them for a streaming camera."""
    return [Reading("face", tuple(probs), float(max(probs)), timestamp=now - i * 0.25) for i in range(12)]


NEGATIVE = ("angry", "disgust", "fear", "sad")


@pytest.mark.parametrize("message,face", POLITE_BESIDE_UPSET_FACE)
def test_a_polite_message_beside_an_upset_face_is_not_read_as_calm(text, message, face):
    """The issue's table: 12 readings at 0.7 angry (0.6 sad), the rest spread evenly. Such a flat
    remainder is not what the face model gives (it rarely puts 5% on disgust), so the fused label
    may be the neighbouring negative one; what must hold is that the person is not read as calm
    or happy, and that the face, not the words, decides."""
    strength = 0.6 if face == "sad" else 0.7
    reading = text.read(message, timestamp=NOW)
    state = fuse([reading, *face_stream(peaked(face, strength))], now=NOW, config=SHIPPED)
    assert state.label in NEGATIVE and state.valence < 0, (message, reading.label, state.to_dict())
    shares = {c.modality: c.share for c in state.contributions}
    assert shares["face"] > shares["text"]


# A typical calm face as the shipped face model reads it: the median of its readings of the FER2013
# PublicTest faces labelled neutral that it reads neutral (405 faces; renormalised). A calm face is not
# 0.7 neutral with the rest spread evenly: it leans sad and angry a little and almost never disgust.
CALM_FACE = np.array([0.045, 0.005, 0.042, 0.018, 0.093, 0.010, 0.692])
CALM_FACE = tuple(CALM_FACE / CALM_FACE.sum())
FURIOUS = "I'm furious, this is the third time"


def test_a_message_that_carries_anger_beside_a_calm_face_still_reads_angry(text):
    """The issue's own example. The text model reads it angry 0.53 / neutral 0.29 with AVX-512 (0.46 /
    0.34 on AVX2 only); the fusion is fitted on rows where an emotional person's face shows the
    emotion only sometimes (models/fusion.md), so a straight face does not outvote the words."""
    reading = text.read(FURIOUS, timestamp=NOW)
    assert reading.label == "angry", reading
    state = fuse([reading, *face_stream(CALM_FACE)], now=NOW, config=SHIPPED)
    assert state.label == "angry" and state.valence < 0, state.to_dict()
    shares = {c.modality: c.share for c in state.contributions}
    assert shares["text"] > 0.2, shares  # the words count beside the face


@pytest.mark.skipif(not (Path(DEFAULT_DATASETS_DIR) / "fer2013").exists(),
                    reason=f"FER2013 not found under {DEFAULT_DATASETS_DIR} (see README 'Datasets')")
def test_the_same_beside_real_calm_faces(text):
    """Real calm faces through the shipped face model: FER2013 PrivateTest faces labelled neutral
    that the model reads neutral (the first 200; neither the face model nor the fusion was
    fitted on PrivateTest). Most of the states are angry and nearly all negative."""
    from emotion_sensing.face import fer2013
    from emotion_sensing.face.recognizer import FaceRecognizer

    split = fer2013.load(Path(DEFAULT_DATASETS_DIR))["PrivateTest"]
    recognizer = FaceRecognizer.from_models_dir(Settings().models_dir)
    message = text.read(FURIOUS, timestamp=NOW)
    states = []
    for image, label in zip(split.images, split.labels):
        if LABELS[int(label)] != "neutral":
            continue
        face = recognizer.analyse(image, cropped=True).reading(timestamp=NOW)
        if face is not None and face.label == "neutral":
            states.append(fuse([message, *face_stream(face.probs)], now=NOW, config=SHIPPED))
        if len(states) == 200:
            break
    assert len(states) == 200
    angry = np.mean([s.label == "angry" for s in states])
    negative = np.mean([s.valence < 0 for s in states])
    assert angry > 0.5 and negative > 0.85, (angry, negative)


def test_a_message_that_plainly_carries_anger_beside_a_calm_face_reads_angry(text):
    reading = text.read("This is the third time I'm asking and I'm really angry now!", timestamp=NOW)
    assert reading.label == "angry" and reading.confidence > 0.75
    state = fuse([reading, *face_stream(peaked("neutral", 0.7))], now=NOW, config=SHIPPED)
    assert state.label == "angry", state.to_dict()


def _kdef_faces(label):
    folder = Path(DEFAULT_DATASETS_DIR) / "kdef3" / label
    return sorted(folder.glob("*.JPG")) if folder.exists() else []


@pytest.mark.skipif(not _kdef_faces("angry"), reason=f"KDEF3 not found under {DEFAULT_DATASETS_DIR} (see README 'Datasets')")
@pytest.mark.parametrize("message,face", [row for row in POLITE_BESIDE_UPSET_FACE if row[1] in ("angry", "sad")])
def test_the_same_with_real_face_photos_through_the_face_model(text, message, face):
    """Faces of KDEF3 (never trained on) read by the shipped face model: the first five photos of
    the label the model reads as that label (this tests fusion, not the face model's recall). Every
    state must be negative; sad faces must read sad but for one at most, angry ones angry at least
    once. The face model splits some faces between the label and disgust (an angry face often; of
    the sad ones, KDEF's AF04SAS reads sad 0.52 / disgust 0.40 by the two networks averaged), and the
    fitted fusion, balanced by label, then may say disgust: models/fusion.md."""
    from emotion_sensing.face.recognizer import FaceRecognizer

    recognizer = FaceRecognizer.from_models_dir(Settings().models_dir)
    readings = []
    for path in _kdef_faces(face):
        found = recognizer.analyse(cv2.imread(str(path))).reading(timestamp=NOW)
        if found is not None and found.label == face:
            readings.append(found)
        if len(readings) == 5:
            break
    assert readings, f"the face model read no KDEF3 {face} photo as {face}"
    labels = []
    for found in readings:
        state = fuse([text.read(message, timestamp=NOW), *face_stream(found.probs)], now=NOW, config=SHIPPED)
        assert state.label in NEGATIVE and state.valence < 0, (message, np.round(found.probs, 2), state.to_dict())
        labels.append(state.label)
    if face == "sad":
        assert labels.count("sad") >= len(labels) - 1, labels
    else:
        assert "angry" in labels


def second_turn(text, before: str, message: str):
    """One support conversation of two messages 8 s apart: (the first turn's state, the second
    message's text reading, the second turn's state, fused with the first as its mood)."""
    session = Session("support")
    session.add(text.read(before, timestamp=NOW))
    first = session.fuse(SHIPPED, now=NOW)
    session.end_turn(first)
    reading = text.read(message, timestamp=NOW + 8)
    session.add(reading)
    return first, reading, session.fuse(SHIPPED, now=NOW + 8)


def test_ok_after_an_angry_turn_stays_angry_leaning(text):
    first, _, second = second_turn(text, "this is ridiculous, nobody ever answers my emails", "ok")
    assert first.valence < 0, first.to_dict()
    assert second.valence < 0, second.to_dict()
    assert second.label != "happy" and second.mood_share > 0
    # The same "ok" with no earlier turn is not negative.
    assert fuse([text.read("ok", timestamp=NOW)], now=NOW, config=SHIPPED).valence >= 0 > second.valence


@pytest.mark.parametrize("before, message, label", [
    ("this is ridiculous, nobody ever answers my emails", "Thank you so much, that's wonderful news!", "happy"),
    # A confident happy turn left sad at 0.0004: its log vetoed the sad message (happy 0.44,
    # valence +0.77, "That's lovely to hear!") until the mood was mixed with how often emotion stays.
    ("thanks, that is great!", "actually I am really sad, my dog died yesterday", "sad"),
    ("I'm so happy with the service, thank you!", "oh no, I'm scared my card details were stolen", "fear"),
])
def test_a_message_with_a_new_emotion_moves_the_mood(text, before, message, label):
    first, reading, state = second_turn(text, before, message)
    assert first.label not in ("neutral", label), first.to_dict()
    assert reading.label == label, reading
    assert state.label == label, state.to_dict()
    # Its valence is the message's side of zero, not the previous turn's.
    assert np.sign(state.valence) == np.sign(reading.valence) != np.sign(first.valence), state.to_dict()


@pytest.mark.parametrize("message, label", [
    ("I'm furious, my order never arrived and nobody answers", "angry"),
    ("I'm so sad, the gift I ordered for my mum is broken", "sad"),
    ("This is absolutely unacceptable, I am so angry", "angry"),
])
def test_an_emotion_that_begins_after_neutral_turns_is_read_at_once(text, message, label):
    """A neutral turn leaves no mood (before, its confident neutral outweighed the new message:
    each of these read neutral after "where is my order?")."""
    session = Session("support")
    for i, calm in enumerate(("hi there", "where is my order?")):
        session.add(text.read(calm, timestamp=NOW + 4 * i))
        state = session.fuse(SHIPPED, now=NOW + 4 * i)
        session.end_turn(state)
        assert state.label == "neutral", state.to_dict()
    session.add(text.read(message, timestamp=NOW + 8))
    state = session.fuse(SHIPPED, now=NOW + 8)
    alone = fuse([text.read(message, timestamp=NOW)], now=NOW, config=SHIPPED)
    assert state.label == label == alone.label and state.mood_share == 0, state.to_dict()


@pytest.mark.parametrize("message", ["where is my order?", "hi there", "I want a refund"])
def test_a_face_seen_seconds_ago_does_not_turn_a_plain_message_unknown(text, message):
    """Issue 21: on a busy machine a conversation's face is read every few seconds, not every frame.
    Any face reading at all used to switch the fusion to the regime where plain words weigh
    little, so an aged face (presence 0.5 ** (age / 3 s)) left a message the text reads neutral
    0.8-0.99 `unknown`. The state now moves from the fused reading to the words' own as the face
    ages."""
    words = text.read(message, timestamp=NOW)
    alone = fuse([words], now=NOW, config=SHIPPED)
    assert alone.label == "neutral"
    for age in (4.0, 6.0, 8.0, 10.0, 15.0, 19.0):
        face = Reading("face", peaked("happy", 0.9), 0.9, timestamp=NOW - age)
        state = fuse([words, face], now=NOW, config=SHIPPED)
        assert state.label != "unknown", (age, state.confidence)


def test_the_shipped_fusion_was_fitted_on_the_shipped_recognizers():
    """models/fusion.json weighs the readings of particular recognizer files: when one of them is
    retrained, the fusion must be refitted (`emobot train fusion`) and shipped with it."""
    from emotion_sensing.fusion_model import changed_recognizers

    models = Settings().models_dir
    assert {"text_emotion.npz", "speech_emotion.joblib", "face_emotion.json"} <= set(SHIPPED.model.meta["recognizers"])
    assert changed_recognizers(SHIPPED.model, models) == [], \
        "a recognizer changed since the fusion was fitted: run `emobot train fusion --data ../shared/datasets`"


def test_a_fusion_fitted_on_other_recognizer_files_says_so(tmp_path, caplog):
    import json
    import logging

    from emotion_sensing.fusion import load_fusion_model
    from emotion_sensing.fusion_model import MODEL_FILE, changed_recognizers, recognizer_fingerprints

    (tmp_path / "text_emotion.npz").write_bytes(b"the text model it was fitted with")
    fitted = SHIPPED.model.to_dict()
    fitted["meta"] = {**fitted["meta"], "recognizers": recognizer_fingerprints(tmp_path)}
    (tmp_path / MODEL_FILE).write_text(json.dumps(fitted))
    with caplog.at_level(logging.WARNING, logger="emotion_sensing.fusion"):
        assert changed_recognizers(load_fusion_model(tmp_path), tmp_path) == [] and not caplog.records
        (tmp_path / "text_emotion.npz").write_bytes(b"a retrained text model")
        (tmp_path / "speech_emotion.joblib").write_bytes(b"a voice model it never saw")
        model = load_fusion_model(tmp_path)
    assert changed_recognizers(model, tmp_path) == ["speech_emotion.joblib", "text_emotion.npz"]
    assert "speech_emotion.joblib, text_emotion.npz changed" in caplog.text and "emobot train fusion" in caplog.text
    del fitted["meta"]["recognizers"]  # fitted before fingerprints were kept: nothing to compare
    (tmp_path / MODEL_FILE).write_text(json.dumps(fitted))
    assert changed_recognizers(load_fusion_model(tmp_path), tmp_path) is None


def test_the_mood_keeps_content_free_turns_and_yields_to_a_new_emotion(text):
    """The support messages the text tests call content-free, each after each emotional message of
    those tests: the previous turn's feeling carries (its valence side). And each emotional message
    after one of another emotion reads its own: with the mood's plain log (until 7 December) 27 of
    the 40 pairs did (after "I feel so sad and lonely today", "I'm furious, ..." read sad 0.71);
    the mood mixed with how often emotion stays reads 37 here, and carries as before (326 of 329
    valences kept, against 329)."""
    from tests.emotion_sensing.test_text_recognizer import CONTENT_FREE, EMOTIONAL

    kept = [np.sign(first.valence) == np.sign(state.valence)
            for first, _, state in (second_turn(text, before, message)
                                    for before, _ in EMOTIONAL for message in CONTENT_FREE)]
    assert np.mean(kept) >= 0.95, f"{sum(kept)} of {len(kept)}"
    moved = [second_turn(text, before, message)[2].label == label
             for before, other in EMOTIONAL for message, label in EMOTIONAL if other != label]
    assert sum(moved) >= 34, f"{sum(moved)} of {len(moved)}"
