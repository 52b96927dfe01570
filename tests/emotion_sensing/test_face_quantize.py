"""The int8 copies of the face networks: what the runtime runs, how they are made, and that they
read faces as the float32 networks do."""
from __future__ import annotations

import json
import logging
import shutil

import cv2
import numpy as np
import pytest

from emotion_sensing.face.detect import to_gray
from emotion_sensing.face.quantize import NotQuantizable, calibration_faces, int8_file, keras_from_tflite, quantize
from emotion_sensing.face.recognizer import FaceClassifier, FaceRecognizer
from tests.conftest import copy_face_model


def _faces(photo, classifier):
    """The astronaut as a camera sees her: moved, turned, darker, brighter, blurred; each prepared
    as every network of ``classifier`` takes it."""
    recognizer = FaceRecognizer(classifier.path)
    faces = []
    for angle, gamma, blur in ((0, 1.0, 0), (12, 1.0, 0), (-12, 1.0, 0), (0, 0.6, 0), (0, 1.6, 0), (0, 1.0, 5),
                               (6, 0.8, 3), (-6, 1.3, 0)):
        matrix = cv2.getRotationMatrix2D((256, 150), angle, 1.0)
        image = cv2.warpAffine(photo, matrix, (512, 512), borderMode=cv2.BORDER_REPLICATE)
        image = np.clip(255.0 * (image / 255.0) ** gamma, 0, 255).astype(np.uint8)
        if blur:
            image = cv2.GaussianBlur(image, (blur, blur), 0)
        gray = to_gray(image)
        box = recognizer.detector.detect(gray)[0]
        faces.append(classifier.prepare(gray, box))
    return faces


def test_the_shipped_networks_run_their_int8_copies_and_read_faces_as_float32_does(face_model, astronaut_bgr):
    """Every network of the shipped model runs int8 by default, and on the same faces it gives the
    float32 networks' label with probabilities within a few points."""
    int8, float32 = FaceClassifier(face_model), FaceClassifier(face_model, precision="float32")
    assert [n.precision for n, _ in int8.networks] == ["int8"] * len(int8.networks)
    assert all(n.runs.name.endswith(".int8.tflite") and n.runs.stat().st_size < n.path.stat().st_size / 3
               for n, _ in int8.networks)
    assert [n.precision for n, _ in float32.networks] == ["float32"] * len(float32.networks)
    assert [d["precision"] for d in int8.describe_networks()] == ["int8"] * len(int8.networks)
    for face in _faces(astronaut_bgr, int8):
        a, b = int8.classify(face), float32.classify(face)
        assert a.argmax() == b.argmax() == 3, (a, b)  # happy
        assert np.abs(a - b).max() < 0.05, (a, b)


def test_the_precision_comes_from_the_environment_and_a_bad_one_is_refused(face_model, monkeypatch):
    monkeypatch.setenv("EMOBOT_FACE_PRECISION", "float32")
    assert {n.precision for n, _ in FaceClassifier(face_model).networks} == {"float32"}
    assert FaceClassifier(face_model, precision="int8").precision == "int8"
    monkeypatch.setenv("EMOBOT_FACE_PRECISION", "fp16")
    with pytest.raises(ValueError, match="int8 or float32"):
        FaceClassifier(face_model)


def test_a_missing_int8_file_runs_the_float32_network_with_a_warning(face_model, tmp_path, caplog):
    model = copy_face_model(face_model, tmp_path, ensemble=None)
    int8_file(model).unlink()
    with caplog.at_level(logging.WARNING):
        classifier = FaceClassifier(model)
    assert classifier.precision == "float32" and classifier.runs == model
    assert "int8 face network face_emotion.int8.tflite" in caplog.text and "missing" in caplog.text
    # a model whose JSON names no int8 copy (a fresh `emobot train face` export) runs float32, silently
    model.with_suffix(".json").write_text(json.dumps({k: v for k, v in json.loads(
        model.with_suffix(".json").read_text()).items() if k != "int8"}))
    caplog.clear()
    assert FaceClassifier(model).precision == "float32" and "missing" not in caplog.text


