"""The load generator against the real stack: a short run, and its refusals."""
from __future__ import annotations

import pytest

from emobot.load import LoadError, run_load

# Turns must be answered within the time budget under load: alone, not beside other tests (`make test`).
pytestmark = [pytest.mark.integration, pytest.mark.serial]


@pytest.fixture(scope="module")
def stack(own_stack):
    """This module floods the service with frames and audio: it gets a stack of its own."""
    return own_stack


def test_a_short_load_answers_every_turn_and_counts_what_the_service_did(stack):
    service = next(p for p in stack.processes if p.name == "emotion service")
    # 20 frames a second from each of 4 conversations, sent on the clock whether answered or not,
    # is more than the per-session limit (10/s) and more than one waiting frame per session: every
    # frame not analysed must be accounted for (dropped or rate-limited), and said so.
    result = run_load(stack.settings.rasa_url, stack.settings.service_listen_url, conversations=4, seconds=12,
                      fps=20, message_every_s=3, service_pid=service.popen.pid, log=None, frames_on_clock=True)
    turns, frames = result["turns"], result["frames"]
    assert result["failed_requests"] == 0, result["failures"]
    assert turns["sent"] >= 12 and turns["answered"] == turns["sent"]
    assert turns["sensed"] == turns["sent"]  # every turn set user_emotion
    assert turns["sensed_unknown_not_sensed"] == 0  # and the service answered each in time
    assert 0 < turns["p50_ms"] <= turns["p95_ms"] <= turns["max_ms"]
    assert frames["with_face"] > 0 and frames["dropped_by_service"] + frames["rate_limited"] > 0
    assert frames["analysed"] + frames["dropped_by_service"] + frames["rate_limited"] <= frames["sent"]
    assert result["audio"]["voice_readings"] > 0
    assert result["service_rss_mb"]["start"] > 0 and result["service_rss_mb"]["end"] > 0


def test_the_load_generator_only_targets_loopback_and_stays_bounded():
    with pytest.raises(LoadError, match="loopback"):
        run_load("http://example.com:5005", "http://127.0.0.1:5006", conversations=1, seconds=1, log=None)
    with pytest.raises(LoadError, match="conversations"):
        run_load("http://127.0.0.1:5005", "http://127.0.0.1:5006", conversations=100_000, log=None)
    with pytest.raises(LoadError, match="seconds"):
        run_load("http://127.0.0.1:5005", "http://127.0.0.1:5006", conversations=1, seconds=86_400, log=None)


async def test_turns_are_answered_within_the_budget_while_sensing_is_saturated(stack):
    """20 cameras at 10 frames/s and their microphones in real time give the sensing worker
    more than it can do; meanwhile every turn's text reading and fused state come back within
    the action's budget (no turn sensed "unknown"), and sensing keeps reading, fewer frames."""
    import asyncio
    import time

    import aiohttp

    from emobot.load import face_jpeg, speech_pcm, stream_messages
    from emotion_sensing.service.client import EmotionClient

    url = stack.settings.service_listen_url
    frame, chunks = stream_messages(face_jpeg(), speech_pcm())
    stop = time.monotonic() + 15.0
    seen = {"reading": 0, "dropped": 0}

    async def camera_and_microphone(http, number):
        async with http.ws_connect(f"{url}/v1/sessions/busy-{number}/stream") as ws:
            async def receive():
                async for message in ws:
                    kind = message.json().get("type") if message.type == aiohttp.WSMsgType.TEXT else None
                    if kind in seen:
                        seen[kind] += 1

            receiver = asyncio.ensure_future(receive())
            tick = 0
            while time.monotonic() < stop:
                await ws.send_bytes(frame)
                await ws.send_bytes(chunks[(number + tick) % len(chunks)])
                tick += 1
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            receiver.cancel()

    answers = []

    async def talk(client, number):
        await asyncio.sleep(2.0)  # the streams are under way
        while time.monotonic() < stop - 1.0:
            started = time.perf_counter()
            answer = await client.turn_or_unknown(f"talk-{number}", "I'm so happy, thank you so much!")
            answers.append((answer, time.perf_counter() - started))
            await asyncio.sleep(0.4)

    client = EmotionClient(url, stack.settings.time_budget_ms)
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(camera_and_microphone(http, i) for i in range(20)),
                             *(talk(client, i) for i in range(4)))
        async with http.get(f"{url}/health") as response:
            sensing = (await response.json())["sensing"]
    await client.close()

    assert len(answers) >= 40
    late = [(a.get("sensing"), round(s * 1000)) for a, s in answers if a.get("sensing") == "timeout"]
    assert not late, f"{len(late)} of {len(answers)} turns ran out of the {stack.settings.time_budget_ms} ms budget"
    # Each answer has the turn's text reading and the state fused from it.
    assert all(a["reading"]["modality"] == "text" and a["state"]["label"] == "happy" for a, _ in answers), \
        [a["state"]["label"] for a, _ in answers]
    # The worker was saturated (work dropped: frames by the stream, which keeps one waiting per
    # camera, utterances or frames by the scheduler) and still read faces and voices.
    assert sensing["worker"] == "process" and sensing["policy"] == "idle"
    dropped_by_scheduler = sum(sum(sensing[m]["dropped"].values()) for m in ("face", "voice"))
    assert seen["dropped"] > 0 and dropped_by_scheduler > 0, sensing
    assert seen["reading"] > 0 and sensing["face"]["analysed"] > 0 and sensing["voice"]["analysed"] > 0, sensing
