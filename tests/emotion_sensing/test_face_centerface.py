"""CenterFace detection with landmarks, aligned crops, the in-the-wild split and the face bench."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from emotion_sensing.face import wild
from emotion_sensing.face.align import TEMPLATE_48, aligned_face, eye_angle, similarity
from emotion_sensing.face.centerface import CenterFaceDetector
from emotion_sensing.face.detect import FaceDetector, FaceTracker, to_gray
from emotion_sensing.face.recognizer import FaceClassifier, FaceRecognizer, make_detector
from tests.conftest import copy_face_model


@pytest.fixture(scope="module")
def centerface():
    return CenterFaceDetector()


def _frame_with(photo, width=640, height=480, x=64, angle=0.0):
    placed = cv2.resize(photo, (height, height))
    if angle:
        matrix = cv2.getRotationMatrix2D((height * 0.45, height * 0.25), angle, 1.0)
        placed = cv2.warpAffine(placed, matrix, (height, height), borderMode=cv2.BORDER_REPLICATE)
    frame = np.full((height, width, 3), 90, np.uint8)
    frame[:, x:x + height] = placed
    return frame


def test_centerface_finds_the_astronaut_with_landmarks_where_a_face_has_them(centerface, astronaut_bgr):
    faces = centerface.detect(_frame_with(astronaut_bgr))
    assert len(faces) == 1
    face = faces[0]
    assert 200 < face.x + face.w / 2 < 380 and face.y < 200 and face.w > 50
    assert face.score > 0.5
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    assert lx < nx < rx, "the nose lies between the eyes"
    assert max(ly, ry) < ny < min(mly, mry), "eyes above the nose above the mouth"
    assert mlx < mrx
    for x, y in face.landmarks:
        assert face.x <= x <= face.x + face.w and face.y <= y <= face.y + face.h
    assert face.to_dict()["landmarks"][0] == [round(lx, 1), round(ly, 1)]


def test_centerface_finds_nothing_in_a_blank_frame_and_takes_gray_and_bgra(centerface, astronaut_bgr):
    assert centerface.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    frame = _frame_with(astronaut_bgr)
    assert len(centerface.detect(to_gray(frame))) == 1
    assert len(centerface.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))) == 1


@pytest.mark.parametrize("angle", [-20.0, 20.0])
def test_a_tilted_head_is_found_and_its_tilt_measured(centerface, astronaut_bgr, angle):
    faces = centerface.detect(_frame_with(astronaut_bgr, angle=angle))
    assert len(faces) == 1
    upright = eye_angle(centerface.detect(_frame_with(astronaut_bgr))[0].landmarks)
    # OpenCV's positive angle turns the picture anticlockwise: the eye line's angle drops by it.
    # (CenterFace's landmarks lag a strong tilt somewhat: 20 degrees measures about 13.)
    turned = eye_angle(faces[0].landmarks) - upright
    assert np.sign(turned) == -np.sign(angle) and 0.5 * abs(angle) < abs(turned) < 1.5 * abs(angle)


def test_alignment_undoes_the_tilt(centerface, astronaut_bgr):
    """The same face upright and tilted 20 degrees gives nearly the same aligned crop; the
    plain box crops of the two differ far more."""
    upright_frame, tilted_frame = (to_gray(_frame_with(astronaut_bgr, angle=a)) for a in (0.0, 20.0))
    upright, tilted = (centerface.detect(f)[0] for f in (upright_frame, tilted_frame))
    a, b = aligned_face(upright_frame, upright.landmarks), aligned_face(tilted_frame, tilted.landmarks)
    assert a.shape == b.shape == (48, 48) and a.dtype == np.uint8

    def crop(gray, box):
        return cv2.resize(gray[box.y:box.y + box.h, box.x:box.x + box.w], (48, 48), interpolation=cv2.INTER_AREA)

    def correlation(x, y):
        return float(np.corrcoef(x.ravel().astype(float), y.ravel().astype(float))[0, 1])

    aligned, boxed = correlation(a, b), correlation(crop(upright_frame, upright), crop(tilted_frame, tilted))
    print(f"aligned {aligned:.3f}, box crops {boxed:.3f}")
    assert aligned > 0.8 and aligned > boxed + 0.1


def test_similarity_recovers_a_known_rotation_scale_and_shift():
    angle, scale, shift = np.radians(12.0), 3.5, np.array([100.0, 40.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = TEMPLATE_48 @ rotation.T + shift  # the template placed in a frame
    matrix = similarity(points)
    back = points @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(back, TEMPLATE_48, atol=1e-6)
    with pytest.raises(ValueError):
        similarity([(5.0, 5.0)] * 5)


def test_the_tracker_follows_a_face_with_centerface_and_keeps_its_landmarks(centerface, astronaut_bgr):
    tracker = FaceTracker(centerface, rescan_every=30)
    centres = []
    for i in range(20):
        boxes = tracker.update(to_gray(_frame_with(astronaut_bgr, x=40 + 4 * i, angle=(i - 10) * 1.5)))
        assert len(boxes) == 1 and boxes[0].landmarks is not None
        centres.append(boxes[0].x + boxes[0].w / 2)
    assert tracker.full_scans == 1
    assert centres[-1] - centres[0] > 50


def test_the_detector_is_chosen_by_name_and_falls_back_to_haar_without_weights(monkeypatch, tmp_path, caplog):
    assert isinstance(make_detector("haar"), FaceDetector)
    assert isinstance(make_detector("centerface"), CenterFaceDetector)
    monkeypatch.setenv("EMOBOT_FACE_DETECTOR", "haar")
    assert isinstance(make_detector(), FaceDetector)
    monkeypatch.setenv("EMOBOT_FACE_DETECTOR", "centerface")
    monkeypatch.setenv("EMOBOT_CENTERFACE", str(tmp_path / "missing.onnx"))
    with caplog.at_level("WARNING"):
        assert isinstance(make_detector(), FaceDetector)
    assert "Haar" in caplog.text and "missing.onnx" in caplog.text
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("mtcnn")


def test_an_aligned_model_gets_aligned_faces_and_a_box_without_landmarks_still_works(face_model, tmp_path,
                                                                                     centerface, astronaut_bgr):
    for name, alignment in (("aligned", "landmarks"), ("boxed", None)):
        copy_face_model(face_model, tmp_path / name, alignment=alignment, ensemble=None)
    classifier = FaceClassifier(tmp_path / "aligned" / face_model.name)
    assert classifier.aligned and not FaceClassifier(tmp_path / "boxed" / face_model.name).aligned
    gray = to_gray(_frame_with(astronaut_bgr, angle=15.0))
    box = centerface.detect(gray)[0]
    assert np.array_equal(classifier.prepare(gray, box), aligned_face(gray, box.landmarks).astype(np.float32))
    haar_box = FaceDetector().detect(to_gray(_frame_with(astronaut_bgr)))[0]
    assert classifier.prepare(to_gray(_frame_with(astronaut_bgr)), haar_box).shape == (48, 48)


def test_the_recognizer_reads_the_astronaut_through_centerface(face_model, astronaut_bgr):
    recognizer = FaceRecognizer(face_model, detector=CenterFaceDetector())
    analysis = recognizer.analyse(_frame_with(astronaut_bgr))
    assert analysis.primary is not None and analysis.primary.label == "happy"
    assert "landmarks" in analysis.to_dict()["faces"][0]["box"]
    assert recognizer.analyse(np.full((480, 640, 3), 200, np.uint8)).reading() is None


def test_the_in_the_wild_split_is_by_person(tmp_path):
    assert wild.person_of("Abdoulaye_Wade_0002.jpg") == "Abdoulaye_Wade"
    assert wild.person_of("Dwarakish_101.jpg") == "Dwarakish"
    for label, names in {"happiness": ["Ann_Lee_0001", "Ann_Lee_0002", "Bo_Ek_0001"],
                         "neutral": [f"P{i}_0001" for i in range(40)] + ["Ann_Lee_0003"], "contempt": ["X_0001"]}.items():
        (tmp_path / label).mkdir()
        for name in names:
            cv2.imwrite(str(tmp_path / label / f"{name}.jpg"), np.zeros((8, 8), np.uint8))
    parts = wild.split(tmp_path)
    train_people = {p.person for p in parts["train"]}
    val_people = {p.person for p in parts["validation"]}
    assert train_people and val_people and not train_people & val_people
    assert len(parts["train"]) + len(parts["validation"]) == 44  # contempt has no label here
    assert {p.label for p in parts["train"] + parts["validation"]} == {"happy", "neutral"}
    assert wild.split(tmp_path) == parts, "the same split every time"
    assert wild.padded(np.zeros((128, 128), np.uint8)).shape == (192, 192)


def test_the_face_bench_reports_both_detectors_and_tracked_speed(face_model):
    from emotion_sensing.face.bench import bench_face

    result = bench_face(FaceRecognizer(face_model, detector=CenterFaceDetector()), frames=30)
    assert result["detector"] == "centerface"
    assert set(result["detect_full_frame_ms_p50"]) == {"centerface", "haar"}
    assert result["detection_rate_on_the_clip"]["centerface"] == 1.0
    assert result["frames_with_face"] == 30 and result["end_to_end_fps"] > 0
    assert result["tracked"]["full_scans"] < 30
    networks = FaceRecognizer(face_model).classifier.members
    assert len(result["networks"]) == 1 + len(networks)
    assert ("classify_ms_per_face_p50_first_network_alone" in result) == bool(networks)


def test_a_face_crop_is_aligned_for_an_aligned_model_and_noise_is_read_as_given(face_model, tmp_path, astronaut_bgr):
    """`analyse(cropped=True)` (FER2013-style crops: evaluation, the fusion bench) aligns the crop
    as the model's training crops were; a crop with no face found is classified as it is."""
    recognizer = FaceRecognizer(copy_face_model(face_model, tmp_path, alignment="landmarks"), detector=CenterFaceDetector())
    crop = cv2.resize(to_gray(astronaut_bgr)[20:230, 130:320], (48, 48), interpolation=cv2.INTER_AREA)
    analysis = recognizer.analyse(crop, cropped=True)
    assert analysis.primary.box.landmarks is not None and analysis.primary.label == "happy"
    noise = np.random.default_rng(0).integers(0, 255, (48, 48)).astype(np.uint8)
    analysis = recognizer.analyse(noise, cropped=True)
    assert analysis.primary is not None and analysis.primary.box.landmarks is None


