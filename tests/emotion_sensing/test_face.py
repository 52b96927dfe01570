"""Face detection, the networks, and the shipped model on real and broken images."""
from __future__ import annotations

import gzip
import json

import cv2
import numpy as np
import pytest

from emotion_sensing.face.detect import Box, FaceDetector, FaceTracker, primary, to_gray
from emotion_sensing.face.recognizer import FaceRecognizer, ImageError, decode_image, draw


@pytest.fixture(scope="module")
def recognizer(face_model):
    return FaceRecognizer(face_model)


def _frame_with(photo, width=640, height=480, x=64):
    frame = np.full((height, width, 3), 90, np.uint8)
    frame[:, x:x + height] = cv2.resize(photo, (height, height))
    return frame


def test_detector_finds_the_astronaut_and_nothing_in_a_blank_frame(astronaut_bgr):
    detector = FaceDetector()
    faces = detector.detect(to_gray(_frame_with(astronaut_bgr)))
    assert len(faces) == 1
    face = faces[0]
    # The face is in the upper middle of the photo (placed at x 64..544).
    assert 200 < face.x + face.w / 2 < 380 and face.y < 200 and face.w > 50
    assert detector.detect(np.full((480, 640), 128, np.uint8)) == []


def test_primary_face_is_the_large_central_one():
    small_corner = Box(0, 0, 40, 40)
    large_centre = Box(280, 200, 100, 100)
    large_edge = Box(530, 0, 110, 110)
    assert primary([small_corner, large_edge, large_centre], 640, 480) == large_centre
    assert primary([], 640, 480) is None


def test_tracker_follows_a_moving_face_without_rescanning_every_frame(astronaut_bgr):
    tracker = FaceTracker(rescan_every=30)
    centres = []
    for i in range(20):
        boxes = tracker.update(to_gray(_frame_with(astronaut_bgr, x=40 + 4 * i)))
        assert len(boxes) == 1
        centres.append(boxes[0].x + boxes[0].w / 2)
    assert tracker.full_scans == 1
    assert centres[-1] - centres[0] > 50  # it moved with the face (76 px)


def test_the_astronaut_is_happy(recognizer, astronaut_bgr):
    analysis = recognizer.analyse(astronaut_bgr)
    assert len(analysis.faces) == 1
    assert analysis.primary.label == "happy"
    reading = analysis.reading()
    assert reading.modality == "face" and reading.label == "happy" and reading.valence > 0


def test_no_face_gives_no_reading_not_an_error(recognizer):
    analysis = recognizer.analyse(np.full((480, 640, 3), 200, np.uint8))
    assert analysis.faces == [] and analysis.primary is None and analysis.reading() is None


@pytest.mark.parametrize("convert", [
    lambda img: cv2.cvtColor(img, cv2.COLOR_BGR2GRAY),
    lambda img: cv2.cvtColor(img, cv2.COLOR_BGR2BGRA),
    lambda img: cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None],
    lambda img: img.astype(np.float32) / 255.0,
], ids=["gray", "bgra", "gray-3d", "float"])
def test_grayscale_rgba_and_float_images_give_the_same_answer(recognizer, astronaut_bgr, convert):
    assert recognizer.analyse(convert(astronaut_bgr)).primary.label == "happy"


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"not an image at all", "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "not a readable image"),
])
def test_bad_image_bytes_are_refused_with_a_reason(data, reason):
    with pytest.raises(ImageError, match=reason):
        decode_image(data)


