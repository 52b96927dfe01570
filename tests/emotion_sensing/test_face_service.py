"""Frames over REST and the WebSocket stream, on the real service with the shipped models."""
from __future__ import annotations

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.service.app import create_app


@pytest.fixture
async def service(models_dir, face_model):
    # Rate limits off: these tests are about back-pressure (test_service_security covers limits).
    settings = Settings(models_dir=models_dir, max_body_bytes=512 * 1024, session_frames_per_s=0)
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        yield http
    await server.close()


@pytest.fixture(scope="module")
def astronaut_jpeg(astronaut_bgr):
    return cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()


JPEG = {"Content-Type": "image/jpeg"}


async def test_health_reports_the_face_model(service):
    async with service.get("/health") as response:
        face = (await response.json())["modalities"]["face"]
    assert face["on"] is True and face["model"] == "face_emotion.tflite"
    assert [(n["file"], n["precision"]) for n in face["networks"]] == [
        ("face_emotion.tflite", "int8"), ("face_emotion.fer.tflite", "int8")]


async def test_one_off_image_lists_every_face(service, astronaut_jpeg):
    async with service.post("/v1/face", data=astronaut_jpeg, headers=JPEG) as response:
        body = await response.json()
    assert response.status == 200
    assert len(body["faces"]) == 1 and body["primary"] == 0
    assert set(body["faces"][0]["probs"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


async def test_a_frame_becomes_a_face_reading_in_the_session(service, astronaut_jpeg):
    async with service.post("/v1/sessions/cam-1/frames", data=astronaut_jpeg, headers=JPEG) as response:
        body = await response.json()
    assert response.status == 200 and body["type"] == "reading"
    assert body["reading"]["modality"] == "face"
    async with service.get("/v1/sessions/cam-1") as response:
        session = await response.json()
    assert session["counts"] == {"face": 1}
    assert session["state"]["contributions"][0]["modality"] == "face"


async def test_a_frame_without_a_face_adds_nothing(service):
    blank = cv2.imencode(".png", np.full((240, 320, 3), 180, np.uint8))[1].tobytes()
    async with service.post("/v1/sessions/cam-2/frames", data=blank, headers={"Content-Type": "image/png"}) as r:
        body = await r.json()
    assert r.status == 200 and body["type"] == "no_face"
    async with service.get("/v1/sessions/cam-2") as response:
        assert (await response.json())["counts"] == {}


@pytest.mark.parametrize("data, headers, status, code", [
    (b"", JPEG, 400, "empty_body"),
    (b"garbage bytes, not a picture", JPEG, 422, "invalid_image"),
    (b"{}", {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
    (b"\xff" * (600 * 1024), JPEG, 413, "body_too_large"),
])
async def test_bad_frames_get_clear_errors_and_the_service_stays_up(service, data, headers, status, code):
    async with service.post("/v1/sessions/cam-3/frames", data=data, headers=headers) as response:
        body = await response.json()
    assert response.status == status and body["error"]["code"] == code
    async with service.get("/health") as response:
        assert response.status == 200


async def test_invalid_session_id_is_refused(service, astronaut_jpeg):
    async with service.post("/v1/sessions/bad%20id/frames", data=astronaut_jpeg, headers=JPEG) as response:
        assert response.status == 400


async def test_stream_takes_frames_and_answers_garbage_with_errors(service, astronaut_jpeg):
    async with service.ws_connect("/v1/sessions/ws-1/stream") as ws:
        await ws.send_bytes(b"\x01" + astronaut_jpeg)
        event = await ws.receive_json(timeout=30)
        assert event["type"] == "reading" and event["reading"]["modality"] == "face"
        for garbage in (b"", b"\x7fwhat", b"\x01not a jpeg"):
            await ws.send_bytes(garbage)
            event = await ws.receive_json(timeout=30)
            assert event["type"] == "error", event
        await ws.send_str("{not json")
        assert (await ws.receive_json(timeout=10))["code"] == "malformed_json"
        await ws.send_str('{"type": "state"}')
        state = await ws.receive_json(timeout=10)
        assert state["type"] == "state" and state["counts"] == {"face": 1}


async def test_stream_drops_frames_rather_than_queueing_them(service, astronaut_jpeg):
    async with service.ws_connect("/v1/sessions/ws-2/stream") as ws:
        for _ in range(30):
            await ws.send_bytes(b"\x01" + astronaut_jpeg)
        events = []
        while not any(e["type"] == "reading" for e in events):
            events.append(await ws.receive_json(timeout=60))
        await ws.send_str('{"type": "state"}')
        while True:
            event = await ws.receive_json(timeout=60)
            events.append(event)
            if event["type"] == "state":
                break
        dropped = [e for e in events if e["type"] == "dropped"]
        # 30 frames sent at once: one analysed at a time, one waiting; the rest dropped.
        assert dropped and events[-1]["dropped"] == dropped[-1]["dropped"] >= 20
    async with service.get("/v1/sessions/ws-2") as response:
        assert 1 <= (await response.json())["counts"].get("face", 0) <= 10
