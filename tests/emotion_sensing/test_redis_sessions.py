"""Sessions in Redis: two service workers share one conversation's readings and turns.

Starts a local redis-server (Debian's) on a free loopback port; skipped where none is installed.
"""
from __future__ import annotations

import aiohttp
import cv2
import pytest
import redis
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.reading import Reading
from emotion_sensing.redis_sessions import RedisSessionStore, dump_reading, load_reading
from emotion_sensing.service.app import create_app
from emotion_sensing.stores import open_store
from tests.integration.redis_server import LocalRedis, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


@pytest.fixture(scope="module")
def redis_url():
    server = LocalRedis().start()
    yield server.url()
    server.stop()


@pytest.fixture
def clean_redis(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url


def test_a_reading_round_trips_exactly():
    reading = Reading("face", (0.1, 0.0, 0.05, 0.6, 0.05, 0.1, 0.1), 0.83, timestamp=1700000000.25,
                      extras={"source": "api", "box": [1, 2, 3, 4]})
    again = load_reading(dump_reading(reading))
    assert again == reading
    assert Reading.from_dict(reading.to_dict()).label == reading.label


def test_the_store_keeps_the_in_memory_interface(clean_redis):
    store = open_store(clean_redis, max_sessions=3, max_readings=4)
    assert isinstance(store, RedisSessionStore) and len(store) == 0
    assert store.get("nobody") is None
    session = store.get_or_create("s-1")
    for confidence in (0.1, 0.2, 0.3, 0.4, 0.5):
        session.add(Reading("text", (0, 0, 0, 1, 0, 0, 0), confidence))
    session.turns += 1
    session.extras["face_tracker"] = object()  # not serialisable: stays in this worker
    other = RedisSessionStore(clean_redis, max_sessions=3, max_readings=4)
    seen = other.get("s-1")
    assert seen.turns == 1 and [r.confidence for r in seen.readings] == [0.2, 0.3, 0.4, 0.5]
    assert seen.extras == {} and store.get("s-1").extras["face_tracker"] is not None
    assert [r.confidence for r in other.recent("s-1", limit=2)] == [0.4, 0.5]
    for n in range(2, 6):
        store.get_or_create(f"s-{n}")
    assert len(store) == 3 and len(other) == 3 and sorted(store) == ["s-3", "s-4", "s-5"]
    assert other.delete("s-5") and not other.delete("s-5")
    assert store.get("s-5") is None and len(store) == 2
    store.close()
    other.close()


@pytest.fixture
async def two_workers(models_dir, clean_redis):
    settings = Settings(models_dir=models_dir, session_store=clean_redis)
    servers = [TestServer(create_app(settings), host="127.0.0.1") for _ in range(2)]
    for server in servers:
        await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield http, [str(server.make_url("")).rstrip("/") for server in servers]
    for server in servers:
        await server.close()


async def test_frames_to_one_worker_and_the_turn_on_the_other_give_one_fused_state(two_workers, astronaut_bgr):
    http, (a, b) = two_workers
    jpeg = cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()
    reading = {"modality": "voice", "probs": {"sad": 0.7, "neutral": 0.3}, "confidence": 0.9}
    async with http.post(a + "/v1/sessions/shared/frames", data=jpeg, headers={"Content-Type": "image/jpeg"}) as r:
        assert r.status == 200 and (await r.json())["type"] == "reading"
    async with http.post(a + "/v1/sessions/shared/readings", json=reading) as r:
        assert r.status == 200
    async with http.post(b + "/v1/sessions/shared/turns", json={"text": "I guess it's fine"}) as r:
        turn = await r.json()
    assert turn["turn"] == 1
    modalities = {c["modality"] for c in turn["state"]["contributions"]}
    assert modalities == {"text", "face", "voice"}  # worker b fused what worker a received
    async with http.get(a + "/v1/sessions/shared") as r:
        on_a = await r.json()
    async with http.get(b + "/v1/sessions/shared") as r:
        on_b = await r.json()
    assert on_a["turns"] == on_b["turns"] == 1
    assert on_a["counts"] == on_b["counts"] == {"face": 1, "voice": 1, "text": 1}
    # Each worker fuses at its own instant, so decay with age may move the 4th decimal.
    assert on_a["state"]["label"] == on_b["state"]["label"]
    assert on_a["state"]["probs"] == pytest.approx(on_b["state"]["probs"], abs=2e-3)
    for key in ("valence", "arousal"):
        assert on_a["state"][key] == pytest.approx(on_b["state"][key], abs=2e-3)
    assert on_a["state"]["label"] == turn["state"]["label"]
    async with http.post(a + "/v1/sessions/shared/turns", json={"text": "thanks"}) as r:
        assert (await r.json())["turn"] == 2
    async with http.delete(b + "/v1/sessions/shared") as r:
        assert r.status == 200
    async with http.get(a + "/v1/sessions/shared") as r:
        assert r.status == 404
    async with http.get(a + "/health") as r:
        assert (await r.json())["sessions"] == 0


def test_an_unknown_store_is_a_clear_error():
    with pytest.raises(ValueError, match="EMOBOT_SESSION_STORE"):
        open_store("mongodb://somewhere")


def test_the_mood_a_turn_leaves_is_shared_between_workers(clean_redis):
    from emotion_sensing.fusion import fuse

    store = open_store(clean_redis)
    session = store.get_or_create("moody")
    session.add(Reading("text", (0.8, 0.05, 0.05, 0.0, 0.05, 0.0, 0.05), 0.8))
    state = fuse(session.readings)
    session.end_turn(state)
    other = RedisSessionStore(clean_redis).get("moody")
    assert other.mood is not None and other.mood.label == "angry"
    assert other.mood.probs == pytest.approx(state.probs)
    assert other.mood.timestamp == pytest.approx(state.timestamp)
    # A mood another version wrote is dropped, not an error.
    client = redis.Redis.from_url(clean_redis)
    client.hset("emobot:session:moody", "mood", "{not json")
    client.close()
    assert RedisSessionStore(clean_redis).get("moody").mood is None


def test_a_click_leaves_the_earlier_words_out_on_every_worker(clean_redis):
    """Session.words_before is shared: a worker fusing after another took the click leaves the
    earlier text out as well, and a new message counts again."""
    import time

    from emotion_sensing.fusion import FusionConfig

    config = FusionConfig()
    store = open_store(clean_redis)
    session = store.get_or_create("clicker")
    session.add(Reading("text", (0.8, 0.05, 0.05, 0.0, 0.05, 0.0, 0.05), 0.8))
    session.words_before = time.time()
    other = RedisSessionStore(clean_redis).get("clicker")
    assert other.words_before == pytest.approx(session.words_before)
    assert other.fuse(config).label == "unknown"
    time.sleep(0.01)
    session.add(Reading("text", (0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.1), 0.9))
    assert RedisSessionStore(clean_redis).get("clicker").fuse(config).label == "happy"