def test_truncated_jpeg_is_refused_or_read_without_crashing(recognizer, astronaut_bgr):
    jpeg = cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()
    try:
        image = decode_image(jpeg[: len(jpeg) // 3])
    except ImageError:
        return
    recognizer.analyse(image)  # libjpeg fills the missing part grey: still a valid frame


def test_huge_image_is_refused(astronaut_bgr):
    png = cv2.imencode(".png", np.zeros((3000, 3000), np.uint8))[1].tobytes()
    with pytest.raises(ImageError, match="larger than the limit"):
        decode_image(png, max_pixels=2000 * 2000)


def test_draw_marks_the_face(recognizer, astronaut_bgr):
    analysis = recognizer.analyse(astronaut_bgr)
    out = draw(astronaut_bgr, analysis)
    assert out.shape == astronaut_bgr.shape and not np.array_equal(out, astronaut_bgr)


def test_shipped_model_metadata_matches_the_network(recognizer, face_model):
    meta = json.loads(face_model.with_suffix(".json").read_text())
    assert meta["input_size"] == recognizer.classifier.input_size
    assert meta["labels"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert (face_model.parent / "face_emotion.md").exists()


# --- the networks -------------------------------------------------------------------------

def test_architectures_have_the_published_shapes():
    from emotion_sensing.face.architectures import build

    ms = build("ms_model_M", 112)
    assert ms.get_layer("M3_add").output_shape == (None, 28, 28, 24)
    assert ms.get_layer("M10_add").output_shape == (None, 7, 7, 64)
    assert ms.get_layer("fusion").output_shape == (None, 168)
    assert ms.output_shape == (None, 7)
    assert 170_000 < ms.count_params() < 200_000
    relu = build("ms_model_R", 48)
    assert relu.count_params() == ms.count_params()  # same network, other activation
    mini = build("mini_xception", 64)
    assert 50_000 < mini.count_params() < 70_000
    vgg = build("vgg8", 48)
    assert vgg.get_layer("s4_pool").output_shape == (None, 3, 3, 256) and vgg.output_shape == (None, 7)
    assert 1_100_000 < vgg.count_params() < 1_250_000
    with pytest.raises(ValueError, match="unknown architecture"):
        build("resnet", 64)


def test_mish_is_exact():
    import tensorflow as tf

    from emotion_sensing.face.architectures import mish

    x = tf.constant(np.linspace(-40, 40, 4001, dtype=np.float32))
    reference = x * tf.tanh(tf.nn.softplus(x))
    assert float(tf.reduce_max(tf.abs(mish(x) - reference))) < 1e-5


def test_tflite_export_gives_the_keras_answers(tmp_path):
    import tensorflow as tf

    from emotion_sensing.face.architectures import build
    from emotion_sensing.face.export import to_tflite
    from emotion_sensing.face.recognizer import FaceClassifier

    model = build("ms_model_M", 48)
    path = to_tflite(model, tmp_path / "face_emotion.tflite", {"architecture": "ms_model_M", "flip_average": False})
    classifier = FaceClassifier(path)
    face = np.random.default_rng(0).integers(0, 255, (48, 48)).astype(np.float32)
    expected = model(tf.constant(face[None, :, :, None]), training=False).numpy()[0]
    np.testing.assert_allclose(classifier.classify(face), expected, atol=1e-5)


# --- FER2013 loading -----------------------------------------------------------------------

def test_fer2013_loader_and_cleaning(tmp_path, monkeypatch):
    from emotion_sensing.face import fer2013

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, 2304) for _ in range(5)]
    rows = [(3, images[0], "Training"), (4, images[1], "Training"), (4, images[1], "Training"),
            (0, images[2], "Training"), (1, images[2], "Training"), (5, images[3], "Training"),
            (5, images[3], "PrivateTest"), (6, images[4], "PublicTest"), (6, np.full(2304, 7), "Training")]
    path = tmp_path / "fer2013.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("emotion,pixels,Usage\n")
        for label, pixels, usage in rows:
            handle.write(f"{label},{' '.join(map(str, pixels))},{usage}\n")
    splits = fer2013.load(tmp_path)
    assert [len(splits[s]) for s in fer2013.SPLITS] == [7, 1, 1]
    assert splits["Training"].images.shape == (7, 48, 48)
    train, dropped = fer2013.clean_training(splits)
    assert dropped == {"leaked": 1, "blank": 1, "conflicting": 2, "duplicate": 1}
    assert sorted(train.labels.tolist()) == [3, 4]
    assert fer2013.load(tmp_path)["Training"].labels.tolist() == splits["Training"].labels.tolist()  # from cache


def test_fer2013_with_wrong_columns_is_refused(tmp_path, monkeypatch):
    from emotion_sensing.face import fer2013

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "fer2013.csv").write_text("label,image\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        fer2013.load(tmp_path / "fer2013.csv")
    with pytest.raises(FileNotFoundError):
        fer2013.load(tmp_path / "nowhere")


def test_eval_folders_reads_other_datasets_folder_names(recognizer, astronaut_bgr, tmp_path):
    """Class folders named as other corpora name them (Happiness, TESS-like "Pleasant_surprise") are
    read; a class with no counterpart (contempt) and a folder nobody knows are counted, not guessed."""
    from emotion_sensing.face.evaluate import eval_folders

    for folder in ("Happiness", "Pleasant_surprise", "contempt", "misc"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "a.png"), astronaut_bgr)
    result = eval_folders(recognizer, tmp_path)
    assert result["n"] == 2 and result["per_class"]["happy"]["support"] == 1
    assert result["per_class"]["surprise"]["support"] == 1
    assert result["skipped_classes"] == {"contempt": 1, "misc": 1} and result["unknown_folders"] == ["misc"]


def test_eval_manifest_reads_a_list_of_photos(recognizer, astronaut_bgr, tmp_path, capsys):
    """`emobot eval face --manifest` on a CSV of photos (JAFFE-like codes, a header naming image and
    emotion among other columns, paths relative to the CSV): the photos are read as class folders'
    are, and what was left out (a missing file, a label with no counterpart, an unknown one) is said."""
    from emobot.cli import main

    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.png"), astronaut_bgr)
    manifest = tmp_path / "list.csv"
    manifest.write_text("subject,image,emotion\nKA,photos/a.png,HA\nKA,photos/a.png,AN\nKA,photos/gone.png,happy\n"
                        "KA,photos/a.png,contempt\nKA,photos/a.png,smirk\n")
    assert main(["eval", "face", "--manifest", str(manifest), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2 and result["per_class"]["happy"]["recall"] == 1.0
    assert result["skipped"] == 3 and result["n_missing_files"] == 1
    assert result["skipped_labels"] == {"no_counterpart": {"contempt": 1}, "unknown": {"smirk": 1}}
    assert main(["eval", "face", "--manifest", str(manifest)]) == 0
    shown = capsys.readouterr().out
    assert "missing files: 1" in shown and "contempt (1)" in shown and "does not know: smirk (1)" in shown
    manifest.write_text("image,emotion\nphotos/a.png,smirk\n")
    assert main(["eval", "face", "--manifest", str(manifest)]) == 2
    assert "no photo to evaluate" in capsys.readouterr().err
