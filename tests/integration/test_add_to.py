"""`emobot add-to` on a fresh `rasa init` assistant: it becomes emotion-aware, stays valid,
and a second run changes nothing."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from ruamel.yaml import YAML

from emobot.chat import RasaRestClient
from emobot.stack import Stack

pytestmark = pytest.mark.integration

RASA = str(Path(sys.executable).parent / "rasa")
ANGRY_CHEER_UP = "Deep breath. I'm sorry things are rough - here is something to calm you down:"


def run(*command, cwd, timeout=600, **kwargs):
    result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def digest(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".emobot" not in p.parts and "models" not in p.parts and ".rasa" not in p.parts
    }


def test_add_to_a_fresh_rasa_init_assistant(tmp_path):
    project = tmp_path / "moodbot"
    project.mkdir()
    # What `rasa init --no-prompt` writes, without the model it trains (this test trains its own).
    run(sys.executable, "-c", "import sys; from rasa.cli.scaffold import create_initial_project as c; c(sys.argv[1])",
        str(project), cwd=project)
    assert (project / "domain.yml").exists() and (project / "data" / "stories.yml").exists()

    dry = run(sys.executable, "-m", "emobot", "add-to", str(project), "--dry-run", cwd=tmp_path)
    assert "+    - type: custom" in dry.stdout or "+      - type: custom" in dry.stdout
    assert "(dry run: nothing written)" in dry.stdout
    removed = [line for line in dry.stdout.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert removed == [], "the diff only adds: rasa init's lines stay as written, indentation included"
    before = digest(project)
    refused = subprocess.run([sys.executable, "-m", "emobot", "add-to", str(project)], cwd=tmp_path,
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert digest(project) == before, "neither --dry-run nor an unanswered prompt may write"

    applied = run(sys.executable, "-m", "emobot", "add-to", str(project), "--yes", cwd=tmp_path)
    assert "backed up" in applied.stdout
    backups = list((project / ".emobot").glob("backup-*/domain.yml"))
    assert backups and backups[0].read_bytes() == (tmp_path / "moodbot" / ".emobot" / backups[0].parent.name / "domain.yml").read_bytes()
    assert "# This file contains the different endpoints your bot can use." in (project / "endpoints.yml").read_text()

    after = digest(project)
    again = run(sys.executable, "-m", "emobot", "add-to", str(project), "--yes", cwd=tmp_path)
    assert "already emotion-aware" in again.stdout
    assert digest(project) == after, "a second add-to must change nothing"

    # The developer writes the angry wording of one stub.
    yaml = YAML(typ="rt")
    domain_path = project / "domain.yml"
    domain = yaml.load(domain_path.read_text())
    for variation in domain["responses"]["utter_cheer_up"]:
        if any(c.get("value") == "angry" for c in variation.get("condition", [])):
            variation["text"] = ANGRY_CHEER_UP
    with domain_path.open("w") as handle:
        yaml.dump(domain, handle)

    run(RASA, "data", "validate", cwd=project)
    run(RASA, "train", "--fixed-model-name", "emotion-aware", cwd=project, timeout=900)

    stack = Stack.on_free_ports(tmp_path / "run", project=project)
    stack.start(timeout=240)
    try:
        angry = RasaRestClient(stack.settings.rasa_url, f"angry-{uuid.uuid4().hex[:6]}")
        # As moodbot's stories go: a greeting first. A conversation that opens with mood_unhappy is
        # one its UnexpecTEDIntentPolicy may call unlikely, depending on how training went (5
        # December: action_unlikely_intent, then action_default_fallback, and moodbot has no
        # utter_default, so no reply at all).
        assert angry.send("hello")[0]["text"] == "Hey! How are you?"
        # The camera sees an angry face as the words come: the text alone reads this message as
        # anger, fear and disgust in similar measure (issue 15), and moodbot needs its own words
        # ("my day was horrible") to find mood_unhappy.
        face = requests.post(f"{stack.settings.service_listen_url}/v1/sessions/{angry.sender_id}/readings",
                             json={"modality": "face", "probs": {"angry": 0.95, "neutral": 0.05}, "confidence": 0.95},
                             timeout=10)
        assert face.status_code == 200, face.text
        replies = angry.send("I'm furious, my day was horrible")
        assert angry.slots()["user_emotion"] == "angry"
        assert replies[0]["text"] == ANGRY_CHEER_UP
        calm = RasaRestClient(stack.settings.rasa_url, f"calm-{uuid.uuid4().hex[:6]}")
        replies = calm.send("hello")
        assert calm.slots()["user_emotion"] == "neutral"
        assert replies[0]["text"] == "Hey! How are you?"
    finally:
        stack.stop()


def test_add_to_refuses_what_it_cannot_understand(tmp_path):
    def add_to(folder):
        return subprocess.run([sys.executable, "-m", "emobot", "add-to", str(folder), "--yes"],
                              capture_output=True, text=True, cwd=tmp_path)

    result = add_to(tmp_path / "missing")
    assert result.returncode == 2 and "is not a folder" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = add_to(empty)
    assert result.returncode == 2 and "does not look like a Rasa 3 project" in result.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "domain.yml").write_text("version: '3.1'\nresponses: [unclosed\n")
    (broken / "config.yml").write_text("policies: []\n")
    result = add_to(broken)
    assert result.returncode == 2 and "not valid YAML" in result.stderr
    old = tmp_path / "old"
    old.mkdir()
    (old / "domain.yml").write_text("version: '2.0'\nintents: [greet]\n")
    (old / "config.yml").write_text("policies: []\n")
    result = add_to(old)
    assert result.returncode == 2 and "Rasa 3.x" in result.stderr
    for result in (add_to(empty), add_to(broken), add_to(old)):
        assert "Traceback" not in result.stderr
