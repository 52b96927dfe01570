"""The load generator against the real stack: a short run, and its refusals."""
from __future__ import annotations

import pytest

from emobot.load import LoadError, run_load

pytestmark = pytest.mark.integration


def test_a_short_load_answers_every_turn_and_counts_what_the_service_did(stack):
    service = next(p for p in stack.processes if p.name == "emotion service")
    # 20 frames a second from each of 4 conversations is more than the per-session limit (10/s)
    # and, on most CPUs, more than the face recognizer's two frames in flight can take: every
    # frame not analysed must be accounted for (dropped or rate-limited), and said so.
    result = run_load(stack.settings.rasa_url, stack.settings.service_listen_url, conversations=4, seconds=12,
                      fps=20, message_every_s=3, service_pid=service.popen.pid, log=None)
    turns, frames = result["turns"], result["frames"]
    assert result["failed_requests"] == 0, result["failures"]
    assert turns["sent"] >= 12 and turns["answered"] == turns["sent"]
    assert turns["sensed"] == turns["sent"]  # every turn set user_emotion
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
