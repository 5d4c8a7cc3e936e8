"""A local fake of the Zalo Bot Platform API (bot-api.zaloplatforms.com), for tests.

`FakeZalo` serves ``/bot{token}/{method}`` over real HTTP on 127.0.0.1 the same way
as `tests.fakes.telegram.FakeTelegram`. The Zalo bot API looks like Telegram's but
is smaller: no formatting, no keyboards, string ids (hex), times in milliseconds,
no ``update_id`` and no ``offset``. The fake plays what the product's client calls:
``getMe``, ``getUpdates`` (long poll; 408 when nothing came; one update object per
answer), ``setWebhook``, ``deleteWebhook``, ``sendMessage`` and ``sendPhoto`` (the
photo is a URL Zalo fetches, never an upload: the fake checks it is one and does
not fetch it; an optional caption of at most 2000 characters). It answers with
real HTTP status codes and the envelope ``{"ok": true, "result": ...}`` or ``{"ok":
false, "error_code": N, "description": "...", "parameters": {...}}``, and delivers
updates to a webhook by itself (the bare update, header ``X-Bot-Api-Secret-Token``).

Tests drive it from their own thread: they push user messages and other events,
inject failures, then assert what the fake received (`FakeZalo.calls`,
`FakeZalo.wait_for`, `FakeZalo.sent_messages`, `FakeZalo.sent_photos`). Parameters
arrive as a JSON body, a urlencoded form body or a query string; form values stay
strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.server import FakeBotServer
from tests.fakes.wire import ApiError, BotState, Context, JSONDict, Later, RecordedCall

__all__ = ["FakeZalo", "ZaloCall", "ZaloDelivery"]

DEFAULT_TOKEN = "1234567890:zalo-secret-ABC"
BOT_ACCOUNT_NAME = "tro_ly_htx"
MAX_TEXT_LENGTH = 2000
MAX_LONG_POLL_SECONDS = 60.0
SECRET_HEADER = "X-Bot-Api-Secret-Token"

TEXT_LENGTH = f"Bad Request: text must be between 1 and {MAX_TEXT_LENGTH} characters"
CAPTION_LENGTH = f"Bad Request: caption must be at most {MAX_TEXT_LENGTH} characters"
PHOTO_URL = "Bad Request: photo must be an HTTP or HTTPS image URL"
BLOCKED = "Forbidden: user blocked the bot"
REQUEST_TIMEOUT = "Request timeout"


@dataclass
class ZaloCall(RecordedCall):
    """One request the fake answered (``params`` as received: form values are strings).

    ``message`` is set for a successful sendMessage or sendPhoto: its parameters merged
    with its result, ``{"chat_id", "text", "message_id", "date"}`` (``{"chat_id",
    "photo", "caption", "message_id", "date"}`` for a photo).
    """


@dataclass
class ZaloDelivery:
    """One update POSTed by the fake to a webhook.

    Attributes:
        token: The bot token the update belongs to.
        event_key: ``"{event_name}:{message_id}"`` of the update (parts missing from
            a malformed update are empty), the key a receiver deduplicates on.
        url: The webhook URL.
        status: The HTTP status the receiver answered, or None when the request failed.
        error: Why the request failed, when it did.
        at: ``time.perf_counter()`` when the receiver answered (or the request failed).
    """

    token: str
    event_key: str
    url: str
    status: int | None
    error: str | None
    at: float


@dataclass(kw_only=True)
class _Bot(BotState):
    id: str


def _now_ms() -> int:
    return int(time.time() * 1000)


def _is_web_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        url = urlsplit(value)
        return url.scheme in ("http", "https") and bool(url.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False


def _message_id(update: Any) -> str | None:
    message = update.get("message") if isinstance(update, dict) else None
    value = message.get("message_id") if isinstance(message, dict) else None
    return None if value is None else str(value)


class FakeZalo(FakeBotServer[ZaloCall, ZaloDelivery, _Bot]):
    """A fake Zalo Bot Platform API server on 127.0.0.1 for tests.

    Use it as a context manager (or call `start` and `stop`) and point the client's
    base URL at `base_url`. The test API (`user`, `send_user_message`,
    `push_update`, `calls`, `wait_for`, ...) is thread-safe.

    Args:
        tokens: Bot tokens the fake accepts, ``"{bot_id}:{secret}"``.
    """

    def __init__(self, tokens: Iterable[str] = (DEFAULT_TOKEN,)) -> None:
        """Makes the bots; nothing listens until `start`."""
        bots: dict[str, _Bot] = {}
        for token in tokens:
            bot_id, _, secret = token.partition(":")
            if not bot_id or not secret or "/" in token:
                raise ValueError(f"a bot token looks like '123:secret', not {token!r}")
            bots[token] = _Bot(token=token, id=bot_id)
        methods = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
        }
        super().__init__("Zalo", ZaloCall, bots, methods)

    # ------------------------------------------------------- server hooks

    def _webhook_headers(self, hook: JSONDict) -> dict[str, str]:
        return {"Content-Type": "application/json", SECRET_HEADER: hook["secret_token"]}

    def _delivery(
        self, bot: _Bot, update: JSONDict, url: str, status: int | None, error: str | None
    ) -> ZaloDelivery:
        event = update.get("event_name") if isinstance(update, dict) else None
        key = f"{event or ''}:{_message_id(update) or ''}"
        return ZaloDelivery(bot.token, key, url, status, error, time.perf_counter())

    # ------------------------------------------------------------ methods

    def _get_me(self, context: Context[_Bot]) -> JSONDict:
        return {
            "id": context.bot.id,
            "account_name": BOT_ACCOUNT_NAME,
            "account_type": "BASIC",
            "can_join_groups": False,
        }

    def _get_updates(self, context: Context[_Bot]) -> Later:
        timeout = context.params.get("timeout", 0)
        if isinstance(timeout, str):
            with contextlib.suppress(ValueError):
                timeout = float(timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ApiError(400, "Bad Request: timeout must be a number of seconds")
        seconds = min(max(float(timeout), 0.0), MAX_LONG_POLL_SECONDS)
        return Later(lambda: self._poll_updates(context, seconds))

    async def _poll_updates(self, context: Context[_Bot], timeout: float) -> Any:
        """Hands out the oldest queued update (removing it), or answers 408 after ``timeout``.

        A poll whose client went away (a bot that stopped) takes nothing: the
        update would be lost with the closed connection.
        """
        bot = context.bot
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await context.request.is_disconnected():
                raise ApiError(408, REQUEST_TIMEOUT)
            with self._lock:
                if bot.webhook is None and bot.updates:
                    return bot.updates.popleft()
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                raise ApiError(408, REQUEST_TIMEOUT)
            # No await between the check above and registering: no wake-up is lost.
            waiter: asyncio.Future[None] = loop.create_future()
            bot.waiters.add(waiter)
            try:
                # Wake up now and then to notice a client that went away.
                await asyncio.wait_for(waiter, min(remaining, 0.25))
            except TimeoutError:
                pass
            finally:
                bot.waiters.discard(waiter)

    def _set_webhook(self, context: Context[_Bot]) -> JSONDict:
        url = context.params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: url must be an HTTP or HTTPS URL")
        secret = context.params.get("secret_token")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
            raise ApiError(400, "Bad Request: secret_token must be between 8 and 256 characters")
        bot = context.bot
        bot.webhook = {"url": url, "secret_token": secret, "updated_at": _now_ms()}
        self._wake(bot)
        return {"url": url, "updated_at": bot.webhook["updated_at"]}

    def _delete_webhook(self, context: Context[_Bot]) -> bool:
        context.bot.webhook = None
        return True

    def _check_chat(self, params: JSONDict) -> None:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            raise ApiError(400, "Bad Request: chat_id must be a non-empty string")
        if chat_id in self._blocked:
            raise ApiError(403, BLOCKED)

    def _send_message(self, context: Context[_Bot]) -> JSONDict:
        params = context.params
        self._check_chat(params)
        text = params.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT_LENGTH:
            raise ApiError(400, TEXT_LENGTH)
        result = {"message_id": uuid.uuid4().hex, "date": _now_ms()}
        context.message = {**params, **result}
        return result

    def _send_photo(self, context: Context[_Bot]) -> JSONDict:
        params = context.params
        self._check_chat(params)
        if not _is_web_url(params.get("photo")):
            raise ApiError(400, PHOTO_URL)
        caption = params.get("caption")
        if caption is not None and (not isinstance(caption, str) or len(caption) > MAX_TEXT_LENGTH):
            raise ApiError(400, CAPTION_LENGTH)
        result = {"message_id": uuid.uuid4().hex, "date": _now_ms()}
        context.message = {**params, **result}
        return result

    # ----------------------------------------------------------- test API

    def user(self, display_name: str = "Nguyễn Văn A") -> JSONDict:
        """Makes a Zalo user ``{"id", "display_name", "is_bot": False}`` with a random hex id."""
        return {"id": secrets.token_hex(8), "display_name": display_name, "is_bot": False}

    def send_user_message(self, token: str, user: JSONDict, text: str) -> JSONDict:
        """Pushes a ``message.text.received`` update from ``user``; returns the update."""
        return self.send_user_event(token, user, "message.text.received", text=text)

    def send_user_event(
        self, token: str, user: JSONDict, event_name: str, **message_fields: Any
    ) -> JSONDict:
        """Pushes an update of any ``event_name`` from ``user`` in their private chat.

        The message gets a random 32-digit hex ``message_id``, ``date`` (ms),
        ``chat`` and ``from``, then ``message_fields`` (``text=...``,
        ``photo_url=...``, ``sticker=...``). Returns the update.
        """
        message: JSONDict = {
            "message_id": uuid.uuid4().hex,
            "date": _now_ms(),
            "chat": {"id": user["id"], "chat_type": "PRIVATE"},
            "from": dict(user),
            **message_fields,
        }
        return self.push_update(token, {"event_name": event_name, "message": message})

    def push_update(self, token: str, update: JSONDict) -> JSONDict:
        """Queues ``update`` as is (malformed ones too) for polling or the webhook.

        Returns:
            ``update`` itself; the fake keeps its own copy.
        """
        bot = self._bot(token)
        message_id = _message_id(update)
        with self._lock:
            if message_id is not None:
                self._pushed_at.setdefault(message_id, time.perf_counter())
            bot.updates.append(copy.deepcopy(update))
        self._notify(bot)
        return update

    def redeliver(self, token: str, update: JSONDict) -> JSONDict:
        """Pushes ``update`` again: a duplicate delivery, as Zalo sometimes makes."""
        return self.push_update(token, update)

    def sent_messages(self, chat_id: str | None = None) -> list[JSONDict]:
        """The bot's successful sendMessage calls, oldest first.

        Each is the call's parameters merged with its result: ``{"chat_id", "text",
        "message_id", "date"}``.
        """
        return self._sent("sendMessage", chat_id)

    def sent_photos(self, chat_id: str | None = None) -> list[JSONDict]:
        """The bot's successful sendPhoto calls, oldest first.

        Each is the call's parameters merged with its result: ``{"chat_id", "photo",
        "caption" (when given), "message_id", "date"}``.
        """
        return self._sent("sendPhoto", chat_id)

    def _sent(self, method: str, chat_id: str | None) -> list[JSONDict]:
        with self._lock:
            return [
                dict(call.message)
                for call in self._calls
                if call.message is not None
                and call.method == method
                and (chat_id is None or call.message.get("chat_id") == chat_id)
            ]

    def wait_for_message(
        self,
        chat_id: str,
        text_contains: str | None = None,
        timeout: float = 10.0,
        count: int = 1,
    ) -> list[JSONDict]:
        """Waits for successful sendMessage calls into ``chat_id``.

        Returns:
            The calls' parameters merged with their results (``{"chat_id", "text",
            "message_id", "date"}``), oldest first.
        """

        def matches(call: ZaloCall) -> bool:
            message = call.message
            if call.method != "sendMessage" or message is None:
                return False
            if message.get("chat_id") != chat_id:
                return False
            return text_contains is None or text_contains in str(message.get("text"))

        found = self.wait_for(matches, timeout=timeout, count=count)
        return [dict(call.message) for call in found if call.message is not None]
