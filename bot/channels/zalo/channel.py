"""The Zalo channel: receiving (long polling or webhook), parsing, rendering and sending.

Zalo has no inline keyboards: a reply's buttons become numbered lines ("1. ...")
and the member answers by typing the number; the choices offered last are kept per
chat for ``CHOICE_TTL`` (in memory: after a restart the member simply asks again).
A reply's image goes first, as a ``sendPhoto`` of its URL under ``PUBLIC_BASE_URL``
(Zalo fetches it); while that is unset (the local address, which Zalo cannot reach)
no photo is sent: the text ends with the image's link ("Mã QR: <url>").

Every event is committed to the durable inbox (``bot.store.inbox``) under
``event_name:chat_id:message_id`` before it is acknowledged (the webhook's 200,
the next poll), so none is lost in a crash and a redelivered one is answered once.
Malformed events are refused (webhook: 400) or ignored, with one log line each;
they never stop the channel.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels.text_split import split_text
from bot.channels.webhooks import checked_body, derived_secret
from bot.channels.zalo.client import (
    ZALO_TEXT_LIMIT,
    ZaloBadRequest,
    ZaloBadToken,
    ZaloClient,
    ZaloError,
    ZaloForbidden,
    ZaloRateLimited,
)
from bot.channels.zalo.validation import ZaloUpdate, invalid_field
from bot.conversation import UNSUPPORTED, Conversation, Incoming
from bot.replies import Button, Reply, shorten
from bot.sending import RateLimited, RecipientBlocked, SendError
from bot.settings import Settings
from bot.store.inbox import InboxRow, InboxWorker
from bot.tasks import cancel_and_wait

__all__ = [
    "CHANNEL",
    "ChoiceMemory",
    "ZaloChannel",
    "ZaloEvent",
    "ZaloSender",
    "parse_event",
    "render",
]

log = logging.getLogger(__name__)

CHANNEL: Final = "zalo"
CHOICE_TTL: Final = dt.timedelta(minutes=30)
TEXT_EVENT: Final = "message.text.received"
# Events answered with a short text: Zalo members send photos, stickers, voice...
NON_TEXT_EVENTS: Final = frozenset(
    {"message.image.received", "message.sticker.received", "message.unsupported.received"}
)
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")
_MAX_CHATS = 50_000
_CONCURRENCY = 32
_POLL_TIMEOUT_S = 30
QR_LINK: Final = "Mã QR: "  # the line that stands for a photo Zalo could not fetch


# -- rendering and choices ---------------------------------------------------------------


def render(reply: Reply) -> list[str]:
    """The texts for one reply: buttons as numbered lines, split at 2000 characters."""
    text = reply.text.strip() or "…"
    if reply.buttons:
        options = "\n".join(f"{i}. {b.label}" for i, b in enumerate(reply.buttons, start=1))
        count = len(reply.buttons)
        hint = "Gõ số 1 để chọn." if count == 1 else f"Gõ số (1-{count}) để chọn."
        text = f"{text}\n\n{options}\n\n{hint}"
    return split_text(text, ZALO_TEXT_LIMIT, length=len)


class ChoiceMemory:
    """The numbered choices last offered in each chat, forgotten after ``ttl``."""

    def __init__(self, ttl: dt.timedelta = CHOICE_TTL) -> None:
        """Keeps at most 50,000 chats (the least recently used go first)."""
        self._ttl = ttl.total_seconds()
        self._by_chat: OrderedDict[str, tuple[tuple[Button, ...], float]] = OrderedDict()

    def offer(self, chat_id: str, buttons: tuple[Button, ...]) -> None:
        """Remembers the buttons just sent (none: the chat has no open choice)."""
        self._by_chat.pop(chat_id, None)
        if buttons:
            self._by_chat[chat_id] = (buttons, time.monotonic() + self._ttl)
            while len(self._by_chat) > _MAX_CHATS:
                self._by_chat.popitem(last=False)

    def pick(self, chat_id: str, text: str) -> Button | None:
        """The button a typed number selects, if ``text`` is one of the open choices."""
        match = _NUMBER.match(text)
        offered = self._by_chat.get(chat_id)
        if match is None or offered is None:
            return None
        buttons, expires = offered
        if time.monotonic() > expires:
            del self._by_chat[chat_id]
            return None
        number = int(match.group(1))
        return buttons[number - 1] if 1 <= number <= len(buttons) else None


# -- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZaloEvent:
    """The parts of an update the assistant uses."""

    name: str
    message_id: str
    chat_id: str
    user_id: str
    display_name: str | None
    text: str | None
    sent_at: dt.datetime

    @property
    def key(self) -> str:
        """The redelivery key: the same event, chat and message id is the same event.

        Message ids are unique per chat only: another chat's message with the same
        id is another event.
        """
        return f"{self.name}:{self.chat_id}:{self.message_id}"


class MalformedEvent(ValueError):
    """An update without the fields every event has."""


def parse_event(update: Any) -> ZaloEvent:
    """Reads an update (bare, or wrapped as ``{"ok": true, "result": ...}``).

    The update is validated against ``ZaloUpdate`` (strict types) first. Raises
    ``MalformedEvent`` naming the first missing or mistyped field.
    """
    if isinstance(update, dict) and "event_name" not in update and "result" in update:
        update = update["result"]
    if not isinstance(update, dict):
        raise MalformedEvent("the update is not an object")
    try:
        checked = ZaloUpdate.model_validate(update)
    except ValidationError as exc:
        raise MalformedEvent(invalid_field(exc)) from None
    message = checked.message
    if checked.event_name == TEXT_EVENT and message.text is None:
        raise MalformedEvent("message.text")
    sender = message.sender
    user_id = sender.id if sender is not None else message.chat.id
    display = (sender.display_name or sender.first_name) if sender is not None else None
    return ZaloEvent(
        name=checked.event_name,
        message_id=str(message.message_id)[:100],
        chat_id=str(message.chat.id)[:64],
        user_id=str(user_id)[:64],
        display_name=display[:200] if display else None,
        text=message.text,
        sent_at=_sent_at(message.date),
    )


def _sent_at(value: Any) -> dt.datetime:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            return dt.datetime.fromtimestamp(value / 1000, dt.UTC)  # milliseconds
        except (OverflowError, OSError, ValueError):
            pass
    return dt.datetime.now(dt.UTC)


# -- the channel ---------------------------------------------------------------------------


class ZaloChannel:
    """Receives Zalo updates through the durable inbox, hands them to the core, sends replies."""

    name: Final = CHANNEL

    def __init__(self, settings: Settings, conversation: Conversation, engine: Engine) -> None:
        """Prepares the client and the inbox (nothing is sent until ``start``)."""
        assert settings.zalo_bot_token is not None
        token = settings.zalo_bot_token.get_secret_value()
        self.client = ZaloClient(token, settings.zalo_api_base)
        self.bot_id = str(settings.bot_accounts[CHANNEL])  # the bot's id, never the token
        self.webhook_url = str(settings.zalo_webhook_url) if settings.zalo_webhook_url else None
        self.secret = (
            derived_secret(settings.zalo_webhook_secret, settings.zalo_bot_token, "zalo")
            if self.webhook_url
            else ""
        )
        self.conversation = conversation
        self.choices = ChoiceMemory()
        photos = settings.public_base_url is not None  # else Zalo could not fetch them
        self.sender = ZaloSender(self.client, self.choices, settings.public_url, photos)
        self.worker = InboxWorker.for_bot(
            engine,
            CHANNEL,
            self.bot_id,
            self._handle_row,
            lease_seconds=settings.inbox_lease_seconds,
            sweep_seconds=settings.inbox_sweep_seconds,
            concurrency=_CONCURRENCY,
        )
        self._poller: asyncio.Task[None] | None = None

    def routes(self) -> list[BaseRoute]:
        """``POST /zalo``: the webhook (404 while the channel polls)."""
        return [Route("/zalo", self.handle_webhook, methods=["POST"])]

    async def start(self) -> None:
        """Checks the token, resumes the inbox, then sets the webhook or starts long polling.

        On failure the HTTP client is closed before the error is raised.
        """
        try:
            await self._start()
        except BaseException:
            await self.client.aclose()
            raise

    async def _start(self) -> None:
        me = await self.client.get_me()
        log.info("Zalo: connected as %s", me.get("account_name") or me.get("id"))
        await self.worker.start()
        if self.webhook_url is not None:
            await self.client.set_webhook(self.webhook_url, self.secret)
            log.info("Zalo: webhook mode")
        else:
            await self.client.delete_webhook()  # polling receives nothing while one is set
            self._poller = asyncio.create_task(self._poll(), name="zalo-poll")
            log.info("Zalo: long polling")

    async def stop(self) -> None:
        """Stops polling, finishes the events in hand, closes the client."""
        await cancel_and_wait(self._poller)
        await self.worker.stop()
        await self.client.aclose()

    async def _poll(self) -> None:
        """Long polling: each batch is in the inbox before the next call."""
        failures = 0
        while True:
            try:
                updates = await self.client.get_updates(_POLL_TIMEOUT_S)
                failures = 0
            except ZaloBadToken as exc:
                log.error("Zalo refused the bot token; retrying in 60 s: %s", exc)
                await asyncio.sleep(60)
                continue
            except ZaloRateLimited as exc:
                await asyncio.sleep(exc.retry_after)
                continue
            except ZaloError as exc:
                failures += 1
                delay = min(2.0**failures, 30.0)
                log.warning("Zalo getUpdates failed (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            for update in updates:
                try:
                    event = parse_event(update)
                except MalformedEvent as exc:
                    log.warning("malformed Zalo update ignored: %s", _reason(exc))
                    continue
                if _answered(event):
                    payload = json.dumps(update, ensure_ascii=False)
                    await self.worker.submit_stored(event.key, payload)

    async def handle_webhook(self, request: Request) -> Response:
        """Checks the secret, validates the update, commits it to the inbox, then 200.

        503 when the inbox cannot store it, so that Zalo delivers it again.
        """
        if self.webhook_url is None:
            return JSONResponse({"error": "webhook mode is off"}, status_code=404)
        body = await checked_body(request, "X-Bot-Api-Secret-Token", self.secret, "Zalo")
        if isinstance(body, Response):
            return body
        try:
            event = parse_event(json.loads(body))
        except (ValueError, RecursionError) as exc:  # JSON, UTF-8 and shape errors
            log.warning("malformed Zalo webhook body refused: %s", _reason(exc))
            return JSONResponse({"error": "malformed update"}, status_code=400)
        if _answered(event):
            try:  # the body as received (valid, checked above) is what the inbox keeps
                await self.worker.submit(event.key, body.decode("utf-8"))
            except SQLAlchemyError as exc:
                log.error("Zalo update not stored (%s): asking for a redelivery", exc)
                return JSONResponse({"error": "try again"}, status_code=503)
        return JSONResponse({"ok": True})

    async def _handle_row(self, row: InboxRow) -> None:
        event = parse_event(json.loads(row.payload))
        if event.name in NON_TEXT_EVENTS:
            await self._deliver(event.chat_id, [Reply(UNSUPPORTED)])
            return
        text = event.text or ""
        picked = self.choices.pick(event.chat_id, text)
        incoming = Incoming(
            channel=CHANNEL,
            chat_id=event.chat_id,
            user_id=event.user_id,
            text=picked.label if picked is not None else text,
            display_name=event.display_name,
            message_id=event.message_id,
            received_at=event.sent_at,
            payload=picked.payload if picked is not None else None,
            bot_id=self.bot_id,
        )
        await self._deliver(event.chat_id, await self.conversation.handle(incoming))

    async def _deliver(self, chat_id: str, replies: list[Reply]) -> None:
        for reply in replies:
            try:
                await self.send(chat_id, reply)
            except SendError as exc:
                log.warning("Zalo reply not delivered: %s", exc)
                return

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        """Sends a reply (the ``zalo`` channel's sender)."""
        return await self.sender.send(chat_id, reply)


def _answered(event: ZaloEvent) -> bool:
    """True for the events the assistant answers; any other is ignored with a log line."""
    if event.name == TEXT_EVENT or event.name in NON_TEXT_EVENTS:
        return True
    log.info("Zalo event %r ignored", event.name[:100])
    return False


class ZaloSender:
    """Sends replies through a ``ZaloClient``; a reply's buttons become the chat's choices."""

    def __init__(
        self, client: ZaloClient, choices: ChoiceMemory, public_url: str = "", photos: bool = False
    ) -> None:
        """Records the choices in ``choices``; images are at ``public_url``, sent if ``photos``."""
        self._client = client
        self._choices = choices
        self._public_url = public_url
        self._photos = photos

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        """Sends the reply (its photo, then its parts in order); returns the last message id."""
        last: str | None = None
        image = reply.image
        url = f"{self._public_url}{image.url}" if image is not None else ""
        linked = replace(reply, text=f"{reply.text.rstrip()}\n\n{QR_LINK}{url}") if url else reply
        try:
            if image is not None and self._photos:
                try:
                    alt = shorten(image.alt, ZALO_TEXT_LIMIT) or None
                    last = await self._client.send_photo(chat_id, url, alt)
                except ZaloBadRequest as exc:  # e.g. Zalo could not fetch it: the link instead
                    log.warning("Zalo photo not sent, its link goes with the text: %s", exc)
                    reply = linked
            else:
                reply = linked
            for part in render(reply):
                last = await self._client.send_message(chat_id, part)
        except ZaloForbidden as exc:
            raise RecipientBlocked(str(exc)) from exc
        except ZaloRateLimited as exc:
            raise RateLimited(exc.retry_after, str(exc)) from exc
        except ZaloError as exc:
            raise SendError(str(exc)) from exc
        if not reply.notice:  # a "thank you" toast keeps the choices open
            self._choices.offer(chat_id, reply.buttons)
        return last


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__
