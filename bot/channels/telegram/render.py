"""Telegram rendering and sending: replies as escaped HTML with inline keyboards.

Every dynamic string is escaped here, in one place, before it reaches the Bot
API with ``parse_mode=HTML``. Texts longer than Telegram's 4096 characters are
split at paragraph or sentence boundaries; the buttons go with the last part.

A reply with an image (``Reply.image``) is sent with ``sendPhoto``, uploading its
PNG: with the reply's text as the caption and its buttons on the photo when the
text fits Telegram's 1024-character caption, else the photo first (its caption the
image's alt text) and then the text messages as usual (`send_reply`, used by the
handlers and by `TelegramSender` alike).
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.channels.text_split import split_text, utf16_len
from bot.conversation import Incoming
from bot.replies import Button, Reply, shorten
from bot.sending import RateLimited, RecipientBlocked, SendError

__all__ = [
    "CHANNEL",
    "TELEGRAM_CAPTION_LIMIT",
    "TELEGRAM_TEXT_LIMIT",
    "TelegramSender",
    "incoming_from_message",
    "keyboard",
    "photo_caption",
    "render",
    "retry_seconds",
    "send_reply",
]

log = logging.getLogger(__name__)

# python-telegram-bot 22 opts in to ``datetime.timedelta`` durations (``RetryAfter.retry_after``)
# with this variable; without it, every rate-limit error also emits a deprecation warning.
os.environ.setdefault("PTB_TIMEDELTA", "true")

CHANNEL = "telegram"
TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024
_CALLBACK_DATA_MAX_BYTES = 64
_LABEL_MAX = 60
_SHORT_LABEL = 16  # labels this short share a row (👍/👎, ◀/▶, provinces)
_ROW_MAX = 3


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """Lays out buttons: long labels one per row, short ones up to three a row."""
    rows: list[list[InlineKeyboardButton]] = []
    short_row: list[InlineKeyboardButton] = []
    for button in buttons:
        if len(button.payload.encode()) > _CALLBACK_DATA_MAX_BYTES:
            log.warning("button payload over 64 bytes dropped: %r", button.payload[:80])
            continue
        label = button.label if len(button.label) <= _LABEL_MAX else button.label[:59] + "…"
        key = InlineKeyboardButton(label, callback_data=button.payload)
        if len(label) <= _SHORT_LABEL:
            short_row.append(key)
            if len(short_row) == _ROW_MAX:
                rows.append(short_row)
                short_row = []
            continue
        if short_row:
            rows.append(short_row)
            short_row = []
        rows.append([key])
    if short_row:
        rows.append(short_row)
    return InlineKeyboardMarkup(rows) if rows else None


def render(reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """The messages for one reply: HTML-escaped text parts, the keyboard on the last."""
    parts = split_text(reply.text, TELEGRAM_TEXT_LIMIT) or ["…"]
    escaped = [html.escape(part, quote=False) for part in parts]
    markup = keyboard(reply.buttons)
    return [(text, markup if i == len(escaped) - 1 else None) for i, text in enumerate(escaped)]


def photo_caption(reply: Reply) -> tuple[str, bool]:
    """The escaped caption of the reply's photo, and whether it carries the reply's text.

    The text (the alt text when the reply has none) is the caption when it fits
    Telegram's 1024 characters (counted as Telegram counts: UTF-16 units, trimmed);
    otherwise the caption is the image's alt text and the text follows as messages.
    """
    assert reply.image is not None
    text = reply.text.strip() or reply.image.alt
    if utf16_len(text) <= TELEGRAM_CAPTION_LIMIT:
        return html.escape(text, quote=False), True
    alt = shorten(reply.image.alt, TELEGRAM_CAPTION_LIMIT // 2)  # emoji may count 2
    return html.escape(alt, quote=False), False


async def send_reply(bot: Bot, chat_id: int | str, reply: Reply, **options: Any) -> Message | None:
    """Sends one reply (its photo first, if any); returns the last message sent.

    ``options`` go to every call (``allow_paid_broadcast``, ``reply_parameters``).
    Errors are python-telegram-bot's: `TelegramSender` maps them.
    """
    last: Message | None = None
    if reply.image is not None:
        caption, complete = photo_caption(reply)
        last = await bot.send_photo(
            chat_id,
            reply.image.png,
            caption=caption or None,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(reply.buttons) if complete else None,
            filename="qr.png",
            **options,
        )
        if complete:
            return last
    for text, markup in render(reply):
        last = await bot.send_message(
            chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup, **options
        )
    return last


def incoming_from_message(message: Message, user: User | None) -> Incoming:
    """Parses a Telegram message into the core's ``Incoming`` (with the receiving bot's id)."""
    sender_id = user.id if user is not None else message.chat.id
    reply_to = message.reply_to_message
    return Incoming(
        channel=CHANNEL,
        chat_id=str(message.chat.id),
        user_id=str(sender_id),
        text=message.text or message.caption or "",
        display_name=user.full_name if user is not None else None,
        message_id=str(message.message_id),
        received_at=message.date,
        reply_to_message_id=str(reply_to.message_id) if reply_to is not None else None,
        attachment=message.effective_attachment is not None,
        bot_id=_bot_id(message),
    )


def _bot_id(message: Message) -> str | None:
    try:
        return str(message.get_bot().id)
    except RuntimeError:  # a message built without its bot (tests)
        return None


class TelegramSender:
    """Sends replies through one ``telegram.Bot``; maps its errors to ``SendError``."""

    def __init__(self, bot: Bot, paid_broadcast: bool = False) -> None:
        """Uses ``bot``; ``paid_broadcast``: send bulk replies with ``allow_paid_broadcast``."""
        self._bot = bot
        self._paid = paid_broadcast

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        """Sends the reply (its photo, then its parts in order); returns the last message id."""
        paid = True if self._paid and reply.bulk else None  # lifts the 30/s limit, in Stars
        with _mapped_errors():
            last = await send_reply(self._bot, chat_id, reply, allow_paid_broadcast=paid)
        return str(last.message_id) if last is not None else None

    async def copy(self, chat_id: str, from_chat_id: str, message_id: str) -> str | None:
        """Copies a message (a staff member's file or photo) into ``chat_id``."""
        with _mapped_errors():
            copied = await self._bot.copy_message(chat_id, from_chat_id, int(message_id))
        return str(copied.message_id)


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """Maps python-telegram-bot's errors to the channel-neutral ``SendError`` family."""
    try:
        yield
    except Forbidden as exc:
        raise RecipientBlocked(exc.message) from exc
    except RetryAfter as exc:
        raise RateLimited(retry_seconds(exc.retry_after), exc.message) from exc
    except BadRequest as exc:
        if "chat not found" in exc.message.lower():
            raise RecipientBlocked(exc.message) from exc
        raise SendError(exc.message) from exc
    except TelegramError as exc:
        raise SendError(exc.message) from exc


def retry_seconds(value: object) -> float:
    """A ``RetryAfter.retry_after`` in seconds (PTB gives a ``timedelta`` or a number)."""
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)  # type: ignore[arg-type]
