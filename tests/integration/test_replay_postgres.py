"""Replay works on PostgreSQL too: a real Rasa stores a conversation in a throwaway local
PostgreSQL server, and `emobot replay --store postgresql://...` reads it back annotated."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from emobot.chat import RasaRestClient

pytestmark = pytest.mark.integration


def emobot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emobot", *args], capture_output=True, text=True, timeout=120)


def test_a_conversation_stored_in_postgresql_replays_with_its_emotions(postgres_stack):
    pg_stack, postgres = postgres_stack  # conftest.py: shared with test_faults
    client = RasaRestClient(pg_stack.settings.rasa_url, f"pg-{uuid.uuid4().hex[:8]}")
    # A calm question, then anger (in this order the fused labels do not hang on the mood)
    first = client.send("Could you tell me where my order is?")
    second = client.send("I'm furious, my order never arrived and nobody answers")
    assert first and second

    listed = emobot("replay", "--list", "--store", postgres.url, "--json")
    assert listed.returncode == 0, listed.stderr
    assert client.sender_id in [c["sender_id"] for c in json.loads(listed.stdout)]

    result = emobot("replay", client.sender_id, "--store", postgres.url, "--json")
    assert result.returncode == 0, result.stderr
    turns = json.loads(result.stdout)["turns"]
    assert [t["text"] for t in turns] == [
        "Could you tell me where my order is?",
        "I'm furious, my order never arrived and nobody answers",
    ]
    assert [t["emotion"]["label"] for t in turns] == ["neutral", "angry"]
    assert turns[1]["emotion"]["reading"]["contributions"][0]["modality"] == "text"
    assert [r["text"] for r in turns[0]["replies"]] == [r["text"] for r in first]
    assert [r["text"] for r in turns[1]["replies"]] == [r["text"] for r in second]

    terminal = emobot("replay", client.sender_id, "--store", postgres.url)
    assert terminal.returncode == 0 and "angry" in terminal.stdout and second[0]["text"] in terminal.stdout

    missing = emobot("replay", "nobody-here", "--store", postgres.url)
    assert missing.returncode == 2 and "no conversation with sender id 'nobody-here'" in missing.stderr
