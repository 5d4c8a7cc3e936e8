"""The shape of a Telegram update, checked before python-telegram-bot reads it.

python-telegram-bot builds its objects from whatever JSON arrives: a text that
is a number or a chat id that is a string passes through and ends in a member
row with the wrong key, or in the apology. A webhook body is validated against
these models first (strict types: no number where a string belongs, and no
string where a number belongs); only the fields the assistant reads are named,
everything else is allowed and left to python-telegram-bot.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

__all__ = ["TelegramUpdate", "invalid_field"]

_MAX_TEXT = 4096  # Telegram's own limit for a message text
_MAX_DATA = 64  # and for callback data


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class User(_Part):
    id: StrictInt
    is_bot: StrictBool = False
    first_name: StrictStr = ""
    last_name: StrictStr | None = None
    username: StrictStr | None = None
    language_code: StrictStr | None = None


class Chat(_Part):
    id: StrictInt
    type: StrictStr


class Message(_Part):
    message_id: StrictInt
    date: StrictInt
    chat: Chat
    sender: User | None = Field(default=None, alias="from")
    text: StrictStr | None = Field(default=None, max_length=_MAX_TEXT)
    reply_to_message: Message | None = None


class CallbackQuery(_Part):
    id: StrictStr
    sender: User = Field(alias="from")
    data: StrictStr | None = Field(default=None, max_length=_MAX_DATA)
    message: Message | None = None


class TelegramUpdate(_Part):
    """An update as the assistant reads it: an id, and a message or a button press."""

    update_id: StrictInt
    message: Message | None = None
    edited_message: Message | None = None
    callback_query: CallbackQuery | None = None


def invalid_field(error: ValidationError) -> str:
    """The first offending field, dotted ("message.chat.id"), for the log; never the value."""
    location = error.errors()[0]["loc"]
    return ".".join(str(part) for part in location) or "update"
