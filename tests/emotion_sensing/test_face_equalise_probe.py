"""scripts/face_equalise_probe.py: histogram equalisation of the face, measured for the card's Limits.
Its figures need ../shared and minutes of CPU; these tests check that it starts and explains
itself, that missing data is a message, and that a variant remaps the face as named."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import face_equalise_probe as probe  # noqa: E402


def test_the_script_explains_itself_and_says_which_data_is_missing(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPTS / "face_equalise_probe.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--data" in done.stdout and ".venv/bin/python scripts/face_equalise_probe.py" in done.stdout
    (tmp_path / "kdef3").mkdir()
    done = subprocess.run([sys.executable, str(SCRIPTS / "face_equalise_probe.py"), "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "faces_in_the_wild not found in" in done.stderr and "--data" in done.stderr


def test_a_variant_remaps_the_face_and_as_is_leaves_it():
    face = np.linspace(100, 140, 48 * 48, dtype=np.float32).reshape(48, 48)  # a dim, flat face
    assert probe.remapped(face, probe.VARIANTS["as is"]) is face
    for name in ("equalizeHist", "CLAHE 2.0, 4x4"):
        out = probe.remapped(face, probe.VARIANTS[name])
        assert out.dtype == np.float32 and out.shape == face.shape
        assert np.ptp(out) > np.ptp(face) * 1.5, name  # contrast stretched (CLAHE within its clip limit)
