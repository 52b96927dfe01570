"""emobot.front on stand-in backends (small aiohttp servers started as its "Rasa" command): a
session's requests reach the process that holds it, websockets included; bodies, headers and
status codes pass unchanged; the processes share the rest; and no process outlives the front.
tests/integration/test_rasa_workers.py runs it with real Rasa processes and socket.io clients."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import requests

from emobot.front import free_port, process_of_session, session_prefix

BACKEND = '''
import os, sys
from aiohttp import web
port = int(sys.argv[sys.argv.index("--port") + 1])
me = os.environ["EMOBOT_RASA_PROCESS"]

async def root(request):
    return web.Response(text="Hello from a stand-in Rasa")

async def who(request):
    return web.json_response({"process": me, "sid": request.query.get("sid"),
                              "header": request.headers.get("X-Test")})

async def echo(request):
    return web.Response(body=await request.read(), status=201, headers={"X-Process": me})

async def ws(request):
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        await socket.send_str(f"{me}:{message.data}")
    return socket

async def refuse(request):
    return web.Response(status=400, text="unknown session")

app = web.Application()
app.router.add_get("/", root)
app.router.add_get("/who", who)
app.router.add_post("/echo", echo)
app.router.add_get("/ws", ws)
app.router.add_get("/refuse", refuse)
web.run_app(app, host="127.0.0.1", port=port, print=None)
'''


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def children(pid: int) -> list:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


@pytest.fixture
def front(tmp_path):
    script = tmp_path / "backend.py"
    script.write_text(BACKEND)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "emobot.front", "--port", str(port), "--processes", "2",
                                "--", sys.executable, str(script)],
                               stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            try:
                if requests.get(url + "/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
            assert process.poll() is None, process.stderr.read()
        else:
            pytest.fail("the front did not start")
        yield process, url
    finally:  # stopped even when it failed to start, not left running after the test
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_session_ids_name_their_process():
    assert process_of_session(session_prefix(3) + "AbC-_x") == 3
    assert process_of_session("AbC-_x") is None and process_of_session("") is None


def test_a_session_stays_on_its_process_and_the_rest_is_shared(front):
    _, url = front
    for process in ("0", "1"):
        answers = {requests.get(f"{url}/who", params={"sid": session_prefix(int(process)) + "xyz"}, timeout=5)
                   .json()["process"] for _ in range(6)}
        assert answers == {process}
    unsticky = {requests.get(f"{url}/who", timeout=5).json()["process"] for _ in range(6)}
    assert unsticky == {"0", "1"}, "requests without a session should use both processes"


def test_bodies_headers_and_status_pass_unchanged(front):
    _, url = front
    body = os.urandom(300_000)
    answer = requests.post(f"{url}/echo", data=body, timeout=10)
    assert answer.status_code == 201 and answer.content == body and answer.headers["X-Process"] in ("0", "1")
    assert requests.get(f"{url}/who", headers={"X-Test": "kept"}, timeout=5).json()["header"] == "kept"
    assert requests.get(f"{url}/refuse", timeout=5).status_code == 400
    assert requests.get(f"{url}/nowhere", timeout=5).status_code == 404


async def test_a_websocket_reaches_the_process_of_its_session(front):
    _, url = front
    async with aiohttp.ClientSession() as session:
        for process in (1, 0):
            async with session.ws_connect(f"{url}/ws?sid={session_prefix(process)}abc") as socket:
                for text in ("hello", "again"):
                    await socket.send_str(text)
                    assert (await socket.receive(timeout=5)).data == f"{process}:{text}"


def test_when_a_rasa_process_dies_the_front_stops_the_other_and_exits(front):
    process, url = front
    backends = children(process.pid)
    assert len(backends) == 2
    os.kill(backends[0], signal.SIGKILL)
    assert process.wait(timeout=20) == 1
    assert "exited" in process.stderr.read()
    assert not alive(backends[1])


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_rasa_process_outlives_the_front(front, how):
    process, _ = front
    backends = children(process.pid)
    assert len(backends) == 2
    process.send_signal(how)
    process.wait(timeout=20)
    deadline = time.time() + 15
    while time.time() < deadline and any(alive(pid) for pid in backends):
        time.sleep(0.2)
    assert not any(alive(pid) for pid in backends)
