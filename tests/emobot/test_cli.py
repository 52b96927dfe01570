"""The emobot command as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def emobot(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "emobot", *args], capture_output=True, text=True, timeout=300, **kwargs)


def test_help_lists_the_commands():
    result = emobot("--help")
    assert result.returncode == 0
    for command in ("run", "chat", "replay", "sense", "train", "eval", "bench"):
        assert command in result.stdout


def test_every_command_argument_and_option_says_what_it_is_for():
    import argparse

    from emobot.cli import build_parser

    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    silent = [f"{name} {action.dest}" for name, command in commands.choices.items() for action in command._actions
              if not action.help and not isinstance(action, argparse._HelpAction)]
    assert silent == [], "arguments without a help text in `emobot COMMAND --help`"
    described = {name for name, command in commands.choices.items() if command.description}
    assert {"add-to", "serve"} <= described


def test_version_names_emobot_rasa_and_python():
    """One line for a bug report; emobot's number is the project's (pyproject.toml), not a stale copy."""
    import platform
    import re
    from importlib import metadata
    from pathlib import Path

    project = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = re.search(r'^version = "([^"]+)"', project.read_text(), re.M).group(1)
    result = emobot("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"emobot {declared} (Rasa {metadata.version('rasa')}, "
                                     f"Python {platform.python_version()})")


def test_sense_text_prints_the_emotion():
    result = emobot("sense", "text", "I", "am", "absolutely", "furious", "with", "you")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("angry")
    assert "VADER" in result.stdout
    as_json = json.loads(emobot("sense", "text", "--json", "what a lovely day").stdout)
    assert as_json["label"] == "happy" and as_json["modality"] == "text"


def test_sense_text_reads_each_line_as_its_own_message():
    result = emobot("sense", "text", "--lines", input="I am absolutely furious with you\n\nwhat a lovely day\n")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert len(rows) == 2 and rows[0].startswith("angry") and rows[0].endswith("I am absolutely furious with you")
    assert rows[1].startswith("happy")
    as_json = emobot("sense", "text", "--lines", "--json", input="what a lovely day\nI am absolutely furious with you\n")
    readings = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["text"], r["label"]) for r in readings] == [("what a lovely day", "happy"),
                                                           ("I am absolutely furious with you", "angry")]


def test_sense_text_without_text_is_a_clear_error():
    result = emobot("sense", "text", input="")
    assert result.returncode == 2
    assert "give some text" in result.stderr


def test_eval_text_on_a_manifest(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "text,label\nI am so angry right now,anger\nthis makes me so happy,joy\n"
        "I'm terrified of the dark,fear\nwhat a contemptuous remark,contempt\n"
    )
    result = emobot("eval", "text", "--manifest", str(manifest), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["datasets"][0]
    assert data["n"] == 3 and data["skipped"] == 1
    assert data["accuracy"] == 1.0
    assert set(data) >= {"accuracy", "macro_f1", "per_class", "confusion", "modality", "dataset"}


def test_eval_text_reads_another_corpus_s_csv_and_says_what_it_left_out(tmp_path):
    """A CSV laid out as MELD's (a spreadsheet's byte-order mark, columns Utterance and Emotion among
    others) is read by its header; rows whose label has no counterpart, or is a name emobot does not
    know, are counted by label and said, and a file with none it can use is an error, not a score."""
    manifest = tmp_path / "meld.csv"
    manifest.write_text(
        "\ufeffSr No.,Utterance,Speaker,Emotion,Sentiment\n"
        "1,I am so angry right now,Joey,anger,negative\n2,this makes me so happy,Ross,joy,positive\n"
        "3,I feel so ashamed of myself,Ross,shame,negative\n4,whatever you say,Joey,sarcasm,neutral\n",
        encoding="utf-8")
    result = emobot("eval", "text", "--manifest", str(manifest), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["datasets"][0]
    assert data["n"] == 2 and data["accuracy"] == 1.0 and data["skipped"] == 2
    assert data["skipped_labels"] == {"no_counterpart": {"shame": 1}, "unknown": {"sarcasm": 1}}
    shown = emobot("eval", "text", "--manifest", str(manifest))
    assert shown.returncode == 0 and "skipped 2 row(s)" in shown.stdout
    assert "shame (1)" in shown.stdout and "does not know: sarcasm (1)" in shown.stdout
    codes = tmp_path / "codes.csv"
    codes.write_text("text,label\nhello there,GREETING\nI am so ashamed,shame\n")
    refused = emobot("eval", "text", "--manifest", str(codes))
    assert refused.returncode == 2 and "no row to evaluate" in refused.stderr
    assert "GREETING (1)" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize("argv, flag, owner", [
    (["eval", "text", "--folders", "texts/"], "--folders", "face and speech"),
    (["eval", "speech", "--plot", "c.png"], "--plot", "face"),
    (["eval", "text", "--plot", "c.png"], "--plot", "face"),
    (["sense", "text", "--image", "a.png", "hello"], "--image", "face"),
    (["train", "face", "--prune", "15"], "--prune", "speech"),
])
def test_an_option_of_another_modality_is_refused_not_ignored(argv, flag, owner):
    """All modalities share one parser per command: an option the chosen one does not read used to be
    dropped without a word (`eval face --manifest` measured FER2013 instead)."""
    result = emobot(*argv)
    assert result.returncode == 2 and f"{flag} is for {owner}, not {argv[1]}" in result.stderr


@pytest.mark.parametrize("argv, said", [
    (["eval", "face", "--folders", "a/", "--manifest", "b.csv"], "--folders and --manifest each say what to measure"),
    (["eval", "face", "--manifest", "b.csv", "--cross"], "--manifest and --cross each say what to measure"),
    (["eval", "face", "--folders", "a/", "--fer-split", "PublicTest"], "--folders and --fer-split each say"),
    (["eval", "speech", "--manifest", "a.csv", "--folders", "b/"], "--manifest and --folders each say"),
    (["eval", "text", "--manifest", "m.csv", "--split", "val"], "not a --manifest's rows"),
])
def test_two_things_to_measure_at_once_are_refused(argv, said):
    result = emobot(*argv)
    assert result.returncode == 2 and said in result.stderr


def test_options_two_modalities_read_are_accepted_by_both():
    from emobot.cli import _foreign_option, build_parser

    parser = build_parser()
    for argv in (["eval", "fusion", "--cross"], ["eval", "face", "--cross"], ["train", "text", "--no-export"],
                 ["train", "face", "--no-export"], ["eval", "face", "--manifest", "m.csv"],
                 ["eval", "speech", "--folders", "clips/"]):
        args, _ = parser.parse_known_args(argv)
        assert _foreign_option(argv[0], argv[1], args) is None, argv


@pytest.mark.parametrize("modality, what", [("text", "dair-ai emotion test split"), ("speech", "RAVDESS labels.csv"),
                                             ("face", "FER2013"), ("fusion", "text test split")])
@pytest.mark.parametrize("folder", ["nowhere", "empty"])
def test_eval_with_missing_data_folder_explains(tmp_path, modality, what, folder):
    """A datasets folder that is not there, or holds nothing: what was looked for, where, and where
    to read how to get it; no traceback."""
    (tmp_path / "empty").mkdir()
    result = emobot("eval", modality, "--data", str(tmp_path / folder))
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"emobot eval {modality}: {what}" in result.stderr and " not found " in result.stderr
    assert str(tmp_path / folder) in result.stderr and "See README.md" in result.stderr and "--data" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("modality, what", [("text", "dair_emotion, goemotions, dailydialog"),
                                             ("speech", "RAVDESS labels.csv"), ("face", "FER2013"),
                                             ("fusion", "text validation split")])
def test_train_without_its_data_explains_and_leaves_the_models_alone(tmp_path, modality, what):
    from emotion_sensing.config import DEFAULT_MODELS_DIR

    shipped = {p: p.stat().st_mtime_ns for p in DEFAULT_MODELS_DIR.glob("*") if p.is_file()}
    (tmp_path / "empty").mkdir()
    result = emobot("train", modality, "--data", str(tmp_path / "empty"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"emobot train {modality}: {what}" in result.stderr and " not found " in result.stderr
    assert str(tmp_path / "empty") in result.stderr and "README.md" in result.stderr and "--data" in result.stderr
    assert "Traceback" not in result.stderr
    assert {p: p.stat().st_mtime_ns for p in DEFAULT_MODELS_DIR.glob("*") if p.is_file()} == shipped


def test_sense_face_without_a_source_says_what_to_give():
    result = emobot("sense", "face")
    assert result.returncode == 2
    assert "--image FILE, --video FILE, --camera N" in result.stderr


def test_sense_face_on_a_photo_and_on_wrong_files(tmp_path):
    """A real photo (scikit-image's astronaut, smiling) reads happy; a missing path and a file that
    is no image are each a one-line error, said before the models load."""
    import cv2
    from skimage.data import astronaut

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    result = emobot("sense", "face", "--image", str(photo), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["faces"][0]["label"] == "happy"
    assert "cuda" not in result.stderr.lower()  # TensorFlow's start-up chatter is quiet
    missing = emobot("sense", "face", "--image", str(tmp_path / "nowhere.png"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    noise = tmp_path / "noise.png"
    noise.write_bytes(os.urandom(2000))
    corrupt = emobot("sense", "face", "--image", str(noise))
    assert corrupt.returncode == 2 and "cannot read an image" in corrupt.stderr
    assert "Traceback" not in missing.stderr + corrupt.stderr


def test_sense_face_reads_a_video_frame_by_frame(tmp_path):
    """A short clip of the astronaut (smiling): every frame has a face, read happy, timed by the
    clip's frame rate."""
    import cv2
    from skimage.data import astronaut

    frame = cv2.resize(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR), (640, 480))
    clip = tmp_path / "astronaut.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for _ in range(5):
        writer.write(frame)
    writer.release()
    result = emobot("sense", "face", "--video", str(clip), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    frames = json.loads(result.stdout)["frames"]
    assert [row["t"] for row in frames] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert all(row["faces"] and row["faces"][0]["label"] == "happy" for row in frames), frames


def test_sense_face_on_a_wrong_video_or_camera_says_so_before_the_models_load(tmp_path):
    """A missing video, a file that is no video and a camera that is not there are each one line
    (exit 2) said before TensorFlow Lite loads a network (it announces its XNNPACK delegate)."""
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(os.urandom(4000))
    cases = {("--video", str(tmp_path / "nowhere.mp4")): "no such file",
             ("--video", str(noise)): "cannot open a video from",
             ("--camera", "9"): "camera 9 (no camera on this machine?)"}
    for arguments, said in cases.items():
        result = emobot("sense", "face", *arguments)
        assert result.returncode == 2 and said in result.stderr, (arguments, result.stderr[-2000:])
        assert "XNNPACK" not in result.stderr and "Traceback" not in result.stderr, (arguments, result.stderr[-2000:])


@pytest.mark.parametrize("setting, expected", [(None, 19), ("5", 5), ("lots", 19)])
def test_training_runs_at_the_lowest_cpu_priority(setting, expected):
    """`emobot train` is batch work: a stack running beside it (whose sensing worker is niced
    itself) keeps the CPU. The command's own work is replaced by printing its niceness."""
    script = ("import os, sys; from emobot import cli; cli._dispatch = lambda command, args: print(os.nice(0)) or 0; "
              "sys.exit(cli.main(['train', 'face']))")
    env = {k: v for k, v in os.environ.items() if k != "EMOBOT_TRAIN_NICE"}
    if setting is not None:
        env["EMOBOT_TRAIN_NICE"] = setting
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) == max(expected, os.nice(0))  # never less nice than it was started
    assert ("is not a niceness" in result.stderr) == (setting == "lots")


def test_a_teacher_is_refused_where_nothing_distils():
    result = emobot("train", "speech", "--teacher", "some.npz")
    assert result.returncode == 2 and "--teacher is for text and face" in result.stderr
