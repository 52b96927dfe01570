"""The cached action-response validator accepts and refuses exactly what Rasa's does."""
from __future__ import annotations

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from emobot import rasa_patches


def test_valid_and_invalid_action_responses():
    original = RemoteAction._validate_action_result
    rasa_patches.apply()
    action = RemoteAction("action_sense_emotion", None)
    good = {"events": [{"event": "slot", "name": "user_emotion", "value": "angry"}], "responses": []}
    bad = {"events": [{"event": "slot", "name": 3}], "responses": "nope"}
    try:
        assert action._validate_action_result(good)
        with pytest.raises(ValidationError, match="Failed to validate Action server response"):
            action._validate_action_result(bad)
        with pytest.raises(ValidationError):
            original(action, bad)
    finally:
        RemoteAction._validate_action_result = original
