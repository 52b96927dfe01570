"""`emobot bench insights`: a generated store of many conversations, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.postgres import LocalPostgres, unavailable_reason


def _bench(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "emobot", "bench", "insights", "--json", *args],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_bench_generates_a_store_and_times_insights_over_it():
    result = _bench("--conversations", "300")
    assert result["conversations"] == 300 and 4000 < result["events"] < 9000  # ~20 events a conversation
    assert result["user_turns"] >= 600 and result["insights_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["store"] == "sqlite" and result["machine"]["cores"] >= 1
    assert 60 <= result["rated"] <= 120  # 30% of the conversations rate the chat


def test_the_bench_runs_on_postgresql():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = LocalPostgres().start()
    try:
        result = _bench("--conversations", "300", "--store", server.url)
        assert result["store"].startswith("postgresql") and result["user_turns"] >= 600
    finally:
        server.stop()