def test_an_ensemble_averages_its_networks_each_given_the_face_as_it_was_trained(face_model, tmp_path, centerface,
                                                                                 astronaut_bgr, monkeypatch):
    """A JSON naming another network under "ensemble": the face is warped by its landmarks for the
    aligned network and cut by its box for the other, and the reading is their weighted average
    (then the temperature), the same as the two networks read separately."""
    folder = tmp_path / "ensemble"
    primary = copy_face_model(face_model, folder, alignment="landmarks", ensemble=None, temperature=None)
    member = copy_face_model(face_model, tmp_path / "member", alignment=None, ensemble=None, temperature=None)
    member = member.rename(folder / "member.tflite")
    (tmp_path / "member" / face_model.with_suffix(".json").name).rename(folder / "member.json")
    alone, other = FaceClassifier(primary), FaceClassifier(member)
    meta = json.loads(primary.with_suffix(".json").read_text())
    primary.with_suffix(".json").write_text(json.dumps({**meta, "ensemble": [{"file": "member.tflite", "weight": 0.25}],
                                                        "temperature": 0.8}))
    ensemble = FaceClassifier(primary)
    assert [m.path.name for m, _ in ensemble.members] == ["member.tflite"] and ensemble.weight == 0.75
    gray = to_gray(_frame_with(astronaut_bgr, angle=15.0))
    box = centerface.detect(gray)[0]
    faces = ensemble.prepare(gray, box)
    assert isinstance(faces, tuple) and len(faces) == 2
    assert np.array_equal(faces[0], alone.prepare(gray, box)) and np.array_equal(faces[1], other.prepare(gray, box))
    assert not np.array_equal(faces[0], faces[1]), "the member takes the box crop, not the aligned face"
    expected = 0.75 * alone.classify(faces[0], calibrated=False) + 0.25 * other.classify(faces[1], calibrated=False)
    np.testing.assert_allclose(ensemble.classify(faces, calibrated=False), expected, atol=1e-6)
    calibrated = ensemble.classify(faces)
    assert calibrated.argmax() == expected.argmax() and calibrated.max() > expected.max(), "T < 1 sharpens"
    assert FaceClassifier(primary, ensemble=False).members == []
    monkeypatch.setenv("EMOBOT_FACE_ENSEMBLE", "off")
    assert FaceClassifier(primary).members == [] and FaceClassifier(primary, ensemble=True).members
    monkeypatch.delenv("EMOBOT_FACE_ENSEMBLE")
    assert FaceRecognizer(primary, detector=centerface).analyse(_frame_with(astronaut_bgr)).primary.label == "happy"
    primary.with_suffix(".json").write_text(json.dumps({**meta, "ensemble": [{"file": "member.tflite", "weight": 1.0}]}))
    with pytest.raises(ValueError, match="weights"):
        FaceClassifier(primary)
    # A member missing from the install: a warning, and the faces are read by the network that is there.
    primary.with_suffix(".json").write_text(json.dumps({**meta, "ensemble": [{"file": "gone.tflite", "weight": 0.25}]}))
    partial = FaceClassifier(primary)
    assert partial.members == [] and partial.weight == 1.0
    np.testing.assert_allclose(partial.classify(partial.prepare(gray, box), calibrated=False),
                               alone.classify(faces[0], calibrated=False), atol=1e-6)
