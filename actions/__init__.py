"""The demo assistant's custom actions.

The emotion-sensing action comes from the plugin, exactly as in any other assistant:
importing it here is all `rasa run actions` needs to serve it.
"""
from emobot.actions import ActionSenseEmotion  # noqa: F401
