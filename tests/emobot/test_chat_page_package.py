"""An installed wheel serves the chat page: its files and the npm-installed socket.io client travel in it."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from emotion_sensing.service.web_routes import SOCKET_IO_CLIENT, WEB_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_the_chat_page_and_its_socketio_client(tmp_path):
    assert SOCKET_IO_CLIENT.is_file(), f"{SOCKET_IO_CLIENT} missing: run `make setup` (it runs npm ci)"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [wheel] = tmp_path.glob("emobot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    page = {f"emotion_sensing/service/web/{path.name}" for path in WEB_DIR.iterdir()
            if path.suffix in (".html", ".js", ".css")}
    assert {"emotion_sensing/service/web/index.html", "emotion_sensing/service/web/app.js"} <= page <= names
    assert "emotion_sensing/service/web/node_modules/socket.io-client/dist/socket.io.min.js" in names
    # Only the one client file, not the whole of node_modules.
    assert not [n for n in names if "node_modules" in n and not n.endswith("socket.io.min.js")]
