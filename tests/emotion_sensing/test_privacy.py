"""Raw frames and audio never reach the disk: only derived readings are kept, in memory.

The service runs as its own process with a fresh working folder, HOME and TMPDIR; after it
has analysed camera frames and audio over REST and the WebSocket, no file under those
folders holds any of the bytes sent, and no image or sound file has appeared there.
"""
from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest
import requests

from emobot.stack import free_port, http_ok
from emotion_sensing.config import DEFAULT_MODELS_DIR

MEDIA_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".wav", ".flac", ".ogg", ".pcm", ".raw", ".mp3"}
MEDIA_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"RIFF", b"fLaC", b"OggS")


def _spoken_like(seconds: float = 2.0, rate: int = 16_000) -> np.ndarray:
    """A voiced, syllable-like signal (harmonics under an envelope), loud enough for the VAD."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voice = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / rate) / k for k in range(1, 6))
    envelope = (np.sin(2 * np.pi * 3 * t) > -0.3).astype(float)
    rng = np.random.default_rng(7)
    return (0.3 * voice * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _wav(samples: np.ndarray) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16_000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _files(folders):
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if path.is_file() and not path.is_symlink():
                yield path


@pytest.fixture
def sandbox(tmp_path):
    folders = {name: tmp_path / name for name in ("cwd", "home", "tmp")}
    for folder in folders.values():
        folder.mkdir()
    return folders


@pytest.fixture
def service_process(sandbox):
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(sandbox["home"]), "TMPDIR": str(sandbox["tmp"]), "TMP": str(sandbox["tmp"]),
        "TEMP": str(sandbox["tmp"]), "XDG_CACHE_HOME": str(sandbox["home"] / ".cache"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PYTHONDONTWRITEBYTECODE": "1",
        "EMOBOT_MODELS_DIR": str(DEFAULT_MODELS_DIR), "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    log = (sandbox["tmp"].parent / "service.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "emotion_sensing.service", "--port", str(port)],
                               cwd=sandbox["cwd"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    try:
        while not http_ok(url + "/health"):
            assert process.poll() is None, (sandbox["tmp"].parent / "service.log").read_text()
            assert time.time() < deadline, "the service did not start"
            time.sleep(0.5)
        yield url
    finally:  # a service that failed to start is stopped too, not left running after the test
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def _stream(url: str, frame: bytes, pcm: bytes) -> list:
    events = []
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url.replace("http", "ws") + "/v1/sessions/private/stream") as ws:
            await ws.send_bytes(b"\x01" + frame)
            events.append(await ws.receive_json(timeout=60))
            for start in range(0, len(pcm), 6400):  # 200 ms chunks
                await ws.send_bytes(b"\x02" + pcm[start:start + 6400])
            await ws.send_str('{"type": "state"}')
            while events[-1]["type"] != "state" or "counts" not in events[-1]:
                events.append(await ws.receive_json(timeout=60))
    return events


def test_frames_and_audio_never_touch_the_disk(service_process, sandbox, astronaut_bgr):
    url = service_process
    jpeg = cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()
    png = cv2.imencode(".png", astronaut_bgr)[1].tobytes()
    voice = _spoken_like()
    wav = _wav(voice)
    pcm = (np.concatenate([voice, np.zeros(16_000, np.float32)]) * 32767).astype("<i2").tobytes()
    before = {p: p.stat().st_size for p in _files(sandbox.values())}

    health = requests.get(url + "/health").json()["modalities"]
    assert health["face"]["on"] and health["voice"]["on"], health  # both shipped models are in models/
    for route, body, kind in (("/v1/sessions/private/frames", jpeg, "image/jpeg"),
                              ("/v1/sessions/private/frames", png, "image/png"), ("/v1/face", jpeg, "image/jpeg")):
        response = requests.post(url + route, data=body, headers={"Content-Type": kind}, timeout=60)
        assert response.status_code == 200, response.text
    for route in ("/v1/sessions/private/audio", "/v1/speech"):
        response = requests.post(url + route, data=wav, headers={"Content-Type": "audio/wav"}, timeout=60)
        assert response.status_code == 200, response.text
    events = asyncio.run(_stream(url, jpeg, pcm))
    assert events[0]["type"] == "reading"
    session = requests.get(url + "/v1/sessions/private").json()
    assert session["counts"]["face"] >= 3  # the readings are there, in memory

    secrets = [jpeg[1000:1064], png[2000:2064], pcm[20_000:20_064], wav[10_000:10_064]]
    for path in _files(sandbox.values()):
        assert path.suffix.lower() not in MEDIA_SUFFIXES or path in before, f"media file written: {path}"
        data = path.read_bytes()
        if path not in before:
            assert not data.startswith(MEDIA_MAGIC), f"image or sound written: {path}"
        for secret in secrets:
            assert secret not in data, f"raw input found in {path}"

