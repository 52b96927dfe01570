"""A throwaway redis-server (Debian's package) on a free loopback port, nothing on disk."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from typing import Optional

from emobot.stack import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def unavailable_reason() -> Optional[str]:
    if shutil.which(REDIS_SERVER) is None:
        return "redis-server not installed (apt-get install redis-server)"
    return None


class LocalRedis:
    """``LocalRedis().start()``; :attr:`url` for redis-py, :meth:`lock_store` for Rasa."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="emobot-redis-")
        self.process: Optional[subprocess.Popen] = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def lock_store(self, db: int = 1) -> dict:
        """The endpoints.yml lock_store block of the plugin's atomic Redis lock store on this server."""
        return {"type": "emobot.lock_store.RedisLockStore", "url": "127.0.0.1", "port": self.port, "db": db,
                "key_prefix": "emobot"}

    def start(self) -> LocalRedis:
        import redis

        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.folder, "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url())
        deadline = time.time() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.1)
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)
