"""Local fake servers that play remote APIs over real HTTP on 127.0.0.1, for tests."""

from __future__ import annotations

from tests.fakes.telegram_api import (
    Call,
    EntityParseError,
    FakeTelegram,
    WebhookDelivery,
    parse_html,
    parse_markdown_v2,
    utf16_len,
)
from tests.fakes.zalo_api import FakeZalo, ZaloCall, ZaloDelivery

__all__ = [
    "Call",
    "EntityParseError",
    "FakeTelegram",
    "FakeZalo",
    "WebhookDelivery",
    "ZaloCall",
    "ZaloDelivery",
    "parse_html",
    "parse_markdown_v2",
    "utf16_len",
]
