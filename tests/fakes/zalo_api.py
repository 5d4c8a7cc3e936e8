"""A local fake of the Zalo Bot Platform API (bot-api.zaloplatforms.com), for tests.

`FakeZalo` serves ``/bot{token}/{method}`` over real HTTP on 127.0.0.1 from a
Starlette app run by uvicorn on its own thread and event loop, the same way as
`tests.fakes.telegram_api.FakeTelegram`. The Zalo bot API looks like Telegram's
but is smaller: no formatting, no keyboards, string ids (hex), times in
milliseconds, no ``update_id`` and no ``offset``. It answers with real HTTP status
codes and the envelope ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error_code": N, "description": "...", "parameters": {...}}``, long-polls
``getUpdates`` (408 when nothing came) and delivers updates to a webhook by itself,
with the header ``X-Bot-Api-Secret-Token``.

Where the wire format is not confirmed (see CHANNELS.md), the fake can play both
forms: ``getUpdates`` answers one update object by default or a list with
``updates_as_list=True``; webhook bodies are the bare update by default or
``{"ok": true, "result": update}`` with ``wrap_webhook=True``; `user` can name the
sender with ``display_name`` or ``first_name``.

Tests drive it from their own thread: they push user messages, inject failures,
then assert what the fake received (`FakeZalo.calls`, `FakeZalo.wait_for`,
`FakeZalo.sent_messages`). All shared state sits behind one lock; the server loop
is woken with ``call_soon_threadsafe``. Parameters arrive as a JSON body, a form
body (urlencoded or multipart) or a query string; form values stay strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.server import (
    FakeBotServer,
    RecordedCall,
    _ApiError,
    _error_body,
    _json_response,
    _parse_multipart,
    _Poster,
)

__all__ = ["FakeZalo", "ZaloCall", "ZaloDelivery"]

JSONDict = dict[str, Any]

DEFAULT_TOKEN = "1234567890:zalo-secret-ABC"
BOT_ACCOUNT_NAME = "tro_ly_htx"
MAX_TEXT_LENGTH = 2000
MAX_LONG_POLL_SECONDS = 60.0
SECRET_HEADER = "X-Bot-Api-Secret-Token"

TEXT_LENGTH = f"Bad Request: text must be between 1 and {MAX_TEXT_LENGTH} characters"
CAPTION_LENGTH = f"Bad Request: caption must be at most {MAX_TEXT_LENGTH} characters"
BLOCKED = "Forbidden: user blocked the bot"
REQUEST_TIMEOUT = "Request timeout"


# ------------------------------------------------------------------------ records


@dataclass
class ZaloCall(RecordedCall):
    """One request the fake answered (``params`` as received: form values are strings)."""


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


@dataclass
class _Bot:
    token: str
    id: str
    updates: deque[JSONDict] = field(default_factory=deque)
    webhook: JSONDict | None = None
    # Owned by the server loop only.
    waiters: set[asyncio.Future[None]] = field(default_factory=set)
    wake: asyncio.Event | None = None
    poster: _Poster = field(default_factory=lambda: _Poster())


def _now_ms() -> int:
    return int(time.time() * 1000)


def _message_id(update: Any) -> str | None:
    message = update.get("message") if isinstance(update, dict) else None
    value = message.get("message_id") if isinstance(message, dict) else None
    return None if value is None else str(value)


def _event_key(update: Any) -> str:
    event = update.get("event_name") if isinstance(update, dict) else None
    return f"{event or ''}:{_message_id(update) or ''}"


def _merged(call: ZaloCall) -> JSONDict:
    """A successful send as the fake stores it: the parameters plus the result."""
    result = call.result if isinstance(call.result, dict) else {}
    return {**call.params, **result}


# -------------------------------------------------------------------------- fake


class FakeZalo(FakeBotServer[ZaloCall, ZaloDelivery]):
    """A fake Zalo Bot Platform API server on 127.0.0.1 for tests.

    Use it as a context manager (or call `start` and `stop`) and point the client's
    base URL at `base_url`. The test API (`user`, `send_user_message`,
    `push_update`, `calls`, `wait_for`, ...) is thread-safe.

    Args:
        tokens: Bot tokens the fake accepts, ``"{bot_id}:{secret}"``.
        updates_as_list: ``getUpdates`` answers a list of every queued update
            instead of one update object.
        wrap_webhook: Webhook bodies are ``{"ok": true, "result": update}``
            instead of the bare update.
    """

    def __init__(
        self,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        updates_as_list: bool = False,
        wrap_webhook: bool = False,
    ) -> None:
        self._init_server("Zalo")
        self._bots: dict[str, _Bot] = {}
        for token in tokens:
            bot_id, _, secret = token.partition(":")
            if not bot_id or not secret or "/" in token:
                raise ValueError(f"a bot token looks like '123:secret', not {token!r}")
            self._bots[token] = _Bot(token=token, id=bot_id)
        self.updates_as_list = updates_as_list
        self.wrap_webhook = wrap_webhook

        self._sent: list[JSONDict] = []
        self._pushed_at: dict[str, float] = {}
        self._blocked: set[str] = set()

        self._methods: dict[str, tuple[str, Callable[[_Bot, JSONDict], Any]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._prepare_get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendChatAction": self._send_chat_action,
            }.items()
        }

    # ------------------------------------------------------------- life cycle

    # ------------------------------------------------------------------ HTTP

    async def _read_params(self, request: Request) -> JSONDict:
        params: JSONDict = dict(parse_qsl(request.url.query, keep_blank_values=True))
        body = await request.body()
        if not body:
            return params
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise _ApiError(400, "Bad Request: can't parse JSON object") from exc
            if not isinstance(data, dict):
                raise _ApiError(400, "Bad Request: can't parse JSON object")
            params.update(data)
        elif content_type.startswith("multipart/form-data"):
            params.update(_parse_multipart(content_type, body))
        else:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return params

    async def _endpoint(self, request: Request) -> Response:
        at = time.perf_counter()
        token = request.path_params["token"]
        method = request.path_params["method"]
        params: JSONDict = {}
        try:
            params = await self._read_params(request)
            bot = self._bots.get(token)
            if bot is None:
                raise _ApiError(401, "Unauthorized")
            known = self._methods.get(method.lower())
            if known is None:
                raise _ApiError(404, "Not Found")
            method, handler = known
            with self._lock:
                self._received[method] = self._received.get(method, 0) + 1
                self._changed.notify_all()
                delays = self._delays.get(method)
                delay = delays.popleft() if delays else 0.0
            if delay:
                await asyncio.sleep(delay)  # a slow server: the request stays in flight
            with self._lock:
                failures = self._failures.get(method)
                if failures:
                    failure = failures.popleft()
                    extra = {"retry_after": failure.retry_after} if failure.retry_after else None
                    raise _ApiError(failure.status, failure.description, extra)
                result = handler(bot, params)
            if method == "getUpdates":
                # The handler checked the timeout; the long poll waits outside the lock.
                result = await self._poll_updates(bot, result, request)
            status, body = 200, {"ok": True, "result": result}
        except _ApiError as error:
            status, body = error.status, _error_body(error)
        except Exception as exc:  # a bug in the fake: answer it so the test sees it
            crash = _ApiError(500, f"Internal Server Error: fake Zalo failed: {exc!r}")
            status, body = crash.status, _error_body(crash)
        call = ZaloCall(method, token, params, status, body, at)
        with self._lock:
            self._calls.append(call)
            if status == 200 and method in ("sendMessage", "sendPhoto"):
                self._sent.append(_merged(call))
            self._changed.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(call)
        return _json_response(status, body)

    # --------------------------------------------------------------- methods

    def _chat_id(self, params: JSONDict) -> str:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            raise _ApiError(400, "Bad Request: chat_id must be a non-empty string")
        if chat_id in self._blocked:
            raise _ApiError(403, BLOCKED)
        return chat_id

    def _get_me(self, bot: _Bot, params: JSONDict) -> JSONDict:
        return {
            "id": bot.id,
            "account_name": BOT_ACCOUNT_NAME,
            "account_type": "BASIC",
            "can_join_groups": False,
        }

    def _prepare_get_updates(self, bot: _Bot, params: JSONDict) -> float:
        timeout = params.get("timeout", 0)
        if isinstance(timeout, str):
            with contextlib.suppress(ValueError):
                timeout = float(timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise _ApiError(400, "Bad Request: timeout must be a number of seconds")
        return min(max(float(timeout), 0.0), MAX_LONG_POLL_SECONDS)

    async def _poll_updates(self, bot: _Bot, timeout: float, request: Request) -> Any:
        """Hands out queued updates (removing them), or answers 408 after ``timeout``.

        A poll whose client went away (a bot that stopped) takes nothing: the
        update would be lost with the closed connection.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await request.is_disconnected():
                raise _ApiError(408, REQUEST_TIMEOUT)
            with self._lock:
                if bot.webhook is None and bot.updates:
                    if not self.updates_as_list:
                        return bot.updates.popleft()
                    updates = list(bot.updates)
                    bot.updates.clear()
                    return updates
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                raise _ApiError(408, REQUEST_TIMEOUT)
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

    def _set_webhook(self, bot: _Bot, params: JSONDict) -> JSONDict:
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _ApiError(400, "Bad Request: url must be an HTTP or HTTPS URL")
        secret = params.get("secret_token")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
            raise _ApiError(400, "Bad Request: secret_token must be between 8 and 256 characters")
        bot.webhook = {"url": url, "secret_token": secret, "updated_at": _now_ms()}
        self._wake(bot)
        return {"url": url, "updated_at": bot.webhook["updated_at"]}

    def _delete_webhook(self, bot: _Bot, params: JSONDict) -> bool:
        bot.webhook = None
        return True

    def _get_webhook_info(self, bot: _Bot, params: JSONDict) -> JSONDict:
        if bot.webhook is None:
            return {"url": ""}
        return {"url": bot.webhook["url"], "updated_at": bot.webhook["updated_at"]}

    def _send_message(self, bot: _Bot, params: JSONDict) -> JSONDict:
        self._chat_id(params)
        text = params.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT_LENGTH:
            raise _ApiError(400, TEXT_LENGTH)
        return {"message_id": uuid.uuid4().hex, "date": _now_ms()}

    def _send_photo(self, bot: _Bot, params: JSONDict) -> JSONDict:
        self._chat_id(params)
        photo = params.get("photo")
        if not isinstance(photo, str) or not photo.startswith(("http://", "https://")):
            raise _ApiError(400, "Bad Request: photo must be an image URL")
        caption = params.get("caption")
        if caption is not None and (not isinstance(caption, str) or len(caption) > MAX_TEXT_LENGTH):
            raise _ApiError(400, CAPTION_LENGTH)
        return {"message_id": uuid.uuid4().hex, "date": _now_ms()}

    def _send_chat_action(self, bot: _Bot, params: JSONDict) -> bool:
        self._chat_id(params)
        action = params.get("action")
        if not isinstance(action, str) or not action:
            raise _ApiError(400, "Bad Request: action is required")
        return True

    # ----------------------------------------------------------------- webhook

    async def _deliver_webhooks(self, bot: _Bot) -> None:
        """Posts the queued updates of ``bot`` to its webhook, one at a time, in order."""
        assert bot.wake is not None and self._http is not None
        while True:
            bot.wake.clear()
            with self._lock:
                hook = bot.webhook
                update = bot.updates.popleft() if hook is not None and bot.updates else None
            if hook is None or update is None:
                await bot.wake.wait()
                continue
            headers = {"Content-Type": "application/json", SECRET_HEADER: hook["secret_token"]}
            payload = {"ok": True, "result": update} if self.wrap_webhook else update
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            status: int | None = None
            error: str | None = None
            try:
                if hook["url"].startswith("http://"):
                    status = await bot.poster.post(hook["url"], body, headers)
                else:
                    response = await self._http.post(hook["url"], content=body, headers=headers)
                    status = response.status_code
            except (httpx.HTTPError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._deliveries.append(
                    ZaloDelivery(
                        bot.token,
                        _event_key(update),
                        hook["url"],
                        status,
                        error,
                        time.perf_counter(),
                    )
                )
                self._changed.notify_all()

    # ---------------------------------------------------------------- test API

    def user(
        self,
        user_id: str | None = None,
        display_name: str = "Nguyễn Văn A",
        name_field: str = "display_name",
    ) -> JSONDict:
        """Makes a Zalo user: ``{"id", name_field: display_name, "is_bot": False}``.

        Args:
            user_id: The id; a random 16-digit hex id when not given.
            display_name: The sender's name.
            name_field: ``"display_name"`` (client code) or ``"first_name"`` (one docs
                sample).
        """
        if name_field not in ("display_name", "first_name"):
            raise ValueError(f"name_field is 'display_name' or 'first_name', not {name_field!r}")
        return {
            "id": user_id if user_id is not None else secrets.token_hex(8),
            name_field: display_name,
            "is_bot": False,
        }

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

    def pushed_at(self, message_id: str) -> float:
        """``time.perf_counter()`` when an update with this message id was first pushed."""
        with self._lock:
            return self._pushed_at[message_id]

    def calls(self, method: str | None = None, token: str | None = None) -> list[ZaloCall]:
        """The requests answered so far, oldest first, optionally filtered."""
        wanted = method.lower() if method else None
        with self._lock:
            return [
                call
                for call in self._calls
                if (wanted is None or call.method.lower() == wanted)
                and (token is None or call.token == token)
            ]

    def sent_messages(self, chat_id: str | None = None) -> list[JSONDict]:
        """The bot's successful sendMessage and sendPhoto calls, oldest first.

        Each is the call's parameters merged with its result: ``{"chat_id", "text",
        "message_id", "date"}`` (``"photo"`` and ``"caption"`` for photos).
        """
        with self._lock:
            return [
                dict(sent)
                for sent in self._sent
                if chat_id is None or sent.get("chat_id") == chat_id
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
            if call.method != "sendMessage" or not call.ok:
                return False
            if call.params.get("chat_id") != chat_id:
                return False
            return text_contains is None or text_contains in str(call.params.get("text"))

        return [_merged(call) for call in self.wait_for(matches, timeout=timeout, count=count)]

    def block(self, chat_id: str) -> None:
        """Makes sends to ``chat_id`` fail with 403 "Forbidden: user blocked the bot"."""
        with self._lock:
            self._blocked.add(chat_id)

    def webhook(self, token: str) -> JSONDict | None:
        """The webhook set for ``token`` (url, secret_token, updated_at), or None."""
        bot = self._bot(token)
        with self._lock:
            return dict(bot.webhook) if bot.webhook is not None else None

    def webhook_deliveries(self) -> list[ZaloDelivery]:
        """Every webhook delivery so far, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def reset(self) -> None:
        """Forgets calls, sends, queued updates, webhooks, failures, delays and blocks.

        Listeners stay, as in `FakeTelegram.reset`.
        """
        with self._lock:
            self._calls = []
            self._sent.clear()
            self._pushed_at.clear()
            self._failures.clear()
            self._delays.clear()
            self._received.clear()
            self._blocked.clear()
            self._deliveries = []
            for bot in self._bots.values():
                bot.updates.clear()
                bot.webhook = None
            self._changed.notify_all()
