"""Telegram: update parsing, validation, rendering and the channel."""
