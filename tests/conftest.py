"""Shared fixtures: where the shipped models and the (optional) datasets are."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from emobot.paths import latest_rasa_model
from emobot.stack import Stack, free_port
from emotion_sensing.config import DEFAULT_DATASETS_DIR, DEFAULT_MODELS_DIR

DATASETS = Path(os.environ.get("EMOBOT_DATASETS", DEFAULT_DATASETS_DIR))

# Stacks in tests run one Rasa process unless a test asks for more: a second one loads the model
# again at every stack start, and most tests are about something else. Several processes behind
# emobot.front are tested where they matter: test_rasa_workers (REST and socket.io), test_run_command
# (`emobot run`'s default, its shutdown) and the face-and-voice stack below (rasa-webchat in a browser).
os.environ.setdefault("EMOBOT_RASA_WORKERS", "1")

SCRATCH = "EMOBOT_TEST_TMPDIR"


def pytest_configure(config):
    """The processes the tests start (Rasa, the servers, Chromium) keep their temporary files in
    one folder, removed when the run ends: a process a test kills on purpose cannot remove its own
    (a SIGKILLed Rasa leaves TensorFlow's ~40 ``__autograph_generated_file*.py`` in /tmp).
    Made by the first pytest process only; xdist's workers inherit it, and their own temporary
    files go there too."""
    if os.environ.get(SCRATCH):
        return
    tempfile.gettempdir()  # pytest's own folders (tmp_path) stay where they were, kept for a look
    scratch = tempfile.mkdtemp(prefix="emobot-")
    os.chmod(scratch, 0o1777)  # as /tmp: the tests' PostgreSQL server runs as the postgres user
    config._emobot_scratch = (scratch, os.environ.get("TMPDIR"))
    os.environ[SCRATCH] = os.environ["TMPDIR"] = scratch


def pytest_unconfigure(config):
    scratch, before = getattr(config, "_emobot_scratch", (None, None))
    if scratch is None:
        return
    del os.environ[SCRATCH]
    if before is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return DEFAULT_MODELS_DIR


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not (DATASETS / "dair_emotion").exists() or not (DATASETS / "goemotions").exists():
        pytest.skip(f"datasets not found at {DATASETS} (set EMOBOT_DATASETS); see README 'Datasets'")
    return DATASETS


@pytest.fixture(scope="session")
def fer_dir() -> Path:
    if not (DATASETS / "fer2013" / "fer2013.csv.gz").exists():
        pytest.skip(f"FER2013 not found at {DATASETS / 'fer2013'} (set EMOBOT_DATASETS); see README 'Datasets'")
    return DATASETS


@pytest.fixture(scope="session")
def face_model(models_dir) -> Path:
    """The shipped face model: part of the repository, so its absence is a failure."""
    path = models_dir / "face_emotion.tflite"
    assert path.exists(), f"shipped face model missing: {path} (emobot train face writes it)"
    return path


def copy_face_model(face_model: Path, folder: Path, **changes) -> Path:
    """The shipped face model copied into ``folder`` with its JSON (``changes`` applied; a change
    to None removes the key), the networks its JSON averages with it, and the int8 copies their
    JSONs name; returns the copy's path."""
    import json
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    meta = json.loads(face_model.with_suffix(".json").read_text())
    meta.update(changes)
    meta = {key: value for key, value in meta.items() if value is not None}
    shutil.copy(face_model, folder / face_model.name)
    (folder / face_model.with_suffix(".json").name).write_text(json.dumps(meta))
    sources = [(face_model, meta)]
    for member in meta.get("ensemble") or ():
        source = face_model.with_name(member["file"])
        for path in (source, source.with_suffix(".json")):
            if path.exists():
                shutil.copy(path, folder / path.name)
        if source.with_suffix(".json").exists():
            sources.append((source, json.loads(source.with_suffix(".json").read_text())))
    for source, network in sources:
        int8 = source.with_name((network.get("int8") or {}).get("file", "-"))
        if int8.exists():
            shutil.copy(int8, folder / int8.name)
    return folder / face_model.name


@pytest.fixture(scope="session")
def astronaut_bgr():
    """scikit-image's photo of a smiling astronaut (a real face), as OpenCV BGR."""
    import cv2
    from skimage.data import astronaut

    return cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def face_voice_stack(tmp_path_factory):
    """(stack, the test shop's origin): a stack sensing only face and voice, so that the emotion a
    reply is adapted to is what the camera saw, shared by the terminal chat's camera and microphone tests
    (emobot/test_chat_sources), the chat page's (integration/test_web_page) and the site script's
    (integration/test_sensing_script, whose shop page is served from that origin and allowed by
    the service). Two Rasa processes behind emobot.front: rasa-webchat long-polls,
    so its session must stay on one of them."""
    try:
        latest_rasa_model()
    except FileNotFoundError as error:
        pytest.fail(str(error))
    shop = f"http://127.0.0.1:{free_port()}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EMOBOT_MODALITIES", "face,voice")
        env.setenv("EMOBOT_ALLOWED_ORIGINS", shop)
        stack = Stack.on_free_ports(tmp_path_factory.mktemp("face-voice-stack"))
        stack.settings = replace(stack.settings, rasa_workers=2)
        stack.start(timeout=240)
    try:
        yield stack, shop
    finally:
        stack.stop()
