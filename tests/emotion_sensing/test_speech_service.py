"""Voice over the real aiohttp service: uploads, session readings, the PCM stream, clear 4xx."""
from __future__ import annotations

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.service import voice_routes
from emotion_sensing.service.app import create_app
from emotion_sensing.service.keys import SENSING, STORE, STREAM_HANDLERS
from tests.emotion_sensing.speech_audio import needs_espeak, needs_voice_model, pcm16, silence, spoken, wav_bytes

pytestmark = [needs_voice_model, needs_espeak]
SENTENCE = "The delivery was late and the package was broken"


@pytest.fixture(scope="module")
def sentence(tmp_path_factory):
    return spoken(SENTENCE, tmp_path_factory.mktemp("voice"))


@pytest.fixture
async def server(models_dir):
    settings = Settings(models_dir=models_dir, max_body_bytes=1024 * 1024)
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def service(server):
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        yield http


async def expect_error(response, status, code):
    body = await response.json()
    assert response.status == status, body
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_health_reports_the_voice_model(service):
    async with service.get("/health") as response:
        voice = (await response.json())["modalities"]["voice"]
    assert voice["on"] is True and voice["model"] == "speech_emotion.joblib"


async def test_one_off_reading_with_transcript(service, sentence):
    async with service.post("/v1/speech?transcribe=1", data=wav_bytes(sentence, 16_000, "FLAC"),
                            headers={"Content-Type": "audio/flac"}) as response:
        body = await response.json()
    assert response.status == 200, body
    assert body["reading"]["modality"] == "voice" and body["reading"]["extras"]["speech"] is True
    assert "package" in body["transcript"]["text"].lower()


async def test_raw_pcm_at_any_rate(service, sentence):
    import soxr

    at_8k = soxr.resample(sentence, 16_000, 8_000)
    async with service.post("/v1/speech", data=pcm16(at_8k), headers={"Content-Type": "audio/L16; rate=8000"}) as r:
        assert r.status == 200, await r.text()
    async with service.post("/v1/speech?format=pcm16&rate=16000", data=pcm16(sentence)) as r:
        assert (await r.json())["reading"]["extras"]["speech"] is True


async def test_silence_is_a_no_speech_reading_and_not_stored(service):
    async with service.post("/v1/sessions/quiet-1/audio", data=wav_bytes(silence())) as response:
        body = await response.json()
    assert response.status == 200
    assert body["reading"]["extras"]["status"] == "no speech"
    assert body["state"]["label"] == "unknown"


async def test_session_audio_feeds_fusion_and_learns_the_speaker(service, server, sentence):
    for expected in (1, 2):
        async with service.post("/v1/sessions/talk-1/audio", data=wav_bytes(sentence)) as response:
            body = await response.json()
        assert response.status == 200, body
        assert body["reading"]["extras"]["speaker_utterances"] == expected
    assert [c["modality"] for c in body["state"]["contributions"]] == ["voice"]
    session = server.app[STORE].get("talk-1")
    assert session.counts() == {"voice": 2}
    # The sensing worker holds the speaker's statistics: derived values only, no audio is kept.
    stats = server.app[SENSING].backend.sensors.speakers["talk-1"]
    assert stats.count == 2
    assert all(isinstance(v, np.ndarray) and v.ndim == 1 for v in (stats.mean, stats.var))
    # Forgetting the session forgets its speaker in the worker too.
    async with service.delete("/v1/sessions/talk-1") as response:
        assert response.status == 200
    assert "talk-1" not in server.app[SENSING].backend.sensors.speakers
    async with service.get("/health") as response:
        sensing = (await response.json())["sensing"]
    assert sensing["voice"]["analysed"] >= 2 and sensing["worker"] == "thread"


@pytest.mark.parametrize(
    "data, headers, status, code",
    [
        (b"", {"Content-Type": "audio/wav"}, 400, "empty_audio"),
        (b'{"text": "hi"}', {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
        (b"ID3\x04\x00" + bytes(2000), {"Content-Type": "audio/wav"}, 415, "unsupported_audio_format"),
        (b"RIFF\x24\x08\x00\x00WAVEfmt ", {"Content-Type": "audio/wav"}, 400, "unreadable_audio"),
        (b"\x01\x02\x03", {"Content-Type": "audio/L16; rate=16000"}, 400, "truncated_audio"),
        (b"\x00\x00" * 100, {"Content-Type": "audio/L16; rate=12"}, 422, "invalid_rate"),
        (b"\x00\x00" * 100, {"Content-Type": "audio/L16; rate=16000; channels=2"}, 415, "unsupported_audio_format"),
        (bytes(2 * 1024 * 1024), {"Content-Type": "audio/wav"}, 413, "body_too_large"),
        (b"\x00\x00" * 8000 * 31, {"Content-Type": "audio/L16; rate=8000"}, 413, "audio_too_long"),
    ],
)
async def test_bad_uploads_get_clear_4xx(service, data, headers, status, code):
    for path in ("/v1/speech", "/v1/sessions/bad-1/audio"):
        async with service.post(path, data=data, headers=headers) as response:
            await expect_error(response, status, code)


async def test_truncated_file_is_refused(service, sentence):
    whole = wav_bytes(sentence, 16_000, "FLAC")
    async with service.post("/v1/speech", data=whole[:40], headers={"Content-Type": "audio/flac"}) as response:
        await expect_error(response, 400, "unreadable_audio")


async def test_invalid_session_id(service, sentence):
    async with service.post("/v1/sessions/bad%20id/audio", data=wav_bytes(sentence)) as response:
        await expect_error(response, 400, "invalid_session_id")


async def test_stream_chunks_become_readings_when_an_utterance_ends(server, sentence):
    app = server.app
    handler = app[STREAM_HANDLERS][voice_routes.STREAM_TYPE]
    session = app[STORE].get_or_create("stream-1")
    request = type("Request", (), {"app": app, "query": {}})()
    rng = np.random.default_rng(0)
    room = (0.002 * rng.standard_normal(16_000)).astype(np.float32)
    stream = pcm16(np.concatenate([room, sentence, room, room]))
    events = []
    for start in range(0, len(stream), 3200):  # 100 ms chunks
        events += await handler(request, session, stream[start : start + 3200])
    readings = [e for e in events if e["type"] == "reading"]
    assert len(readings) == 1
    assert readings[0]["reading"]["modality"] == "voice"
    assert readings[0]["utterance"]["duration_s"] > 2.0
    assert any(e["type"] == "state" for e in events)
    assert session.extras["voice"]["segmenter"].buffered_s < 1.0  # nothing left over
    odd = await handler(request, session, b"\x00\x01\x02")
    assert odd[0]["type"] == "error" and odd[0]["code"] == "truncated_audio"
    huge = await handler(request, session, bytes(voice_routes.MAX_CHUNK_BYTES + 2))
    assert huge[0]["code"] == "chunk_too_large"
