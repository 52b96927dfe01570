"""scripts/face_equalise_probe.py: histogram equalisation of the face, measured for the card's Limits.
Its figures need ../shared and minutes of CPU; this checks that a variant remaps the face as named
(that it starts and says which data is missing: test_face_scripts.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import face_equalise_probe as probe  # noqa: E402


def test_a_variant_remaps_the_face_and_as_is_leaves_it():
    face = np.linspace(100, 140, 48 * 48, dtype=np.float32).reshape(48, 48)  # a dim, flat face
    assert probe.remapped(face, probe.VARIANTS["as is"]) is face
    for name in ("equalizeHist", "CLAHE 2.0, 4x4"):
        out = probe.remapped(face, probe.VARIANTS[name])
        assert out.dtype == np.float32 and out.shape == face.shape
        assert np.ptp(out) > np.ptp(face) * 1.5, name  # contrast stretched (CLAHE within its clip limit)
