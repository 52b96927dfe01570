"""The face measurement scripts (scripts/face_*_probe.py) and what they share
(scripts/face_protocol.py): each starts and explains itself, and missing data is a message."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.mark.parametrize("script, present, said", [
    ("face_readout_probe.py", "fer2013", "faces_in_the_wild, kdef3 not found in"),
    ("face_equalise_probe.py", "kdef3", "faces_in_the_wild not found in"),
])
def test_the_script_explains_itself_and_says_which_data_is_missing(tmp_path, script, present, said):
    done = subprocess.run([sys.executable, str(SCRIPTS / script), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--data" in done.stdout and "--json" in done.stdout
    assert ".venv/bin/python scripts/" + script in done.stdout
    (tmp_path / present).mkdir()
    done = subprocess.run([sys.executable, str(SCRIPTS / script), "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{script}: {said}" in done.stderr and "--data" in done.stderr
