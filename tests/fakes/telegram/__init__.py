"""The fake Telegram Bot API server: methods, chats and messages, HTML entities, test API."""

from __future__ import annotations

from tests.fakes.telegram.api import FakeTelegram
from tests.fakes.telegram.entities import EntityParseError, parse_html, utf16_len
from tests.fakes.telegram.state import Call, WebhookDelivery

__all__ = ["Call", "EntityParseError", "FakeTelegram", "WebhookDelivery", "parse_html", "utf16_len"]
