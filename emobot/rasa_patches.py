"""A speed fix for Rasa 3.6 on the sensing path, applied inside the Rasa process.

Rasa validates every action server response with ``jsonschema.validate(result, spec)``,
which re-checks the (large) schema itself on every call: measured with py-spy, that was
about half of a user turn's time once the sensing action runs on each turn. Here the
validator is built and its schema checked once; every response is still validated
against the same schema, with the same error.
"""
from __future__ import annotations

import functools
from typing import Any, Dict

from jsonschema import ValidationError, validators
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@functools.lru_cache(maxsize=1)
def _action_response_validator():
    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
    try:
        _action_response_validator().validate(result)
        return True
    except ValidationError as error:
        error.message += (
            ". Failed to validate Action server response from API, make sure your response "
            f"from the Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise


def apply() -> None:
    """Install the cached validator (idempotent)."""
    RemoteAction._validate_action_result = _validate_action_result
