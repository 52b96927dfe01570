"""`emobot run` as a user starts it: all three come up, Ctrl-C stops all three."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emobot.stack import free_port, http_ok, listening_pids

pytestmark = pytest.mark.integration


def _env(tmp_path, **ports):
    ports = {**{name: free_port() for name in ("EMOBOT_RASA_PORT", "EMOBOT_ACTIONS_PORT", "EMOBOT_SERVICE_PORT")},
             **ports}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()},
           "EMOBOT_TRACKER_DB": str(tmp_path / "tracker.db"), "EMOBOT_RUN_DIR": str(tmp_path / "run"),
           "EMOBOT_RASA_WORKERS": "auto"}  # what a user gets: on 2+ cores, Rasa processes behind emobot.front
    env.pop("EMOBOT_SERVICE_URL", None)
    return env, ports


def _start_run(env, cwd=None, sigint_ignored=False):
    """``sigint_ignored``: started as a script's background job is (SIGINT ignored, inherited)."""
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    return subprocess.Popen([sys.executable, "-m", "emobot", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, cwd=cwd, preexec_fn=ignore)


def _read_until_ready(process, deadline_s: float = 240) -> str:
    output, deadline = [], time.time() + deadline_s
    for line in process.stdout:
        output.append(line)
        if line.startswith("Chat in another terminal") or time.time() > deadline:
            break
    return "".join(output)


def test_run_prints_urls_and_ctrl_c_stops_everything(tmp_path):
    """Ctrl-C works even where emobot run inherited SIGINT ignored (a background job of a script; a
    test runner's worker that something set so: in a full `make test` of 7 December this test hung
    there, as a user's `emobot run &` in a script would)."""
    env, ports = _env(tmp_path)
    process = _start_run(env, sigint_ignored=True)
    try:
        text = _read_until_ready(process)
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
    assert "stopping...\nstopped. Logs are in " in process.stdout.read()


def test_a_relative_run_folder_is_the_one_rasa_reads(tmp_path):
    """EMOBOT_RUN_DIR=run and EMOBOT_TRACKER_DB=tracker.db, given from another folder than the
    project's, are read from that folder: Rasa (which runs in the project's folder) reads the stack's
    endpoints.yml, so a turn reaches the action server on its port and is stored in that file. (A
    relative run folder once named another folder for Rasa, which then fell back to the project's
    endpoints.yml: the demo's default ports and store.)"""
    import sqlite3

    import requests

    env, ports = _env(tmp_path)
    env["EMOBOT_RUN_DIR"], env["EMOBOT_TRACKER_DB"] = "run", "tracker.db"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")]))
    process = _start_run(env, cwd=tmp_path)
    try:
        text = _read_until_ready(process)
        assert "ready." in text, text
        assert (tmp_path / "run" / "endpoints.yml").is_file()
        rasa = f"http://127.0.0.1:{ports['EMOBOT_RASA_PORT']}"
        replies = requests.post(f"{rasa}/webhooks/rest/webhook", json={"sender": "relative", "message": "hello"},
                                timeout=60).json()
        assert replies, "no reply"
        slots = requests.get(f"{rasa}/conversations/relative/tracker", timeout=30).json()["slots"]
        assert (slots.get("emotion_reading") or {}).get("sensing") == "ok", slots
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # never left running after the test
            os.killpg(process.pid, signal.SIGKILL)
            raise
    with sqlite3.connect(tmp_path / "tracker.db") as db:
        assert db.execute("SELECT COUNT(*) FROM events WHERE sender_id = 'relative'").fetchone()[0] > 0
    assert not (tmp_path / "run" / "tmp" / f"rasa-{ports['EMOBOT_RASA_PORT']}").exists()


def test_a_stale_service_on_the_port_is_named_and_nothing_starts(tmp_path):
    """An orphaned emotion service of an earlier run holds the port and answers /health: the
    new run must not take it for its own, and must start nothing."""
    env, ports = _env(tmp_path)
    stale = subprocess.Popen([sys.executable, "-m", "emotion_sensing.service", "--port", str(ports["EMOBOT_SERVICE_PORT"])],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        health = f"http://127.0.0.1:{ports['EMOBOT_SERVICE_PORT']}/health"
        deadline = time.time() + 120
        while not http_ok(health) and time.time() < deadline:
            time.sleep(0.3)
        assert http_ok(health)
        run = subprocess.run([sys.executable, "-m", "emobot", "run"], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 1
        assert "ready" not in run.stdout, "an answer from the stale service passed for readiness"
        assert (f"port {ports['EMOBOT_SERVICE_PORT']} (emotion service) is taken by pid {stale.pid} "
                "(" in run.stderr), run.stderr
        assert "emotion_sensing.service" in run.stderr and "EMOBOT_SERVICE_PORT" in run.stderr
        assert "Traceback" not in run.stderr
        for name in ("EMOBOT_RASA_PORT", "EMOBOT_ACTIONS_PORT"):
            assert listening_pids(ports[name]) == [], f"{name}: something was started"
        assert http_ok(health), "the stale service was touched"
    finally:
        stale.kill()
        stale.wait()


def test_killing_run_with_sigkill_stops_all_three(tmp_path):
    """`emobot run` dies without a chance to clean up (SIGKILL, OOM): its servers go with it
    and free their ports, so the next run can start."""
    env, ports = _env(tmp_path)
    process = _start_run(env)
    children = {}
    try:
        text = _read_until_ready(process)
        assert "ready." in text, text
        children = {name: listening_pids(port) for name, port in ports.items()}
        assert all(children.values()), children
        process.kill()  # only emobot run itself, not its process group
        process.wait(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline and any(listening_pids(port) for port in ports.values()):
            time.sleep(0.3)
        left = {name: listening_pids(port) for name, port in ports.items() if listening_pids(port)}
        assert not left, f"servers outlived emobot run: {left}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for pids in children.values():
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
