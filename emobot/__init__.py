"""Rasa-side extensions and user-facing tools: the emobot CLI, terminal chat, replay, the stack."""
