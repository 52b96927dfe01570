"""scripts/face_readout_probe.py: the face read-outs measured for the card's Limits (KDEF3's angry
faces). Its figures need ../shared and half an hour of CPU; these tests check the pieces a wrong
figure would come from (that it starts and says which data is missing: test_face_scripts.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import face_readout_probe as probe  # noqa: E402

from emotion_sensing.labels import LABELS  # noqa: E402


def test_a_variant_moves_the_face_as_named():
    face = np.zeros((48, 48), np.float32)
    face[20:28, 20:28] = 1.0
    assert probe.warp(face, probe.VARIANTS["as is"]) is face
    down = probe.warp(face, probe.VARIANTS["down 2 px"])
    assert down[22:30, 20:28].min() == 1.0 and down[20:22, 20:28].max() == 0.0
    zoomed = probe.warp(face, probe.VARIANTS["zoom 1.15"])
    assert zoomed.sum() > face.sum() * 1.2  # the same square, larger
    assert np.allclose(zoomed[23:25, 23:25], 1.0)  # about the centre


def test_the_figures_count_what_they_name():
    angry, neutral, happy = (LABELS.index(label) for label in ("angry", "neutral", "happy"))

    def onehot(labels):
        return np.eye(len(LABELS))[labels]

    truth = {"PublicTest": np.array([angry, happy]), "PrivateTest": np.array([happy]),
             "wild": np.array([neutral, neutral, neutral, happy]), "kdef3": np.array([angry, angry, happy])}
    read = {"PublicTest": onehot([angry, neutral]), "PrivateTest": onehot([happy]),
            "wild": onehot([neutral, angry, neutral, happy]), "kdef3": onehot([angry, neutral, happy])}
    got = probe.scores(read, truth)
    assert got["publictest_accuracy"] == 0.5 and got["privatetest_accuracy"] == 1.0
    assert got["wild_neutral_read_angry"] == round(1 / 3, 4)
    assert got["kdef3_accuracy"] == round(2 / 3, 4)
    assert (got["kdef3_angry_read_angry"], got["kdef3_angry_faces"]) == (1, 2)
    assert got["select"] == round((0.5 + got["wild_macro_f1_5"]) / 2, 4)
