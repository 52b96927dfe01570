"""A throwaway PostgreSQL server on loopback, from the Debian package's initdb and pg_ctl.

PostgreSQL refuses to run as root, so as root the server runs as the package's
``postgres`` user (through runuser) in a temporary folder that user owns.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from emobot.stack import free_port

SERVER_USER = "postgres"
DB_USER = "emobot"


def find_bin_dir() -> Optional[Path]:
    """The newest /usr/lib/postgresql/*/bin with initdb, else initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable_reason() -> Optional[str]:
    """Why a local server cannot be started here, or None if it can."""
    if find_bin_dir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


class LocalPostgres:
    """initdb + pg_ctl start on a free loopback port; :meth:`stop` removes everything."""

    def __init__(self, database: str = "rasa") -> None:
        self.bin_dir = find_bin_dir()
        self.port = free_port()
        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix="emobot-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        argv: List[str] = [str(self.bin_dir / command[0]), *command[1:]]
        if self._as_root:
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.root)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}{log}")
        return result

    def start(self) -> LocalPostgres:
        self._run("initdb", "-D", str(self.data), "-U", DB_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")
        self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg2

        deadline = time.time() + 30
        while True:
            try:
                connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=DB_USER, dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.database}"')
        connection.close()

    @property
    def url(self) -> str:
        """SQLAlchemy URL, as `emobot replay --store` takes it."""
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{self.database}"

    def tracker_store(self) -> dict:
        """The endpoints.yml tracker_store block for Rasa's SQL tracker store."""
        return {"type": "SQL", "dialect": "postgresql", "url": "127.0.0.1", "port": self.port,
                "db": self.database, "username": DB_USER}

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)
