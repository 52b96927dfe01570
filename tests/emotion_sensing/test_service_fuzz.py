"""Property-based bad input against the real running service (shipped models, loopback HTTP).

Whatever arrives — malformed or oversized JSON, wrong content types, random bytes as images
or audio, hostile session ids, garbage WebSocket messages — the service answers with a
JSON 4xx (never a 5xx), logs no unhandled error, keeps answering /health, and keeps its
session count within its bound.
"""
from __future__ import annotations

import asyncio
import io
import json
import string
from pathlib import Path
from urllib.parse import quote

import aiohttp
import cv2
import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_sensing.config import Settings
from emotion_sensing.labels import LABELS
from emotion_sensing.service.keys import STORE
from emotion_sensing.service.limits import LIMITS
from tests.emotion_sensing.service_thread import ServiceThread

MAX_BODY = 256 * 1024
MAX_SESSIONS = 64
FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def service(models_dir):
    config = Settings(models_dir=models_dir, max_body_bytes=MAX_BODY, max_text_chars=2000,
                      max_sessions=MAX_SESSIONS, session_requests_per_s=1000, session_frames_per_s=1000)
    with ServiceThread(config) as running:
        yield running
        assert running.errors == [], "the service logged errors"
        sessions = running.call(lambda: len(running.app[STORE]))
        assert sessions <= MAX_SESSIONS
        assert running.call(lambda: len(running.app[LIMITS])) <= 3 * MAX_SESSIONS


@pytest.fixture(scope="module")
def http(service):
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def astronaut_jpeg(astronaut_bgr):
    return cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()


