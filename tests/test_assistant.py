"""The demo assistant's Rasa files are consistent, and every tone-sensitive reply adapts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from emotion_sensing.slots import EMOTION_VALUES, SENSE_ACTION, SLOT_NAMES

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
# utter_default too: a plain "didn't get that" to a message read as sad or angry is the assistant
# ignoring what it just sensed.
TONE_SENSITIVE = ["utter_greet", "utter_order_status", "utter_complaint", "utter_refund",
                  "utter_handoff", "utter_goodbye", "utter_thanks", "utter_default", "utter_feeling",
                  "utter_capabilities", "utter_order_checked", "utter_feeling_again",
                  "utter_payment", "utter_order_known", "utter_refund_info", "utter_timescales",
                  "utter_account_help", "utter_bot_frustration",
                  "utter_cancel_order", "utter_cancel_order_known"]


def test_rasa_data_validate_is_clean():
    rasa = Path(sys.executable).parent / "rasa"
    result = subprocess.run([str(rasa), "data", "validate", "--fail-on-warnings"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_nlu_example_line_is_an_example():
    """Rasa skips a line inside `examples: |` that is not "- ..." (a comment there, say) with a
    warning at every training, which `rasa data validate` does not fail on."""
    nlu = yaml.safe_load((ROOT / "data" / "nlu.yml").read_text())["nlu"]
    stray = [(item.get("intent") or item.get("regex") or item.get("synonym"), line)
             for item in nlu for line in (item.get("examples") or "").splitlines() if not line.startswith("- ")]
    assert not stray, stray


def test_emotion_slots_are_filled_by_the_sensing_action_on_every_turn():
    slots = DOMAIN["slots"]
    for name in SLOT_NAMES:
        assert slots[name]["mappings"] == [{"type": "custom", "action": SENSE_ACTION}], name
    assert slots["user_emotion"]["values"] == list(EMOTION_VALUES)
    assert slots["user_emotion"]["influence_conversation"] is True
    assert slots["emotion_reading"]["influence_conversation"] is False


def test_tone_sensitive_replies_vary_by_emotion():
    for response in TONE_SENSITIVE:
        variations = DOMAIN["responses"][response]
        emotions = {c["value"] for v in variations for c in v.get("condition", []) if c["name"] == "user_emotion"}
        assert any("condition" not in v for v in variations), f"{response} needs a default variation"
        assert {"angry", "sad"} <= emotions, f"{response} covers only {emotions}"
    covered = {
        c["value"]
        for response in TONE_SENSITIVE
        for v in DOMAIN["responses"][response]
        for c in v.get("condition", [])
    }
    assert {"angry", "sad", "fear", "happy"} <= covered


def test_channels_rest_and_socketio_with_custom_data():
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    assert "rest" in credentials
    socketio = credentials["emobot.channels.SocketIOInput"]
    assert socketio["metadata_key"] == "customData" and socketio["session_persistence"] is True
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    assert endpoints["tracker_store"]["type"] == "SQL" and endpoints["tracker_store"]["dialect"] == "sqlite"
