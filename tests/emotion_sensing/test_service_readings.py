"""POST /v1/sessions/{id}/readings: an outside sensor's face or voice reading joins the fusion."""
from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.service.app import create_app

ANGRY_FACE = {"modality": "face", "probs": {"angry": 0.9, "neutral": 0.1}, "confidence": 0.95}


@pytest.fixture
async def service(models_dir):
    settings = Settings(models_dir=models_dir, modalities=("text", "face"))
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        yield http
    await server.close()


async def test_a_face_reading_changes_the_fused_state_of_the_next_turn(service):
    async with service.post("/v1/sessions/cam-1/readings", json=ANGRY_FACE) as response:
        body = await response.json()
    assert response.status == 200, body
    assert body["reading"]["modality"] == "face" and body["reading"]["label"] == "angry"
    assert body["state"]["label"] == "angry"

    # The same neutral words read differently with an angry face beside them than without.
    text = {"text": "I have a complaint"}  # reads neutral, without conviction (0.6)
    async with service.post("/v1/sessions/cam-1/turns", json=text) as response:
        with_face = (await response.json())["state"]
    async with service.post("/v1/sessions/no-cam/turns", json=text) as response:
        without_face = (await response.json())["state"]
    assert with_face["label"] == "angry"
    assert without_face["label"] != "angry"
    assert {c["modality"] for c in with_face["contributions"]} == {"text", "face"}

    async with service.get("/v1/sessions/cam-1") as response:
        session = await response.json()
    assert session["counts"] == {"face": 1, "text": 1}


@pytest.mark.parametrize(
    "body, status, code, says",
    [
        ({**ANGRY_FACE, "modality": "text"}, 422, "invalid_modality", "face, voice"),
        ({**ANGRY_FACE, "modality": None}, 422, "invalid_modality", "modality"),
        ({**ANGRY_FACE, "modality": "voice"}, 409, "modality_off", "voice"),
        ({**ANGRY_FACE, "probs": [0.9, 0.1]}, 422, "invalid_probs", "object"),
        ({**ANGRY_FACE, "probs": {}}, 422, "invalid_probs", "object"),
        ({**ANGRY_FACE, "probs": {"furious": 1.0}}, 422, "invalid_probs", "furious"),
        ({**ANGRY_FACE, "probs": {"angry": "high"}}, 422, "invalid_probs", "angry"),
        ({**ANGRY_FACE, "probs": {"angry": 1.5, "sad": -0.5}}, 422, "invalid_probs", "between 0 and 1"),
        ({**ANGRY_FACE, "probs": {"angry": 0.5, "sad": 0.2}}, 422, "invalid_probs", "sum to 0.700"),
        ({**ANGRY_FACE, "probs": {"angry": True}}, 422, "invalid_probs", "angry"),
        ({**ANGRY_FACE, "confidence": 2}, 422, "invalid_confidence", "between 0 and 1"),
        ({k: v for k, v in ANGRY_FACE.items() if k != "confidence"}, 422, "invalid_confidence", "None"),
        ({**ANGRY_FACE, "timestamp": 1}, 422, "unknown_field", "timestamp"),
    ],
)
async def test_a_bad_reading_gets_a_clear_4xx_and_changes_nothing(service, body, status, code, says):
    async with service.post("/v1/sessions/bad-1/readings", json=body) as response:
        answer = await response.json()
    assert response.status == status, answer
    assert answer["error"]["code"] == code
    assert says in answer["error"]["message"]
    async with service.get("/v1/sessions/bad-1") as response:
        assert response.status == 404  # nothing was stored


async def test_non_finite_numbers_and_bad_ids_are_refused(service):
    raw = json.dumps({**ANGRY_FACE, "confidence": 0.5}).replace("0.5", "NaN")
    async with service.post("/v1/sessions/x/readings", data=raw, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 422 and (await r.json())["error"]["code"] == "invalid_confidence"
    async with service.post("/v1/sessions/bad%20id/readings", json=ANGRY_FACE) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_session_id"
    async with service.post("/v1/sessions/x/readings", data=b"{oops", headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "malformed_json"


async def test_a_button_payload_is_no_text_to_read_but_the_face_still_counts(service):
    """Rasa takes "/rate{...}" as a click, not words: it read neutral 0.86 and pulled an angry
    person's state toward calm. Now the turn reads no text, nor the earlier turns' text again: a
    click with no camera or microphone on senses nothing (unknown), and the mood carries on."""
    async with service.post("/v1/sessions/click-1/turns", json={"text": "I'm furious, nobody answers me"}) as response:
        angry = (await response.json())["state"]
    assert angry["label"] == "angry"
    async with service.post("/v1/sessions/click-1/turns", json={"text": '/rate{"rating": "1"}'}) as response:
        body = await response.json()
    assert response.status == 200 and body["reading"] is None and body["turn"] == 2
    assert body["state"]["label"] == "unknown" and body["state"]["contributions"] == [], body["state"]
    async with service.get("/v1/sessions/click-1") as response:
        live = await response.json()
    assert live["counts"] == {"text": 1}  # the payload added no reading
    assert live["state"]["label"] == "unknown"  # and the live state between turns leaves the words out too
    async with service.post("/v1/sessions/click-1/turns", json={"text": "ok"}) as response:
        after = (await response.json())["state"]
    assert after["label"] == "angry" and after["mood_share"] > 0.5  # the mood came through the click
    assert [c["modality"] for c in after["contributions"]] == ["text"]  # the new words count again
    async with service.post("/v1/sessions/click-2/readings", json=ANGRY_FACE) as response:
        assert response.status == 200
    async with service.post("/v1/sessions/click-2/turns", json={"text": "/affirm"}) as response:
        state = (await response.json())["state"]
    assert state["label"] == "angry" and {c["modality"] for c in state["contributions"]} == {"face"}