def test_quantizing_a_float_network_writes_a_small_copy_that_agrees_with_it(face_model, tmp_path, astronaut_bgr):
    """`quantize` on the float32 file, calibrated on a few faces: the rebuilt graph matches the
    file, the copy is a quarter of its size and gives the same readings."""
    model = copy_face_model(face_model, tmp_path, ensemble=None, int8=None, temperature=None)
    float32 = FaceClassifier(model)
    assert float32.precision == "float32"
    faces = _faces(astronaut_bgr, float32)
    rebuilt = keras_from_tflite(model)  # checked against the file inside; batch norm is folded into the convolutions
    assert [layer.__class__.__name__ for layer in rebuilt.layers].count("Conv2D") == 8
    noise = np.random.default_rng(1).uniform(0, 255, (40, 48, 48)).astype(np.float32)
    out = quantize(model, np.concatenate([np.stack(faces), noise]))
    assert out == tmp_path / "face_emotion.int8.tflite" and out.stat().st_size < model.stat().st_size / 3
    meta = json.loads(model.with_suffix(".json").read_text())
    model.with_suffix(".json").write_text(json.dumps({**meta, "int8": {"file": out.name}}))
    int8 = FaceClassifier(model)
    assert int8.precision == "int8"
    for face in faces:
        assert int8.classify(face).argmax() == float32.classify(face).argmax()
        assert np.abs(int8.classify(face) - float32.classify(face)).max() < 0.08
    with pytest.raises(ValueError, match="non-empty"):
        quantize(model, np.zeros((0, 48, 48)))


def test_a_graph_the_rebuild_does_not_know_is_refused_with_its_operation(tmp_path):
    import tensorflow as tf

    from emotion_sensing.face.export import to_tflite

    inputs = tf.keras.Input((48, 48, 1))
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Softmax()(tf.keras.layers.Dense(7)(x))
    path = to_tflite(tf.keras.Model(inputs, outputs), tmp_path / "other.tflite", {})
    with pytest.raises(NotQuantizable, match="DEPTHWISE_CONV_2D"):
        keras_from_tflite(path)


def test_eval_quantize_without_fer2013_says_what_it_needs(face_model, tmp_path, capsys):
    from emobot.cli import main as emobot

    model = copy_face_model(face_model, tmp_path / "models")
    before = model.with_suffix(".json").read_text()
    code = emobot(["eval", "face", "--quantize", "--model", str(model), "--data", str(tmp_path / "nothing")])
    assert code == 2
    assert "--quantize needs FER2013's Training split" in capsys.readouterr().err
    assert model.with_suffix(".json").read_text() == before
    assert emobot(["eval", "face", "--quantize", "--calibration-faces", "0", "--model", str(model)]) == 2


def test_calibration_faces_come_from_the_training_rows(fer_dir):
    from emotion_sensing.face import fer2013

    faces = calibration_faces(fer_dir, aligned=False, n=60)
    assert faces.shape == (60, 48, 48) and faces.dtype == np.uint8
    splits = fer2013.load(fer2013.find_csv(fer_dir))
    tests = {image.tobytes() for name in ("PublicTest", "PrivateTest") for image in splits[name].images}
    assert not any(face.tobytes() in tests for face in faces), "calibration never sees a test face"
    assert np.array_equal(faces, calibration_faces(fer_dir, aligned=False, n=60)), "the same faces every time"


def test_int8_and_float32_agree_on_fer2013_test_faces(face_model, fer_dir):
    """On 400 PrivateTest faces the shipped int8 networks give the float32 networks' label for
    at least 97% of them (the accuracy of each: the card's int8 table)."""
    from emotion_sensing.face import fer2013

    private = fer2013.load(fer2013.find_csv(fer_dir))["PrivateTest"]
    int8, float32 = FaceClassifier(face_model), FaceClassifier(face_model, precision="float32")
    same = [int8.classify(int8.prepare_crop(image, image)).argmax()
            == float32.classify(float32.prepare_crop(image, image)).argmax() for image in private.images[:400]]
    assert np.mean(same) >= 0.97


def test_a_copy_without_its_int8_files_still_loads(face_model, tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    for path in face_model.parent.glob("face_emotion*"):
        if path.suffix in (".tflite", ".json") and ".int8." not in path.name:
            shutil.copy(path, folder / path.name)
    classifier = FaceClassifier(folder / face_model.name)
    assert {n.precision for n, _ in classifier.networks} == {"float32"}


def test_the_fusion_pools_notice_any_change_to_the_face_networks(face_model, tmp_path, monkeypatch):
    """The fusion benchmark caches the face readings; their key covers the JSON (temperature,
    ensemble, int8 copy), every network's files and the environment's switches, not the main
    .tflite alone."""
    from emotion_sensing.fusion_bench import _fingerprint, face_model_files, face_switches

    model = copy_face_model(face_model, tmp_path)
    names = {f.name for f in face_model_files(tmp_path)}
    assert {"face_emotion.tflite", "face_emotion.json", "face_emotion.int8.tflite", "face_emotion.fer.tflite",
            "face_emotion.fer.json", "face_emotion.fer.int8.tflite"} <= names
    before = _fingerprint(*face_model_files(tmp_path))
    meta = json.loads(model.with_suffix(".json").read_text())
    model.with_suffix(".json").write_text(json.dumps({**meta, "temperature": 0.5}, indent=1))
    assert _fingerprint(*face_model_files(tmp_path)) != before
    switches = face_switches()
    monkeypatch.setenv("EMOBOT_FACE_PRECISION", "float32")
    assert face_switches() != switches
