"""Replay reads the SQL tracker store: known, unknown, empty and corrupted conversations."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from emotion_sensing.replay import ReplayError, TrackerReader, format_turns, replay, store_url

USER = {"event": "user", "text": "I'm furious", "parse_data": {"intent": {"name": "complaint"}}}
SLOTS = [
    {"event": "slot", "name": "user_emotion", "value": "angry"},
    {"event": "slot", "name": "emotion_confidence", "value": 0.8},
    {"event": "slot", "name": "emotion_valence", "value": -0.7},
    {
        "event": "slot",
        "name": "emotion_reading",
        "value": {"sensing": "ok", "contributions": [{"modality": "text", "label": "angry", "share": 1.0}]},
    },
]
BOT = [
    {"event": "action", "name": "utter_complaint", "policy": "RulePolicy"},
    {"event": "bot", "text": "I'm truly sorry.", "metadata": {"utter_action": "utter_complaint"}},
]


def make_store(path, conversations):
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, timestamp REAL,"
        " intent_name TEXT, action_name TEXT, data TEXT)"
    )
    for sender, events in conversations.items():
        for i, event in enumerate(events):
            data = event if isinstance(event, str) else json.dumps({**event, "timestamp": 1000.0 + i})
            kind = "corrupt" if isinstance(event, str) else event["event"]
            connection.execute(
                "INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, ?, ?, ?)",
                (sender, kind, 1000.0 + i, data),
            )
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def test_a_turn_with_its_emotion_and_reply(tmp_path):
    url = make_store(tmp_path / "t.db", {"alice": [USER, *SLOTS, *BOT]})
    [turn] = replay("alice", url)
    assert turn.text == "I'm furious" and turn.intent == "complaint"
    assert turn.emotion["label"] == "angry" and turn.emotion["confidence"] == 0.8
    assert turn.replies == [{"text": "I'm truly sorry.", "action": "utter_complaint", "policy": "RulePolicy"}]
    text = format_turns("alice", [turn])
    assert "angry 0.80" in text and "text angry (100%)" in text and "I'm truly sorry." in text


def test_unknown_id_empty_store_and_missing_file_say_so(tmp_path):
    url = make_store(tmp_path / "t.db", {"alice": [USER]})
    with pytest.raises(ReplayError, match="no conversation with sender id 'bob'"):
        replay("bob", url)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(ReplayError, match="empty"):
        replay("alice", f"sqlite:///{empty}")
    assert TrackerReader(f"sqlite:///{empty}").conversations() == []
    with pytest.raises(ReplayError, match="does not exist"):
        TrackerReader(f"sqlite:///{tmp_path / 'nope.db'}")


def test_a_corrupted_event_is_reported_not_fatal(tmp_path):
    url = make_store(tmp_path / "t.db", {"alice": [USER, "{broken json", *SLOTS, *BOT]})
    [turn] = replay("alice", url)
    assert turn.emotion["label"] == "angry"
    assert any("could not be read" in (r.get("warning") or "") for r in turn.replies)
    assert "could not be read" in format_turns("alice", [turn])


def test_listing_conversations(tmp_path):
    url = make_store(tmp_path / "t.db", {"alice": [USER, *BOT], "bob": [USER, USER]})
    listed = {c["sender_id"]: c["user_turns"] for c in TrackerReader(url).conversations()}
    assert listed == {"alice": 1, "bob": 2}


def test_store_url_from_endpoints(tmp_path):
    assert store_url({"type": "SQL", "dialect": "sqlite", "db": "x.db"}, tmp_path) == f"sqlite:///{tmp_path / 'x.db'}"
    pg = store_url({"type": "SQL", "dialect": "postgresql", "url": "127.0.0.1", "port": 5432,
                    "db": "rasa", "username": "u", "password": "p"}, tmp_path)
    assert pg == "postgresql+psycopg2://u:p@127.0.0.1:5432/rasa"
    with pytest.raises(ReplayError):
        store_url({"type": "redis"}, tmp_path)


def test_replay_command_exit_codes(tmp_path):
    url = make_store(tmp_path / "t.db", {"alice": [USER, *SLOTS, *BOT]})
    ok = subprocess.run([sys.executable, "-m", "emobot", "replay", "alice", "--store", url], capture_output=True, text=True)
    assert ok.returncode == 0 and "I'm truly sorry." in ok.stdout
    as_json = subprocess.run([sys.executable, "-m", "emobot", "replay", "alice", "--store", url, "--json"],
                             capture_output=True, text=True)
    assert json.loads(as_json.stdout)["turns"][0]["emotion"]["label"] == "angry"
    missing = subprocess.run([sys.executable, "-m", "emobot", "replay", "bob", "--store", url], capture_output=True, text=True)
    assert missing.returncode == 2
    assert "no conversation with sender id 'bob'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_replay_of_a_long_conversation_shows_every_turn(tmp_path):
    # How fast is `emobot bench replay`'s job (a timed test would depend on the CPU).
    events = []
    for _ in range(200):
        events += [USER, *SLOTS, *BOT]
    url = make_store(tmp_path / "t.db", {"long": events})
    turns = replay("long", url)
    text = format_turns("long", turns)
    assert len(turns) == 200
    assert text.count("angry") >= 200


def test_the_other_slots_set_at_a_turn_are_shown(tmp_path):
    """A rating (or a form's answer) set at a turn shows beside its emotion: the demo keeps the stars
    in a slot, and replay showed only the emotion slots."""
    rating = {"event": "user", "text": '/rate{"rating": "4"}', "parse_data": {"intent": {"name": "rate"}}}
    events = [USER, *SLOTS, *BOT, rating, {"event": "slot", "name": "rating", "value": "4"},
              {"event": "slot", "name": "notes", "value": {"long": "x" * 200}}]
    url = make_store(tmp_path / "t.db", {"alice": events})
    first, second = replay("alice", url)
    assert first.slots == {} and second.slots == {"rating": "4", "notes": {"long": "x" * 200}}
    text = format_turns("alice", [first, second])
    assert "\n     set: rating = 4, notes = {\"long\": \"xxx" in text and "x…" in text
    assert text.count("set:") == 1
    assert second.to_dict()["slots"]["rating"] == "4"


def test_csv_and_html_exports(tmp_path):
    import csv as csv_module

    url = make_store(tmp_path / "t.db", {"alice": [USER, *SLOTS, *BOT, USER, *BOT,
                                                    {"event": "slot", "name": "rating", "value": "2"}]})
    html_path, csv_path = tmp_path / "r.html", tmp_path / "r.csv"
    result = subprocess.run([sys.executable, "-m", "emobot", "replay", "alice", "--store", url,
                             "--html", str(html_path), "--csv", str(csv_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = list(csv_module.DictReader(csv_path.open()))
    assert [r["emotion"] for r in rows] == ["angry", ""]
    assert rows[0]["contributions"] == "text:angry:1.00" and rows[0]["bot"] == "I'm truly sorry."
    assert [r["slots"] for r in rows] == ["", '{"rating": "2"}']
    page = html_path.read_text()
    assert "<div class='set'>set: rating = 2</div>" in page
    assert '<svg id="timeline"' in page and page.count('class="turn"') == 2
    assert "I&#x27;m furious" in page and "http" not in page.split("<body>")[1].replace("http://www.w3.org/2000/svg", "")


def run_replay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emobot", "replay", *args], capture_output=True, text=True)


def test_a_store_that_cannot_be_reached_or_read_says_so(tmp_path):
    from tests.integration.helpers import closed_port

    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("these are not the events you are looking for\n" * 100)
    cases = [
        (["alice", "--store", f"postgresql://rasa:secret@127.0.0.1:{closed_port()}/rasa"], "cannot read the tracker store"),
        (["--list", "--store", f"postgresql://rasa:secret@127.0.0.1:{closed_port()}/rasa"], "cannot read the tracker store"),
        (["alice", "--store", "redis://localhost/0"], "cannot use tracker store URL"),
        (["alice", "--store", "not a url"], "cannot use tracker store URL"),
        (["alice", "--store", f"sqlite:///{not_a_db}"], "cannot read the tracker store"),
    ]
    for args, message in cases:
        result = run_replay(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
        assert "secret" not in result.stderr  # the password is masked


def test_events_with_wrong_types_are_reported_and_the_rest_replays(tmp_path):
    bad = [
        {"event": "slot", "name": "emotion_confidence", "value": "very"},
        {"event": "slot", "name": "emotion_reading", "value": {"contributions": [{"modality": "face"}]}},
        {"event": "user", "text": 42},
    ]
    url = make_store(tmp_path / "t.db", {"alice": [USER, *SLOTS[:1], *bad, *SLOTS[2:3], *BOT]})
    [turn] = replay("alice", url)
    warnings = [r["warning"] for r in turn.replies if r.get("warning")]
    assert len(warnings) == 3 and all("could not be read" in w for w in warnings)
    assert turn.emotion["label"] == "angry" and turn.emotion["valence"] == -0.7
    assert [r["text"] for r in turn.replies if r.get("text")] == ["I'm truly sorry."]
    for args in ([], ["--json"], ["--html", str(tmp_path / "r.html"), "--csv", str(tmp_path / "r.csv")]):
        result = run_replay("alice", "--store", url, *args)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "could not be read" in run_replay("alice", "--store", url).stdout


def test_a_turn_sensed_as_unknown_has_no_valence_and_still_replays(tmp_path):
    unknown = [
        {"event": "slot", "name": "user_emotion", "value": "unknown"},
        {"event": "slot", "name": "emotion_confidence", "value": 0.0},
        {"event": "slot", "name": "emotion_valence", "value": None},
        {"event": "slot", "name": "emotion_reading", "value": {"sensing": "unavailable (timeout)", "contributions": []}},
    ]
    url = make_store(tmp_path / "t.db", {"alice": [USER, *unknown, *BOT, USER, *SLOTS, *BOT]})
    result = run_replay("alice", "--store", url, "--html", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stderr
    text = run_replay("alice", "--store", url).stdout
    assert "unknown 0.00 [sensing: unavailable (timeout)]" in text and "angry 0.80, valence -0.70" in text


def test_the_list_names_each_conversation_with_its_turns(tmp_path):
    url = make_store(tmp_path / "t.db", {"alice": [USER, *SLOTS, *BOT], "bob": [USER, *BOT, USER, *BOT]})
    result = run_replay("--list", "--store", url)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "   1 turn   last" in rows["alice"] and "   2 turns  last" in rows["bob"]
