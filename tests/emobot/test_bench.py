"""`emobot bench replay` replays a stored conversation of the asked length and reports each step."""
from __future__ import annotations

import json
import subprocess
import sys

from emobot.bench import write_replay_store
from emotion_sensing.replay import replay


def test_the_bench_store_replays_with_every_turn_annotated(tmp_path):
    url = write_replay_store(tmp_path / "t.db", turns=12)
    turns = replay("bench-replay", url)
    assert len(turns) == 12
    assert all(t.emotion["label"] and t.emotion["reading"]["contributions"] for t in turns)
    assert all(t.replies and t.replies[0]["text"] for t in turns)


def test_bench_replay_reports_each_step_as_json():
    result = subprocess.run([sys.executable, "-m", "emobot", "bench", "replay", "--turns", "20", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["bench"] == "replay" and figures["turns"] == 20 and figures["unit"] == "ms"
    for step in ("read_store", "terminal", "json", "csv", "html", "in_process", "command_terminal", "command_html"):
        assert figures[step]["p50_ms"] > 0 and figures[step]["max_ms"] >= figures[step]["p50_ms"], step
