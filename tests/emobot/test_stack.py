"""The stack's process plumbing: whose socket answers, what holds a port, who dies with whom."""
from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from emobot.stack import Process, Stack, StackError, describe_process, listening_pids, port_taken

linux_only = pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux's /proc")


@pytest.fixture
def foreign_server():
    """An HTTP server in this test process answering 200 to everything: what an orphan of an
    earlier run looks like from outside."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@linux_only
def test_a_taken_port_is_reported_with_its_holder(foreign_server):
    assert port_taken("127.0.0.1", foreign_server)
    assert listening_pids(foreign_server) == [os.getpid()]
    assert describe_process(os.getpid()).startswith(f"pid {os.getpid()} (")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert not port_taken("127.0.0.1", free)


@linux_only
def test_the_holder_is_named_while_it_opens_and_closes_other_files():
    """A busy holder closes descriptors while /proc is read (as a pytest worker's threads can: the
    likely cause of CI's one failure at stop 43): one that closes meanwhile must not hide the socket."""
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(50)]
    server = socket.socket()  # numbered after the descriptors the churn below reuses
    for fd in held:
        os.close(fd)
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            for fd in [os.open(os.devnull, os.O_RDONLY) for _ in range(40)]:
                os.close(fd)

    thread = threading.Thread(target=churn, daemon=True)
    try:
        server.bind(("127.0.0.1", 0))
        server.listen()
        thread.start()
        port = server.getsockname()[1]
        seen = [listening_pids(port) for _ in range(100)]
    finally:
        stop.set()
        thread.join()
        server.close()
    assert seen == [[os.getpid()]] * 100, f"the holder was missed {sum(s != [os.getpid()] for s in seen)} times in 100"


@linux_only
def test_a_health_answer_from_another_process_is_not_readiness(foreign_server, tmp_path):
    impostor = Process("emotion service", [sys.executable, "-c", "import time; time.sleep(30)"],
                       f"http://127.0.0.1:{foreign_server}/health", tmp_path / "a.log", dict(os.environ),
                       tmp_path, port=foreign_server)
    impostor.start()
    try:
        time.sleep(0.5)
        assert impostor.owns_port() is False
        assert not impostor.ready(), "whatever answers on the port passed for the process started"
    finally:
        impostor.stop()


@linux_only
def test_a_process_that_listens_itself_is_ready(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Process("emotion service", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                     f"http://127.0.0.1:{port}/", tmp_path / "s.log", dict(os.environ), tmp_path, port=port)
    server.start()
    try:
        deadline = time.time() + 30
        while not server.ready() and time.time() < deadline:
            time.sleep(0.1)
        assert server.ready() and server.owns_port() is True
    finally:
        server.stop()


@linux_only
@pytest.mark.parametrize("trained", [True, False], ids=["trained", "no-rasa-model-yet"])
def test_the_stack_starts_nothing_when_a_port_is_taken(foreign_server, tmp_path, trained):
    """The ports are checked before anything else, even before the Rasa model is looked for."""
    stack = Stack.on_free_ports(tmp_path / "run", **({} if trained else {"project": tmp_path / "untrained"}))
    stack.settings = replace(stack.settings, actions_port=foreign_server)
    with pytest.raises(StackError) as raised:
        stack.start(timeout=30)
    message = str(raised.value)
    assert f"port {foreign_server} (action server) is taken by pid {os.getpid()}" in message
    assert "EMOBOT_ACTIONS_PORT" in message and f"kill {os.getpid()}" in message
    assert stack.processes == [] or not any(p.popen for p in stack.processes)
    assert not (tmp_path / "run" / "service.log").exists(), "a process was started"


@linux_only
def test_a_child_dies_with_its_parent_even_under_sigkill(tmp_path):
    """A parent that starts a stack process and is then SIGKILLed leaves no orphan."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", f"""
import os, sys, time
from pathlib import Path
from emobot.stack import Process
child = Process("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], "http://127.0.0.1:1/",
                Path({str(tmp_path / 'c.log')!r}), dict(os.environ), Path({str(tmp_path)!r}))
child.start()
Path({str(pid_file)!r}).write_text(str(child.popen.pid))
time.sleep(120)
"""])
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:  # written, not just created
        time.sleep(0.1)
    child = int(pid_file.read_text())
    os.kill(child, 0)  # alive
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child), "the child outlived its SIGKILLed parent"


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_process_keeps_its_temporary_files_in_its_own_folder_and_a_restart_clears_a_kill_s(tmp_path):
    """What a SIGKILLed process leaves in its TMPDIR (TensorFlow's autograph files, for Rasa) is in
    the stack's run folder, not the system's, and goes when the process starts again or stops."""
    writer = ("import os, tempfile, time\n"
              "handle, path = tempfile.mkstemp(prefix='left-')\n"
              "print(path, flush=True)\n"
              "time.sleep(120)\n")
    own = tmp_path / "run" / "tmp" / "rasa-1"
    process = Process("rasa", [sys.executable, "-c", writer], "http://127.0.0.1:1/", tmp_path / "run" / "rasa.log",
                      dict(os.environ), tmp_path, tmp_dir=own)

    def written() -> list:
        deadline = time.time() + 30
        while not (files := sorted(own.glob("left-*"))) and time.time() < deadline:
            time.sleep(0.05)
        return files

    try:
        process.start()
        first = written()
        assert len(first) == 1, "the process did not write into its own temporary folder"
        process.kill()
        assert first[0].exists(), "a SIGKILL should leave the file behind, as a crash does"

        process.start()
        second = written()
        assert first[0] not in second and not first[0].exists(), "the killed run's file outlived the restart"
    finally:  # never left sleeping after a failed assertion
        process.stop()
    assert not own.exists(), "a stopped process's temporary folder is still there"


def test_each_process_of_a_stack_gets_its_own_temporary_folder(tmp_path, monkeypatch):
    """In the run folder, absolute even where the run folder was given relative (EMOBOT_RUN_DIR=run):
    the processes run in the project's folder, where a relative TMPDIR would point elsewhere."""
    monkeypatch.chdir(tmp_path)
    stack = Stack.on_free_ports(Path("run"), model=tmp_path / "demo.tar.gz")  # built, not started
    folders = {process.name: process.tmp_dir for process in stack.build()}
    assert set(folders) == {"emotion service", "action server", "rasa"}
    assert len(set(folders.values())) == 3
    assert all(folder.parent == tmp_path / "run" / "tmp" for folder in folders.values()), folders
    assert folders["rasa"].name == f"rasa-{stack.settings.rasa_port}"


def test_paths_given_relative_reach_the_processes_from_where_the_stack_started(tmp_path, monkeypatch):
    """The processes run in the project's folder: EMOBOT_MODELS_DIR=mine, set where `emobot run` was
    typed, must name that folder's mine/, not the project's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMOBOT_MODELS_DIR", "mine")
    monkeypatch.setenv("EMOBOT_CENTERFACE", "detector/centerface.onnx")
    env = Stack.on_free_ports(Path("run"), model=tmp_path / "demo.tar.gz")._env()
    assert env["EMOBOT_MODELS_DIR"] == str(tmp_path / "mine")
    assert env["EMOBOT_CENTERFACE"] == str(tmp_path / "detector" / "centerface.onnx")
