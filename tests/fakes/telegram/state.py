"""What the fake Telegram server remembers: bots, users, chats and messages.

Messages are stored as Telegram sends them, plus the key ``"html"`` on the bot's
messages: the text as sent, before parsing. `wire` strips that extra. Chats with a
positive id are private chats (named after their user), negative ids supergroups.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.wire import BotState, JSONDict, RecordedCall

__all__ = ["Bot", "Call", "ChatStore", "WebhookDelivery", "wire"]

BOT_FIRST_NAME = "Trợ lý HTX"
BOT_USERNAME = "tro_ly_htx_bot"


@dataclass
class Call(RecordedCall):
    """One request the fake answered (``params`` normalized as if posted as JSON).

    ``message`` is set for the calls that created or changed a message (sendMessage,
    sendPhoto, copyMessage, editMessageText): a snapshot of the stored message, with the extra
    key ``"html"`` (the text as sent).
    """


@dataclass
class WebhookDelivery:
    """One update POSTed by the fake to a webhook.

    Attributes:
        token: The bot token the update belongs to.
        update_id: The update delivered.
        url: The webhook URL.
        status: The HTTP status the receiver answered, or None when the request failed.
        error: Why the request failed, when it did.
        at: ``time.perf_counter()`` when the receiver answered (or the request failed).
    """

    token: str
    update_id: int
    url: str
    status: int | None
    error: str | None
    at: float


@dataclass(kw_only=True)
class Bot(BotState):
    """A bot account: the number before ``:`` in its token is its user id."""

    id: int

    @property
    def user(self) -> JSONDict:
        """The bot as a Telegram User."""
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        }


def wire(message: JSONDict) -> JSONDict:
    """The message as Telegram sends it: the stored record without the fake's extras."""
    return {key: value for key, value in message.items() if key != "html"}


class ChatStore:
    """Users, chats and messages of every bot, and the id counters (used under the lock)."""

    def __init__(self) -> None:
        """Starts empty; ids start at Telegram-like values."""
        self.users: dict[int, JSONDict] = {}
        self.chats: dict[int, JSONDict] = {}
        self.messages: dict[tuple[int, int, int], JSONDict] = {}
        self.callback_queries: dict[str, bool] = {}  # query id -> answered
        self.files: dict[str, bytes] = {}  # file_id -> the bytes uploaded (photos sent)
        self._last_message_id: dict[tuple[int, int], int] = {}
        self.update_ids = itertools.count(1)
        self.user_ids = itertools.count(100_000_001)
        self.callback_ids = itertools.count(4_382_000_000_001)
        self._file_ids = itertools.count(1)

    def reset(self) -> None:
        """Forgets messages and callback queries (users, chats and id counters stay)."""
        self.messages.clear()
        self._last_message_id.clear()
        self.callback_queries.clear()
        self.files.clear()

    def chat(self, chat_id: int) -> JSONDict:
        """The chat with this id, made on first use (private if positive, else a supergroup)."""
        chat = self.chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                chat = {"id": chat_id, "type": "private"}
                user = self.users.get(chat_id)
                if user is not None:
                    for key in ("first_name", "last_name", "username"):
                        if user.get(key):
                            chat[key] = user[key]
            else:
                chat = {"id": chat_id, "type": "supergroup", "title": f"Nhóm {abs(chat_id)}"}
            self.chats[chat_id] = chat
        return chat

    def user_chat(self, user: JSONDict, chat_id: int | None) -> JSONDict:
        """The chat ``user`` writes in: ``chat_id``, or their private chat."""
        self.users.setdefault(user["id"], dict(user))
        chat = self.chat(chat_id if chat_id is not None else user["id"])
        if chat["type"] == "private" and "first_name" not in chat and chat["id"] == user["id"]:
            # The bot wrote first (a broadcast): the chat learns its name now. A new
            # dict, so messages stored earlier keep the chat as they were sent.
            chat = {
                **chat,
                **{k: user[k] for k in ("first_name", "last_name", "username") if k in user},
            }
            self.chats[chat["id"]] = chat
        return chat

    def store(self, bot: Bot, chat: JSONDict, sender: JSONDict, **fields: Any) -> JSONDict:
        """Creates a message in ``chat`` with the chat's next message id (None fields left out)."""
        key = (bot.id, chat["id"])
        message_id = self._last_message_id.get(key, 0) + 1
        self._last_message_id[key] = message_id
        message: JSONDict = {
            "message_id": message_id,
            "from": sender,
            "chat": chat,
            "date": int(time.time()),
        }
        message.update({name: value for name, value in fields.items() if value is not None})
        self.messages[(bot.id, chat["id"], message_id)] = message
        return message

    def quoted(self, bot: Bot, chat_id: int, message_id: int) -> JSONDict | None:
        """The stored message as a ``reply_to_message`` (without its own reply), or None."""
        original = self.messages.get((bot.id, chat_id, message_id))
        if original is None:
            return None
        quoted = wire(original)
        quoted.pop("reply_to_message", None)
        return quoted

    def upload(self, data: bytes, width: int, height: int) -> list[JSONDict]:
        """Keeps an uploaded photo; returns its PhotoSize array, smallest first.

        The image is scaled into the boxes Telegram uses (90, 320, 800, 1280 pixels)
        up to its own size; the bytes are kept under the largest size's ``file_id``.
        """
        number = next(self._file_ids)
        longest = max(width, height)
        sizes: list[JSONDict] = []
        for letter, box in zip("smxy", (90, 320, 800, 1280), strict=True):
            scale = min(1.0, box / longest)
            sizes.append(
                {
                    "file_id": f"AgACAgUAAxkDAAI{number}{letter}",
                    "file_unique_id": f"AQAD{number}{letter}",
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                    "file_size": max(1, round(len(data) * scale * scale)),
                }
            )
            if box >= longest:
                break
        self.files[sizes[-1]["file_id"]] = data
        return sizes

    def photo_of(self, file_id: str) -> list[JSONDict] | None:
        """The PhotoSize array of a stored message's photo that has ``file_id``, or None."""
        for message in self.messages.values():
            sizes = message.get("photo") or ()
            if any(size["file_id"] == file_id for size in sizes):
                return [dict(size) for size in sizes]
        return None

    def photo_sizes(self) -> list[JSONDict]:
        """A new photo's ``photo`` array: a thumbnail and a large size."""
        number = next(self._file_ids)
        return [
            {
                "file_id": f"AgACAgUAAxkBAAI{number}s",
                "file_unique_id": f"AQAD{number}s",
                "width": 90,
                "height": 68,
                "file_size": 1_342,
            },
            {
                "file_id": f"AgACAgUAAxkBAAI{number}x",
                "file_unique_id": f"AQAD{number}x",
                "width": 1280,
                "height": 960,
                "file_size": 98_765,
            },
        ]
