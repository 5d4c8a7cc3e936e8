"""Local fake servers that play remote APIs over real HTTP on 127.0.0.1, for tests.

- `tests.fakes.wire`: what a recorded call, an error answer, a bot's state and a
  request being handled are; request parameters; the webhook poster.
- `tests.fakes.control`: the shared state and the test API (calls, waits, failures).
- `tests.fakes.server`: the HTTP server thread, request handling, webhook delivery.
- `tests.fakes.telegram`: the fake Telegram Bot API (methods, chats, HTML entities).
- `tests.fakes.zalo`: the fake Zalo Bot Platform API.
"""

from __future__ import annotations

from tests.fakes.telegram import (
    Call,
    EntityParseError,
    FakeTelegram,
    WebhookDelivery,
    parse_html,
    utf16_len,
)
from tests.fakes.zalo import FakeZalo, ZaloCall, ZaloDelivery

__all__ = [
    "Call",
    "EntityParseError",
    "FakeTelegram",
    "FakeZalo",
    "WebhookDelivery",
    "ZaloCall",
    "ZaloDelivery",
    "parse_html",
    "utf16_len",
]
