"""Zalo: the Bot API client, update validation and the channel."""
