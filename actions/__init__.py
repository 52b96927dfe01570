"""The demo assistant's custom actions (rasa_sdk)."""
