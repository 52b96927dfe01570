"""A built wheel holds the plugin and nothing that would clash with an assistant's own code."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contents(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [wheel] = tmp_path.glob("emobot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.startswith("emobot-")}
    assert {"emotion_sensing", "emobot"} <= top_level
    assert not top_level & {"actions", "bot", "tests", "data"}, top_level
    for module in ("emobot/actions.py", "emobot/policy.py", "emobot/cli.py", "emotion_sensing/service/app.py"):
        assert module in names
    assert any(name.endswith("data/share/emobot/models/text_emotion.npz") for name in names)
    assert "emotion_sensing/service/web/emobot-sensing.js" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "emobot = emobot.cli:main" in entry_points
