"""Start, watch and stop the three processes of the stack: emotion service, action
server and Rasa. Used by `emobot run`, `emobot bench turn` and the integration tests."""
from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Set, Union

import yaml

from emobot.paths import DEMO_DIR, latest_rasa_model
from emotion_sensing.config import Settings, is_loopback
from emotion_sensing.processes import die_with_parent_hook, free_port
from emotion_sensing.replay import ReplayError, store_url


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_taken(host: str, port: int) -> bool:
    """Whether a server could not listen on (host, port) now (as the stack's servers bind:
    SO_REUSEADDR, so a closed connection's TIME_WAIT does not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            return error.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def _listening_inodes(port: int) -> Set[str]:
    """Socket inodes listening on ``port`` (any address), from Linux's /proc/net tables."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXADDR:HEXPORT; state 0A is LISTEN
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def listening_pids(port: int) -> Optional[List[int]]:
    """The processes holding a listening socket on ``port``; None where this cannot be told
    (no /proc, as on macOS). Processes of other users may be invisible: then []."""
    if not Path("/proc/net/tcp").exists():
        return None
    inodes = _listening_inodes(port)
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and any(_link(fd) in wanted for fd in _fds(entry)):
            pids.append(int(entry.name))
    return sorted(pids)


def _fds(process: Path) -> List[Path]:
    """A process's open descriptors; none where it is gone or not ours to look at."""
    try:
        return list((process / "fd").iterdir())
    except OSError:
        return []


def _link(fd: Path) -> str:
    """What a descriptor points at; "" where it closed meanwhile (a busy process opens and
    closes descriptors while we look: one that closed must not hide the socket beside it)."""
    try:
        return os.readlink(fd)
    except OSError:
        return ""


def describe_process(pid: int) -> str:
    """``pid 123 (python -m emotion_sensing.service ...)`` as far as /proc tells."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        command = " ".join(a.decode(errors="replace") for a in argv if a)
    except OSError:
        command = ""
    if len(command) > 120:
        command = command[:117] + "..."
    return f"pid {pid} ({command})" if command else f"pid {pid}"


def _parent_pid(pid: int) -> Optional[int]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is ``ancestor`` or one of its descendants."""
    seen = 0
    while pid and seen < 64:
        if pid == ancestor:
            return True
        pid, seen = _parent_pid(pid), seen + 1
    return False


@dataclass
class Process:
    name: str
    command: List[str]
    health_url: str
    log_path: Path
    env: Dict[str, str]
    cwd: Path = DEMO_DIR
    popen: Optional[subprocess.Popen] = None
    host: str = "127.0.0.1"
    port: Optional[int] = None
    # The process's TMPDIR, its own: TensorFlow writes ~40 autograph files there at start-up and
    # removes them at exit, which a SIGKILL skips. Emptied at each start (an earlier run of it,
    # killed, left them) and removed when it stops; None keeps the caller's TMPDIR.
    tmp_dir: Optional[Path] = None

    def start(self) -> None:
        """Start the process. It dies with the thread that started it (PR_SET_PDEATHSIG), so
        start it from one that lives as long as the stack (the main thread)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = self.env
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir.mkdir(parents=True)
            env = {**env, **{name: str(self.tmp_dir) for name in ("TMPDIR", "TMP", "TEMP")}}
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.command, cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent_hook(),
        )

    def owns_port(self) -> Optional[bool]:
        """Whether the socket listening on this process's port belongs to it (or a child of
        it); None where that cannot be told."""
        if self.port is None or self.popen is None:
            return None
        pids = listening_pids(self.port)
        if pids is None or not pids:
            return None if pids is None else False
        return any(descends_from(pid, self.popen.pid) for pid in pids)

    def ready(self) -> bool:
        """Healthy, and the answer came from this process rather than whatever else listens."""
        if not http_ok(self.health_url):
            return False
        return self.owns_port() is not False

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no clean shutdown."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM to the process group, without waiting."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``timeout``; then its temporary folder goes,
        whatever it left there (a process that had died already included)."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        if self.tmp_dir is not None and self.popen is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class StackError(RuntimeError):
    """A process of the stack failed to start."""


class Listener(NamedTuple):
    """Where one of the stack's processes will listen."""

    name: str
    host: str
    port: int
    component: str


# The variables the stack's processes read as paths (emotion_sensing/config.py's table).
PATH_VARIABLES = ("EMOBOT_MODELS_DIR", "EMOBOT_CENTERFACE")

# Where each process's port is chosen (emotion_sensing.config.Settings.from_env reads these).
PORT_ENV = {"emotion service": "EMOBOT_SERVICE_PORT", "action server": "EMOBOT_ACTIONS_PORT",
            "rasa": "EMOBOT_RASA_PORT"}


