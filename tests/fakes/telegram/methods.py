"""The Bot API methods of the fake Telegram server, checked the way Telegram checks them.

Only what the product's python-telegram-bot client calls is played: ``getMe``,
``getUpdates`` (long poll, ``offset`` confirms), ``setWebhook`` and
``deleteWebhook``, ``sendMessage`` and ``editMessageText`` (plain text or
``parse_mode=HTML``, inline keyboards, replies), ``sendPhoto`` (an upload, see
`tests.fakes.telegram.media`), ``answerCallbackQuery``, ``copyMessage`` and
``setMyCommands``. Answers carry real HTTP status codes and Telegram's descriptions.

Parameters arrive as a query string, a urlencoded form (as python-telegram-bot
posts them), a multipart form (with a file) or a JSON body. Form values are
normalized as if they had been posted as JSON: numeric ids become ints, flags
become bools and values that look like a JSON object or array are decoded, except
in free-text parameters such as ``text``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import Iterable
from typing import Any

from tests.fakes.server import FakeBotServer
from tests.fakes.telegram.media import PhotoMethods, checked_text
from tests.fakes.telegram.state import Bot, Call, ChatStore, WebhookDelivery, wire
from tests.fakes.wire import ApiError, Context, JSONDict, Later

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_LONG_POLL_SECONDS = 50.0

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup"
    " are exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active;"
    " use deleteWebhook to delete the webhook first"
)

# Form values are strings; these names get the JSON type Telegram expects.
_INT_PARAMS = frozenset(
    {"chat_id", "from_chat_id", "message_id", "reply_to_message_id", "offset", "limit", "timeout"}
)
_BOOL_PARAMS = frozenset({"disable_notification", "allow_paid_broadcast", "drop_pending_updates"})
# Free text is never JSON-decoded, even when it starts with "[" or "{".
_TEXT_PARAMS = frozenset(
    {"text", "caption", "photo", "url", "secret_token", "callback_query_id", "parse_mode"}
)
_INT_TEXT = re.compile(r"-?[0-9]{1,20}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


class TelegramBotApi(PhotoMethods, FakeBotServer[Call, WebhookDelivery, Bot]):
    """The fake Telegram server's Bot API methods (the test API is `FakeTelegram`'s).

    Args:
        tokens: Bot tokens the fake accepts; the bot id is the number before ``:``.
    """

    accepts_multipart = True  # Telegram takes any method's parameters as multipart

    def __init__(self, tokens: Iterable[str] = ("123:ABC",)) -> None:
        """Makes the bots; nothing listens until ``start``."""
        bots: dict[str, Bot] = {}
        for token in tokens:
            bot_id, _, secret = token.partition(":")
            if not bot_id.isdigit() or not secret:
                raise ValueError(f"a bot token looks like '123:ABC', not {token!r}")
            bots[token] = Bot(token=token, id=int(bot_id))
        self._store = ChatStore()
        methods = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "editMessageText": self._edit_message_text,
            "answerCallbackQuery": self._answer_callback_query,
            "copyMessage": self._copy_message,
            "setMyCommands": self._set_my_commands,
        }
        super().__init__("Telegram", Call, bots, methods)

    # --------------------------------------------------- server hooks

    def _normalize(self, name: str, value: Any) -> Any:
        """Gives a form value the JSON type Telegram would read it as."""
        if not isinstance(value, str):
            return value
        if name in _INT_PARAMS and _INT_TEXT.fullmatch(value):
            return int(value)
        if name in _BOOL_PARAMS and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if value[:1] in ("{", "[") and name not in _TEXT_PARAMS:
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    def _webhook_headers(self, hook: JSONDict) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if hook["secret_token"]:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
        return headers

    def _delivery(
        self, bot: Bot, update: JSONDict, url: str, status: int | None, error: str | None
    ) -> WebhookDelivery:
        return WebhookDelivery(
            bot.token, update["update_id"], url, status, error, time.perf_counter()
        )

    # ----------------------------------------------- parameter helpers

    @staticmethod
    def _int(params: JSONDict, name: str, default: int | None = None) -> int:
        value = params.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            if value is None:
                raise ApiError(400, f"Bad Request: {name} is empty")
            raise ApiError(400, f"Bad Request: wrong parameter {name} in request")
        return value

    def _chat_ref(self, params: JSONDict, name: str = "chat_id") -> JSONDict:
        """The chat a parameter names, without the blocked-user check."""
        value = params.get(name)
        if value is None or value == "":
            raise ApiError(400, f"Bad Request: {name} is empty")
        if isinstance(value, int) and not isinstance(value, bool) and value != 0:
            return self._store.chat(value)
        raise ApiError(400, "Bad Request: chat not found")

    def _target_chat(self, params: JSONDict) -> JSONDict:
        chat = self._chat_ref(params)
        if chat["id"] in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    @staticmethod
    def _format(params: JSONDict) -> tuple[str, str, list[JSONDict]]:
        """Checks ``text`` like Telegram: the plain text, the raw text, the entities."""
        plain, raw, entities = checked_text(
            params, "text", MAX_TEXT_LENGTH, "Bad Request: message is too long"
        )
        if not plain:
            raise ApiError(400, "Bad Request: message text is empty")
        return plain, raw, entities

    @staticmethod
    def _reply_markup(params: JSONDict) -> JSONDict | None:
        """The inline keyboard, checked like Telegram (other keyboards are refused)."""
        markup = params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ApiError(
                400,
                'Bad Request: can\'t parse inline keyboard: Field "inline_keyboard" '
                "must be of type Array",
            )
        for button in itertools.chain.from_iterable(rows):
            problem = "can't parse inline keyboard button: "
            if not isinstance(button, dict):
                raise ApiError(400, f"Bad Request: {problem}InlineKeyboardButton must be an Object")
            if not isinstance(button.get("text"), str) or not button["text"]:
                raise ApiError(400, f'Bad Request: {problem}Field "text" must be of type String')
            actions = [key for key in _BUTTON_ACTIONS if key in button]
            if not actions:
                raise ApiError(
                    400, f"Bad Request: {problem}Text buttons are unallowed in the inline keyboard"
                )
            if len(actions) > 1:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            if "callback_data" in button:
                data = button["callback_data"]
                size = len(data.encode("utf-8")) if isinstance(data, str) else 0
                if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _reply_to(self, bot: Bot, chat: JSONDict, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        message_id = reply.get("message_id") if isinstance(reply, dict) else None
        if message_id is None:
            message_id = params.get("reply_to_message_id")
        if message_id is None:
            return None
        quoted = self._store.quoted(bot, chat["id"], message_id)
        if quoted is None:
            raise ApiError(400, "Bad Request: message to be replied not found")
        return quoted

    # --------------------------------------------------------- methods

    def _get_me(self, context: Context[Bot]) -> JSONDict:
        return {
            **context.bot.user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _get_updates(self, context: Context[Bot]) -> Later:
        """Confirms the updates before ``offset``; the long poll waits outside the lock."""
        bot = context.bot
        params = context.params
        if bot.webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = self._int(params, "offset", 0)
        limit = min(max(self._int(params, "limit", 100), 1), 100)
        timeout = params.get("timeout", 0)
        if isinstance(timeout, str):
            with contextlib.suppress(ValueError):
                timeout = float(timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ApiError(400, "Bad Request: wrong parameter timeout in request")
        seconds = min(max(float(timeout), 0.0), MAX_LONG_POLL_SECONDS)
        while bot.updates and bot.updates[0]["update_id"] < offset:
            bot.updates.popleft()
        return Later(lambda: self._poll_updates(bot, limit, seconds))

    async def _poll_updates(self, bot: Bot, limit: int, timeout: float) -> list[JSONDict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                if bot.webhook is not None:
                    return []
                updates = list(itertools.islice(bot.updates, limit))
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or self._closing:
                return updates
            # No await between the check above and registering: no wake-up is lost.
            waiter: asyncio.Future[None] = loop.create_future()
            bot.waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                bot.waiters.discard(waiter)

    def _set_webhook(self, context: Context[Bot]) -> bool:
        bot = context.bot
        params = context.params
        url = str(params.get("url") or "")
        if not url:
            return self._delete_webhook(context)
        if not url.startswith(("http://", "https://")):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret not in (None, "") and not (
            isinstance(secret, str) and _SECRET_TOKEN.fullmatch(secret)
        ):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        bot.webhook = {"url": url, "secret_token": secret or None}
        context.description = "Webhook was set"
        self._wake(bot)
        return True

    def _delete_webhook(self, context: Context[Bot]) -> bool:
        bot = context.bot
        if context.params.get("drop_pending_updates"):
            bot.updates.clear()
        had_webhook = bot.webhook is not None
        bot.webhook = None
        context.description = "Webhook was deleted" if had_webhook else "Webhook is already deleted"
        return True

    def _send_message(self, context: Context[Bot]) -> JSONDict:
        params = context.params
        chat = self._target_chat(params)
        text, raw, entities = self._format(params)
        markup = self._reply_markup(params)
        options = params.get("link_preview_options")
        message = self._store.store(
            context.bot,
            chat,
            context.bot.user,
            reply_to_message=self._reply_to(context.bot, chat, params),
            text=text,
            entities=entities or None,
            link_preview_options=options if isinstance(options, dict) else None,
            reply_markup=markup,
            html=raw,
        )
        context.message = dict(message)
        return wire(message)

    def _edit_message_text(self, context: Context[Bot]) -> JSONDict:
        params = context.params
        chat = self._target_chat(params)
        key = (context.bot.id, chat["id"], self._int(params, "message_id"))
        message = self._store.messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message["from"].get("id") != context.bot.id:
            raise ApiError(400, "Bad Request: message can't be edited")
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, raw, entities = self._format(params)
        markup = self._reply_markup(params)
        if (
            text == message["text"]
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise ApiError(400, NOT_MODIFIED)
        message["text"] = text
        message["html"] = raw
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        for name, value in (("entities", entities or None), ("reply_markup", markup)):
            if value is None:
                message.pop(name, None)
            else:
                message[name] = value
        message["edit_date"] = int(time.time())
        context.message = dict(message)
        return wire(message)

    def _answer_callback_query(self, context: Context[Bot]) -> bool:
        query_id = str(context.params.get("callback_query_id") or "")
        if self._store.callback_queries.get(query_id) is not False:
            raise ApiError(400, QUERY_INVALID)
        text = context.params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._store.callback_queries[query_id] = True
        return True

    def _copy_message(self, context: Context[Bot]) -> JSONDict:
        params = context.params
        chat = self._target_chat(params)
        source_chat = self._chat_ref(params, "from_chat_id")
        key = (context.bot.id, source_chat["id"], self._int(params, "message_id"))
        source = self._store.messages.get(key)
        if source is None:
            raise ApiError(400, "Bad Request: message to copy not found")
        fields: JSONDict = {
            name: source[name]
            for name in ("text", "entities", "photo", "caption", "caption_entities")
            if name in source
        }
        message = self._store.store(
            context.bot, chat, context.bot.user, html=source.get("html"), **fields
        )
        context.message = dict(message)
        return {"message_id": message["message_id"]}

    def _set_my_commands(self, context: Context[Bot]) -> bool:
        commands = context.params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            if not _COMMAND.fullmatch(name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description") or "")) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        return True