def expect_4xx_or_ok(response: requests.Response) -> None:
    """No 5xx; every error is the service's JSON error."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"]


def still_serving(service, http) -> None:
    response = http.get(service.url + "/health", timeout=30)
    assert response.status_code == 200 and response.json()["status"] == "ok"


# --- strategies ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "text": st.text(max_size=2500) | json_values,
        "modality": st.sampled_from(["face", "voice", "text", "FACE", ""]) | json_values,
        "probs": st.dictionaries(st.sampled_from(LABELS) | st.text(max_size=8),
                                 st.floats() | st.integers() | json_values, max_size=9),
        "confidence": st.floats() | json_values,
    },
)
nesting = st.sampled_from([b"[", b"{\"a\":", b"[{\"x\":"]).flatmap(
    lambda opener: st.integers(1, MAX_BODY // len(opener) - 1).map(lambda n: opener * n))
json_bodies = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid.map(lambda v: json.dumps(v).encode()),
    nesting,
    st.integers(MAX_BODY - 16, MAX_BODY * 3).map(lambda n: b'{"text": "' + b"a" * n + b'"}'),
)
header_text = st.text(alphabet=string.ascii_letters + string.digits + "/;=+-. _*", max_size=40).map(str.strip)
content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1", "text/plain",
    "", "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz", "image/jpeg", "audio/wav",
    "audio/L16; rate=16000", "application/octet-stream",
]) | header_text

HOSTILE_IDS = [
    "../../etc/passwd", "..", ".", "%2e%2e%2f", "..%2F..%2Fetc", "'; DROP TABLE events; --", "1 OR 1=1",
    "a" * 129, "a" * 3000, "\x00", "nul\x00byte", "<script>alert(1)</script>", "ü", "😀", "con", "\u202e",
    "a/b", "a\\b", " ", "\n", "${jndi:ldap://x}", "{{7*7}}", "-", "ok-id",
]
session_ids = st.sampled_from(HOSTILE_IDS) | st.text(max_size=200) | st.from_regex(r"[A-Za-z0-9_.:@+\-]{1,128}", fullmatch=True)


def session_path(session_id: str, suffix: str = "", raw: bool = False) -> str:
    return f"/v1/sessions/{session_id if raw else quote(session_id, safe='')}{suffix}"


# --- JSON routes --------------------------------------------------------------------------

@FUZZ
@given(route=st.sampled_from(["/v1/text", "/v1/sessions/fuzz-json/turns", "/v1/sessions/fuzz-json/readings"]),
       body=json_bodies, content_type=content_types)
def test_json_routes_answer_bad_bodies_with_a_4xx(service, http, route, body, content_type):
    response = http.post(service.url + route, data=body, headers={"Content-Type": content_type}, timeout=60)
    expect_4xx_or_ok(response)


def test_deeply_nested_json_is_a_400_not_a_crash(service, http):
    for route in ("/v1/text", "/v1/sessions/deep/turns", "/v1/sessions/deep/readings"):
        response = http.post(service.url + route, data=b"[" * 100_000, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "malformed_json"
    still_serving(service, http)


def test_oversized_bodies_are_413_on_every_upload_route(service, http):
    body = b"\x00" * (MAX_BODY + 1)
    for route, content_type in (("/v1/text", "application/json"), ("/v1/sessions/big/readings", "application/json"),
                                ("/v1/face", "image/jpeg"), ("/v1/sessions/big/frames", "image/png"),
                                ("/v1/speech", "audio/wav"), ("/v1/sessions/big/audio", "audio/L16; rate=16000")):
        response = http.post(service.url + route, data=body, headers={"Content-Type": content_type})
        assert response.status_code == 413, (route, response.text)
        assert response.json()["error"]["code"] == "body_too_large"
    still_serving(service, http)


def test_a_refused_upload_leaves_the_next_request_on_the_client_answered(service, http):
    # A refused body closes its connection (Connection: close): left unread on a kept-alive
    # connection it once held up the client's next request there for good.
    for route, content_type, size in (("/v1/face", "text/csv", 1000), ("/v1/face", "text/csv", 8 * MAX_BODY),
                                      ("/v1/text", "application/json", 3 * MAX_BODY),
                                      ("/v1/sessions/x/audio", "audio/wav", 16)):
        refused = http.post(service.url + route, data=b"\xff" * size, headers={"Content-Type": content_type},
                            timeout=30)
        assert 400 <= refused.status_code < 500
        assert refused.headers.get("Connection", "").lower() == "close", (route, size)
        answered = http.post(service.url + "/v1/text", json={"text": "still there?"}, timeout=30)
        assert answered.status_code == 200


# --- session ids --------------------------------------------------------------------------

@FUZZ
@given(session_id=session_ids, raw=st.booleans(),
       method_suffix=st.sampled_from([("GET", ""), ("DELETE", ""), ("POST", "/turns"), ("POST", "/readings"),
                                      ("GET", "/stream"), ("POST", "/frames"), ("POST", "/audio")]))
def test_hostile_session_ids_get_a_4xx(service, http, session_id, raw, method_suffix):
    method, suffix = method_suffix
    try:
        url = service.url + session_path(session_id, suffix, raw=raw)
        response = http.request(method, url, json={"text": "hello there"} if suffix in ("/turns", "/readings") else None,
                                timeout=60)
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, ValueError, UnicodeError):
        return  # the client refuses to send it; nothing reached the service
    expect_4xx_or_ok(response)


def test_a_flood_of_new_sessions_stays_within_the_bound(service, http):
    for n in range(MAX_SESSIONS * 2):
        response = http.post(service.url + f"/v1/sessions/flood-{n}/turns", json={"text": "hi"})
        assert response.status_code == 200
    assert http.get(service.url + "/health").json()["sessions"] <= MAX_SESSIONS
    assert http.get(service.url + "/v1/sessions/flood-0").status_code == 404  # the oldest were forgotten
    assert http.get(service.url + f"/v1/sessions/flood-{MAX_SESSIONS * 2 - 1}").status_code == 200


# --- images -------------------------------------------------------------------------------

def _corrupt(data: bytes, positions, values) -> bytes:
    out = bytearray(data)
    for p, v in zip(positions, values):
        out[p % len(out)] = v
    return bytes(out)


@st.composite
def images(draw, jpeg: bytes):
    kind = draw(st.sampled_from(["random", "truncated", "flipped", "magic"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=4096))
    if kind == "truncated":
        return jpeg[: draw(st.integers(1, len(jpeg) - 1))]
    if kind == "flipped":
        positions = draw(st.lists(st.integers(0, len(jpeg) - 1), min_size=1, max_size=20))
        return _corrupt(jpeg, positions, draw(st.lists(st.integers(0, 255), min_size=len(positions),
                                                       max_size=len(positions))))
    magic = draw(st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF\x00\x00\x00\x00WEBP", b"GIF89a"]))
    return magic + draw(st.binary(max_size=2048))


@pytest.fixture(scope="module")
def image_strategy(astronaut_jpeg):
    return images(astronaut_jpeg)


@FUZZ
@given(data=st.data(), route=st.sampled_from(["/v1/face", "/v1/sessions/fuzz-face/frames"]),
       content_type=st.sampled_from(["image/jpeg", "image/png", "application/octet-stream"]) | content_types)
def test_corrupt_images_get_a_4xx(service, http, image_strategy, data, route, content_type):
    body = data.draw(image_strategy)
    response = http.post(service.url + route, data=body, headers={"Content-Type": content_type}, timeout=60)
    expect_4xx_or_ok(response)


def peak_rss_reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_decompression_bombs_are_refused_without_decoding_them(service, http):
    """A 12000x12000 PNG (144 MB decoded) and 20 minutes of FLAC silence (77 MB) fit in a small body."""
    import soundfile

    png = cv2.imencode(".png", np.zeros((12_000, 12_000), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16_000 * 60 * 20, np.float32), 16_000, format="FLAC")
    flac = buffer.getvalue()
    assert len(png) < MAX_BODY and len(flac) < MAX_BODY
    if not peak_rss_reset():
        pytest.skip("cannot reset the peak RSS (/proc/self/clear_refs)")
    before = peak_rss_mb()
    for route in ("/v1/face", "/v1/sessions/bomb/frames"):
        response = http.post(service.url + route, data=png, headers={"Content-Type": "image/png"})
        assert response.status_code == 422, response.text
        assert "larger than the limit" in response.json()["error"]["message"]
    for route in ("/v1/speech", "/v1/sessions/bomb/audio"):
        response = http.post(service.url + route, data=flac, headers={"Content-Type": "audio/flac"})
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "audio_too_long"
    assert peak_rss_mb() - before < 60, "decoding a bomb allocated its full size"
    still_serving(service, http)


# --- audio --------------------------------------------------------------------------------

def _wav(samples: np.ndarray, rate: int = 16_000, fmt: str = "WAV") -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt)
    return buffer.getvalue()


@st.composite
def audio_uploads(draw):
    kind = draw(st.sampled_from(["random", "magic", "truncated", "pcm"]))
    if kind == "random":
        body = draw(st.binary(max_size=8192))
    elif kind == "magic":
        body = draw(st.sampled_from([b"RIFF", b"fLaC", b"OggS", b"RIFF\xff\xff\xff\xffWAVEfmt "])) + draw(
            st.binary(max_size=4096))
    elif kind == "truncated":
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        wav = _wav((rng.standard_normal(8000) * 0.1).astype(np.float32), fmt=draw(st.sampled_from(["WAV", "FLAC"])))
        body = wav[: draw(st.integers(1, len(wav)))]
    else:
        body = draw(st.binary(max_size=64_000))
    rate = draw(st.sampled_from(["16000", "8000", "0", "-1", "abc", "99999999", "4000", ""]))
    content_type = draw(st.sampled_from(["audio/wav", "audio/flac", "audio/ogg", f"audio/L16; rate={rate}",
                                         f"audio/L16; rate={rate}; channels=2", "application/octet-stream", "", "video/mp4"])
                        | content_types)
    query = draw(st.sampled_from(["", f"?format=pcm16&rate={rate}", "?format=weird", f"?rate={rate}"]))
    return body, content_type, query


@FUZZ
@given(upload=audio_uploads(), route=st.sampled_from(["/v1/speech", "/v1/sessions/fuzz-voice/audio"]))
def test_corrupt_audio_gets_a_4xx(service, http, upload, route):
    body, content_type, query = upload
    response = http.post(service.url + route + query, data=body, headers={"Content-Type": content_type}, timeout=60)
    expect_4xx_or_ok(response)


# --- WebSocket ----------------------------------------------------------------------------

ws_messages = st.lists(
    st.one_of(
        st.tuples(st.just("binary"), st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x7F, 0xFF]).flatmap(
            lambda kind: st.binary(max_size=4096).map(lambda payload: bytes([kind]) + payload))),
        st.tuples(st.just("binary"), st.just(b"")),
        st.tuples(st.just("text"), st.text(max_size=200)),
        st.tuples(st.just("text"), json_values.map(json.dumps)),
        st.tuples(st.just("text"), st.sampled_from(['{"type": "state"}', '{"type": "ping"}', '{"type": 1}', "[]", "null"])),
    ),
    min_size=1,
    max_size=12,
)


async def _stream(url: str, messages) -> None:
    """Send ``messages``, then a ping: the pong must come back on the same, open socket."""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, timeout=30) as ws:
            for kind, data in messages:
                await (ws.send_bytes(data) if kind == "binary" else ws.send_str(data))
            await ws.send_str('{"type": "ping"}')
            while True:
                message = await asyncio.wait_for(ws.receive(), timeout=60)
                assert message.type == aiohttp.WSMsgType.TEXT, f"socket ended: {message}"
                event = json.loads(message.data)
                assert event.get("code") != "internal_error", event
                if event["type"] == "pong":
                    return


@FUZZ
@given(messages=ws_messages)
def test_garbage_websocket_messages_never_close_the_stream(service, messages):
    asyncio.run(_stream(service.url.replace("http", "ws") + "/v1/sessions/fuzz-ws/stream", messages))


def test_a_websocket_message_over_the_size_limit_closes_only_that_socket(service, http):
    async def oversized() -> int:
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(service.url.replace("http", "ws") + "/v1/sessions/big-ws/stream") as ws:
                await ws.send_bytes(b"\x01" + b"\x00" * (MAX_BODY + 10))
                message = await asyncio.wait_for(ws.receive(), timeout=30)
                assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
                return ws.close_code

    assert asyncio.run(oversized()) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    still_serving(service, http)