@dataclass
class Stack:
    """The three processes of one assistant (the demo by default), configured from one
    Settings object."""

    settings: Settings = field(default_factory=Settings.from_env)
    run_dir: Optional[Path] = None
    project: Path = DEMO_DIR
    model: Optional[Path] = None
    tracker_db: Optional[Path] = None
    # A whole endpoints.yml tracker_store block (e.g. PostgreSQL); wins over tracker_db.
    tracker_store: Optional[dict] = None
    # An endpoints.yml lock_store block (e.g. Redis), for several Rasa servers on one store.
    lock_store: Optional[dict] = None
    # The action server of another stack, for a stack without one of its own.
    shared_actions_url: Optional[str] = None
    components: tuple = ("service", "actions", "rasa")
    processes: List[Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.project = Path(self.project).resolve()
        # Absolute, from the folder the stack was started in: the processes run in the project's folder,
        # where a relative path (EMOBOT_RUN_DIR=run, given from elsewhere) would name another folder, and
        # Rasa, missing its endpoints.yml there, would fall back to the project's (other ports, other store).
        self.run_dir = Path(self.run_dir).absolute() if self.run_dir else self.project / ".emobot"
        if self.tracker_db is not None:
            self.tracker_db = Path(self.tracker_db).absolute()

    @classmethod
    def on_free_ports(cls, run_dir: Path, **kwargs) -> Stack:
        """A stack on fresh loopback ports with its own tracker database, for tests and benches."""
        settings = replace(
            Settings.from_env(),
            host="127.0.0.1",
            rasa_port=free_port(),
            actions_port=free_port(),
            service_port=free_port(),
            service_url_override=None,
        )
        return cls(settings=settings, run_dir=Path(run_dir), tracker_db=Path(run_dir) / "tracker.db", **kwargs)

    def _env(self) -> Dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update(
            EMOBOT_HOST=s.host,
            EMOBOT_RASA_PORT=str(s.rasa_port),
            EMOBOT_ACTIONS_PORT=str(s.actions_port),
            EMOBOT_SERVICE_PORT=str(s.service_port),
            # The stack starts the service itself, so its address is known (endpoints.yml aside).
            EMOBOT_SERVICE_URL=s.service_listen_url,
            EMOBOT_TIME_BUDGET_MS=str(s.time_budget_ms),
            PYTHONUNBUFFERED="1",
            TF_CPP_MIN_LOG_LEVEL="2",
            # rasa_sdk listens on 0.0.0.0 unless told otherwise; it has no authentication.
            SANIC_HOST=s.actions_host,
        )
        if s.service_token:  # the service requires it, the action server sends it
            env["EMOBOT_SERVICE_TOKEN"] = s.service_token
        # Rasa's TensorFlow models on one thread each: a turn's prediction then never waits for a
        # second core that another process holds (at 50 conversations on 2 cores: Rasa's wait for
        # a core 18.1 -> 8.6 s a minute, its CPU 38.9 -> 30.9 s, turn p95 2.8 -> 0.46 s).
        for variable in ("TF_INTER_OP_PARALLELISM_THREADS", "TF_INTRA_OP_PARALLELISM_THREADS"):
            env.setdefault(variable, "1")
        # Paths given relative are read from the folder the stack was started in, as run_dir is: the
        # processes run in the project's folder.
        for variable in PATH_VARIABLES:
            if env.get(variable):
                env[variable] = str(Path(env[variable]).absolute())
        env["EMOBOT_MODALITIES"] = ",".join(s.modalities)
        env["EMOBOT_SESSION_STORE"] = s.session_store
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.project), env.get("PYTHONPATH")]))
        # The service's /replay pages read the tracker store this stack's Rasa writes.
        try:
            env["EMOBOT_TRACKER_STORE_URL"] = store_url(self.tracker_store_config(), self.project)
        except ReplayError:
            env.pop("EMOBOT_TRACKER_STORE_URL", None)  # not an SQL store: no replay pages
        return env

    def endpoints(self) -> dict:
        """The project's endpoints with this stack's action server URL and tracker database."""
        source = self.project / "endpoints.yml"
        endpoints = (yaml.safe_load(source.read_text()) if source.exists() else None) or {}
        if "actions" in self.components:
            endpoints["action_endpoint"] = {"url": f"{self.settings.actions_url}/webhook"}
        elif self.shared_actions_url:
            endpoints["action_endpoint"] = {"url": f"{self.shared_actions_url.rstrip('/')}/webhook"}
        else:
            endpoints.pop("action_endpoint", None)
        if self.lock_store is not None:
            endpoints["lock_store"] = dict(self.lock_store)
        elif self.settings.rasa_workers > 1 and "lock_store" not in endpoints:
            # Several Rasa processes on one port need one lock store: files beside the run.
            endpoints["lock_store"] = {"type": "emobot.lock_store.FileLockStore", "path": str(self._own_locks)}
        if self.tracker_store is not None:
            endpoints["tracker_store"] = dict(self.tracker_store)
        elif self.tracker_db is not None:
            endpoints["tracker_store"] = {"type": "SQL", "dialect": "sqlite", "db": str(self.tracker_db)}
        return endpoints

    def endpoints_file(self) -> Path:
        """:meth:`endpoints` written where Rasa can be pointed at it."""
        path = self.run_dir / "endpoints.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.endpoints(), sort_keys=False))
        return path

    def check_exposure(self) -> None:
        """Off loopback, refuse to start what anyone on the network could talk to unauthenticated."""
        s = self.settings
        if is_loopback(s.host):
            return
        needed = [name for name, value in (("EMOBOT_SERVICE_TOKEN", s.service_token),
                                           ("EMOBOT_SOCKETIO_JWT_KEY", s.socketio_jwt_key),
                                           ("EMOBOT_RASA_TOKEN", s.rasa_token)) if not value]
        if needed:
            raise StackError(
                f"refusing to listen on {s.host}: off loopback the stack needs {', '.join(needed)} "
                "(a token for the emotion service, the key of the JWTs socket.io clients present, a token for "
                "Rasa's HTTP API; e.g. `export EMOBOT_SERVICE_TOKEN=$(openssl rand -hex 32)`), or listen on "
                "127.0.0.1 (EMOBOT_HOST)")

    def credentials_file(self) -> Path:
        """The project's credentials.yml; off loopback a copy whose socket.io channel wants a JWT
        and without the REST channel, which has no authentication of its own."""
        source = self.project / "credentials.yml"
        if is_loopback(self.settings.host):
            return source
        credentials = (yaml.safe_load(source.read_text()) if source.exists() else None) or {}
        credentials.pop("rest", None)
        for name in list(credentials):
            if name.rsplit(".", 1)[-1] in ("SocketIOInput", "socketio"):
                credentials[name] = {**(credentials[name] or {}), "jwt_key": self.settings.socketio_jwt_key,
                                     "jwt_method": "HS256"}
        path = self.run_dir / "credentials.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(credentials, sort_keys=False))
        return path

    def tracker_store_config(self) -> dict:
        return self.endpoints().get("tracker_store") or {}

    def build(self) -> List[Process]:
        s = self.settings
        env = self._env()
        python = sys.executable
        bin_dir = Path(python).parent
        rasa = str(bin_dir / "rasa")
        model = self.model or latest_rasa_model(self.project)
        self.check_exposure()
        where = {listener.component: listener for listener in self.listeners()}
        processes = []
        if "service" in self.components:
            processes.append(Process(
                "emotion service",
                [python, "-m", "emotion_sensing.service", "--host", s.host, "--port", str(s.service_port)],
                f"{s.service_listen_url}/health",
                self.run_dir / "service.log",
                env,
                self.project,
                host=where["service"].host,
                port=where["service"].port,
                tmp_dir=self._tmp_dir(where["service"]),
            ))
        if "actions" in self.components:
            processes.append(
                Process(
                    "action server",
                    [rasa, "run", "actions", "--actions", "actions", "--port", str(s.actions_port)],
                    f"{s.actions_url}/health",
                    self.run_dir / "actions.log",
                    env,
                    host=where["actions"].host,
                    port=where["actions"].port,
                    tmp_dir=self._tmp_dir(where["actions"]),
                )
            )
        if "rasa" in self.components:
            auth = ["--auth-token", s.rasa_token] if s.rasa_token else []
            command = [rasa, "run", "--enable-api", *auth, "--model", str(model),
                       "--endpoints", str(self.endpoints_file()), "--credentials", str(self.credentials_file()),
                       "--cors", "*"]
            if s.rasa_workers > 1:  # emobot.front: sticky socket.io sessions across the processes
                command = [python, "-m", "emobot.front", "--host", s.host, "--port", str(s.rasa_port),
                           "--processes", str(s.rasa_workers), "--", *command]
            else:
                command += ["--interface", s.host, "--port", str(s.rasa_port)]
            processes.append(Process(
                "rasa",
                command,
                f"{s.rasa_url}/status" + (f"?token={s.rasa_token}" if s.rasa_token else ""),
                self.run_dir / "rasa.log",
                {**env, "SANIC_WORKERS": "1"},
                self.project,
                host=where["rasa"].host,
                port=where["rasa"].port,
                tmp_dir=self._tmp_dir(where["rasa"]),
            ))
        return processes

    def _tmp_dir(self, listener: Listener) -> Path:
        """A process's own temporary folder, by component and port: two stacks on one run folder
        listen on different ports (check_ports), so neither empties the other's."""
        return self.run_dir / "tmp" / f"{listener.component}-{listener.port}"

    def listeners(self) -> List[Listener]:
        """The name, host and port of each process this stack would start."""
        s = self.settings
        every = [Listener("emotion service", s.host, s.service_port, "service"),
                 Listener("action server", s.actions_host, s.actions_port, "actions"),
                 Listener("rasa", s.host, s.rasa_port, "rasa")]
        return [listener for listener in every if listener.component in self.components]

    def check_ports(self, processes: Iterable[Union[Process, Listener]]) -> None:
        """Refuse to start anything if a port is taken: say which, by whom, and what to do."""
        problems = []
        for process in processes:
            if process.port is None or not port_taken(process.host, process.port):
                continue
            pids = listening_pids(process.port)
            holder = ", ".join(describe_process(pid) for pid in pids) if pids else "a process this user cannot see"
            free = (f"stop it (kill {' '.join(map(str, pids))})" if pids else "stop it")
            problems.append(f"port {process.port} ({process.name}) is taken by {holder}: {free}, "
                            f"or choose another port with {PORT_ENV[process.name]}=N")
        if problems:
            raise StackError("nothing was started:\n  " + "\n  ".join(problems))

    def start(self, timeout: float = 180.0, progress=None) -> None:
        """Start every process and wait until each answers its health URL from its own socket.

        Nothing starts while one of the ports is taken (an orphan of an earlier run, say): a
        health answer from whatever holds the port must not pass for ours."""
        self.launch()
        self.wait_ready(timeout, progress)

    def launch(self) -> None:
        """Start every process without waiting for it (``wait_ready`` waits): several stacks
        launched one after the other start side by side. Call from the thread that will stop
        them: the processes die with the thread that started them."""
        self.check_ports(self.listeners())  # before anything else, the Rasa model's lookup included
        processes = self.build()
        self.processes = processes
        self._clear_file_locks()
        for process in self.processes:
            process.start()

    def wait_ready(self, timeout: float = 180.0, progress=None) -> None:
        """Wait until each launched process answers its health URL; stop the stack and raise
        StackError if one exits or ``timeout`` passes first."""
        deadline = time.time() + timeout
        waiting = list(self.processes)
        while waiting:
            for process in list(waiting):
                if not process.alive():
                    self.stop()
                    raise StackError(f"{process.name} exited during start-up:\n{process.log_tail()}")
                if process.ready():
                    waiting.remove(process)
                    if progress:
                        progress(f"{process.name} ready ({process.health_url})")
            if time.time() > deadline:
                names = ", ".join(p.name for p in waiting)
                self.stop()
                raise StackError(f"timed out after {timeout:.0f} s waiting for {names}")
            time.sleep(0.3)

    @property
    def _own_locks(self) -> Path:
        """The file lock store the stack gives several Rasa processes when none is configured."""
        return self.run_dir / "locks"

    def _clear_file_locks(self) -> None:
        """Before Rasa starts, no turn of it can be in progress: a ticket left in the stack's own
        file lock store by a Rasa killed mid-turn would only hold its conversation until it
        expired. (A lock store named in endpoints.yml may be shared: it is left alone.)"""
        own = self._own_locks
        if "rasa" in self.components and (self.endpoints().get("lock_store") or {}).get("path") == str(own):
            for stale in own.glob("*.json"):
                stale.unlink(missing_ok=True)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to all at once, then wait (SIGKILL after ``timeout``): a caller that gives
        the stack a few seconds to stop gets all of it stopped."""
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            process.stop(timeout)

    def process(self, name: str) -> Process:
        """One of the started processes by name ("emotion service", "action server", "rasa")."""
        for process in self.processes:
            if process.name == name:
                return process
        raise KeyError(name)

    def stop_process(self, name: str) -> None:
        self.process(name).stop()

    def restart_process(self, name: str, timeout: float = 180.0) -> None:
        """Start a stopped or killed process again and wait until it is healthy."""
        process = self.process(name)
        process.stop()
        # The process is gone, but its children (Rasa's worker processes) may still be dying with
        # the port in their hands for a moment.
        settle = time.time() + 10
        while process.port is not None and port_taken(process.host, process.port) and time.time() < settle:
            time.sleep(0.1)
        self.check_ports([process])
        if name == "rasa":
            self._clear_file_locks()
        process.start()
        deadline = time.time() + timeout
        while not process.ready():
            if not process.alive():
                raise StackError(f"{name} exited during restart:\n{process.log_tail()}")
            if time.time() > deadline:
                raise StackError(f"timed out after {timeout:.0f} s waiting for {name} to restart")
            time.sleep(0.3)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
