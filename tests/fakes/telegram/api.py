"""A local fake of the Telegram Bot API server, for end-to-end tests and benchmarks.

`FakeTelegram` serves ``/bot{token}/{method}`` over real HTTP on 127.0.0.1, so the
real python-telegram-bot client (``base_url=f"{fake.base_url}/bot"``) talks to it as
to Telegram (the methods it plays: `tests.fakes.telegram.methods`). It long-polls
``getUpdates`` and delivers updates to a webhook by itself.

Tests drive it from their own thread: they push user messages, photos and button
presses, inject failures, then assert what the fake received (`FakeTelegram.calls`,
`FakeTelegram.wait_for`, `FakeTelegram.wait_for_message`, `FakeTelegram.sent_photos`).
All shared state sits behind one lock; the server loop is woken with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import re
import time

from tests.fakes.telegram.entities import utf16_len
from tests.fakes.telegram.methods import TelegramBotApi
from tests.fakes.telegram.state import Bot, Call, wire
from tests.fakes.wire import JSONDict

__all__ = ["FakeTelegram"]


class FakeTelegram(TelegramBotApi):
    """A fake Telegram Bot API server on 127.0.0.1 for tests and benchmarks.

    Use it as a context manager (or call `start` and `stop`) and point the client at
    ``f"{fake.base_url}/bot"``. The test API (`user`, `send_user_message`,
    `press_button`, `calls`, `wait_for`, ...) is thread-safe.

    Args:
        tokens: Bot tokens the fake accepts; the bot id is the number before ``:``.
    """

    def user(
        self,
        user_id: int | None = None,
        first_name: str = "Nguyễn Văn A",
        last_name: str | None = None,
        username: str | None = None,
    ) -> JSONDict:
        """Creates (or replaces) a Telegram user; ids are allocated when not given."""
        with self._lock:
            if user_id is None:
                user_id = next(self._store.user_ids)
            user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
            if last_name:
                user["last_name"] = last_name
            if username:
                user["username"] = username
            user["language_code"] = "vi"
            self._store.users[user_id] = user
            return dict(user)

    def send_user_message(
        self,
        token: str,
        user: JSONDict,
        text: str,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSONDict:
        """Pushes a text message from ``user`` (in their private chat unless ``chat_id``).

        A text starting with ``/`` gets a ``bot_command`` entity. Returns the update.
        """
        entities = None
        command = re.match(r"/\S+", text)
        if command is not None and len(command.group()) > 1:
            entities = [{"type": "bot_command", "offset": 0, "length": utf16_len(command.group())}]
        return self._push_message(
            token, user, chat_id, reply_to_message_id, text=text, entities=entities
        )

    def send_user_photo(
        self,
        token: str,
        user: JSONDict,
        chat_id: int | None = None,
        caption: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSONDict:
        """Pushes a photo message (a ``photo`` array, no text) from ``user``; returns the update.

        ``reply_to_message_id`` makes it a reply (a staff member answering with a file).
        """
        with self._lock:
            photo = self._store.photo_sizes()
        return self._push_message(
            token, user, chat_id, reply_to_message_id, photo=photo, caption=caption
        )

    def _push_message(
        self,
        token: str,
        user: JSONDict,
        chat_id: int | None,
        reply_to_message_id: int | None,
        **fields: object,
    ) -> JSONDict:
        bot = self._bot(token)
        with self._lock:
            chat = self._store.user_chat(user, chat_id)
            reply = None
            if reply_to_message_id is not None:
                reply = self._store.quoted(bot, chat["id"], reply_to_message_id)
                if reply is None:
                    raise KeyError(f"no message {reply_to_message_id} in chat {chat['id']}")
            message = self._store.store(bot, chat, user, reply_to_message=reply, **fields)
            update = self._push_locked(bot, {"message": wire(message)})
        self._notify(bot)
        return update

    def press_button(
        self, token: str, user: JSONDict, message: JSONDict | tuple[int, int], data: str
    ) -> JSONDict:
        """Pushes a callback query for a button of a stored message; returns the update.

        Args:
            token: The bot the message belongs to.
            user: Who presses the button.
            message: A message dict (from `sent_messages` or a result) or
                ``(chat_id, message_id)``.
            data: The button's ``callback_data``.
        """
        bot = self._bot(token)
        if isinstance(message, tuple):
            chat_id, message_id = message
        else:
            chat_id, message_id = message["chat"]["id"], message["message_id"]
        with self._lock:
            stored = self._store.messages.get((bot.id, chat_id, message_id))
            if stored is None:
                raise KeyError(f"no message {message_id} in chat {chat_id}")
            self._store.users.setdefault(user["id"], dict(user))
            query_id = str(next(self._store.callback_ids))
            self._store.callback_queries[query_id] = False
            query = {
                "id": query_id,
                "from": user,
                "message": wire(stored),
                "chat_instance": str(7_000_000_000_000_000_000 + abs(chat_id)),
                "data": data,
            }
            update = self._push_locked(bot, {"callback_query": query})
        self._notify(bot)
        return update

    def _push_locked(self, bot: Bot, update: JSONDict) -> JSONDict:
        update_id = next(self._store.update_ids)
        pushed = {"update_id": update_id, **update}
        self._pushed_at[update_id] = time.perf_counter()
        bot.updates.append(pushed)
        return dict(pushed)

    def unconfirmed(self, token: str) -> int:
        """Updates of the bot that no ``getUpdates`` offset has confirmed yet."""
        bot = self._bot(token)
        with self._lock:
            return len(bot.updates)

    def sent_messages(self, chat_id: int | None = None) -> list[JSONDict]:
        """The bot's messages in the chats, with edits applied, oldest first.

        Each is the stored Message dict plus ``"html"``: the text as sent, before
        parsing (whatever the parse mode).
        """
        with self._lock:
            return [
                dict(message)
                for message in self._store.messages.values()
                if message["from"].get("is_bot")
                and (chat_id is None or message["chat"]["id"] == chat_id)
            ]

    def sent_photos(self, chat_id: int | None = None) -> list[JSONDict]:
        """The bot's photo messages (`sent_messages` that have a ``photo``), oldest first."""
        return [message for message in self.sent_messages(chat_id) if "photo" in message]

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes of a photo the bot uploaded, by the ``file_id`` of its largest size.

        Raises:
            KeyError: No upload has that ``file_id``.
        """
        with self._lock:
            return self._store.files[file_id]

    def message(self, chat_id: int, message_id: int, token: str | None = None) -> JSONDict:
        """The stored message (user's or bot's) with edits applied."""
        bot = self._bot(token) if token else next(iter(self._bots.values()))
        with self._lock:
            return dict(self._store.messages[(bot.id, chat_id, message_id)])

    def wait_for_message(
        self,
        chat_id: int,
        text_contains: str | None = None,
        timeout: float = 10.0,
        count: int = 1,
    ) -> list[JSONDict]:
        """Waits for successful sendMessage/sendPhoto/copyMessage calls into ``chat_id``.

        ``text_contains`` is looked for in the text or the caption.

        Returns:
            The messages those calls created (Message dicts plus ``"html"``).
        """

        def matches(call: Call) -> bool:
            message = call.message
            if call.method not in ("sendMessage", "sendPhoto", "copyMessage") or message is None:
                return False
            if not call.ok or message["chat"]["id"] != chat_id:
                return False
            text = message.get("text") or message.get("caption") or ""
            return text_contains is None or text_contains in text

        found = self.wait_for(matches, timeout=timeout, count=count)
        return [call.message for call in found if call.message is not None]

    def reset(self) -> None:
        """Forgets calls, messages, updates, failures, webhooks and blocks (users stay).

        Update ids keep growing, so a client's ``offset`` from before stays valid.
        """
        with self._lock:
            self._store.reset()
            super().reset()
