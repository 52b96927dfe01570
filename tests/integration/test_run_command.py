"""`emobot run` as a user starts it: all three come up, Ctrl-C stops all three."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from emobot.stack import free_port, http_ok

pytestmark = pytest.mark.integration


def test_run_prints_urls_and_ctrl_c_stops_everything(tmp_path):
    ports = {name: free_port() for name in ("EMOBOT_RASA_PORT", "EMOBOT_ACTIONS_PORT", "EMOBOT_SERVICE_PORT")}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()},
           "EMOBOT_TRACKER_DB": str(tmp_path / "tracker.db"), "EMOBOT_RUN_DIR": str(tmp_path / "run")}
    env.pop("EMOBOT_SERVICE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "emobot", "run"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = []
    deadline = time.time() + 240
    try:
        for line in process.stdout:
            output.append(line)
            if line.startswith("Chat in another terminal") or time.time() > deadline:
                break
        text = "".join(output)
        assert "ready." in text, text
        assert f"http://127.0.0.1:{ports['EMOBOT_RASA_PORT']}/webhooks/rest/webhook" in text
        urls = [f"http://127.0.0.1:{ports['EMOBOT_RASA_PORT']}/status",
                f"http://127.0.0.1:{ports['EMOBOT_ACTIONS_PORT']}/health",
                f"http://127.0.0.1:{ports['EMOBOT_SERVICE_PORT']}/health"]
        assert all(http_ok(url) for url in urls)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0
    assert not any(http_ok(url) for url in urls), "a process outlived Ctrl-C"
