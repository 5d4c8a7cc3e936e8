"""The shape of a Zalo update, checked (pydantic, strict types) before anything reads it.

Ids may be strings or integers (the platform sends strings; some tools send
numbers) but never booleans, lists or objects; a text is a string. Only the
fields the assistant reads are named: everything else is allowed and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

__all__ = ["ZaloUpdate", "invalid_field"]

_Id = Annotated[StrictStr, Field(min_length=1, max_length=64)] | StrictInt


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Sender(_Part):
    id: _Id
    display_name: StrictStr | None = None
    first_name: StrictStr | None = None


class Chat(_Part):
    id: _Id


class Message(_Part):
    message_id: Annotated[StrictStr, Field(min_length=1)] | StrictInt
    chat: Chat
    sender: Sender | None = Field(default=None, alias="from")
    text: StrictStr | None = None
    date: Any = None  # read leniently: a bad date becomes the time of arrival


class ZaloUpdate(_Part):
    """An event as the assistant reads it: its name and its message."""

    event_name: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    message: Message


def invalid_field(error: ValidationError) -> str:
    """The first offending field, dotted ("message.chat.id"), for errors; never the value."""
    location = [str(part) for part in error.errors()[0]["loc"]]
    # A union reports the member type tried ("str", "int"): the field is what matters.
    named = [part for part in location if part not in {"str", "int", "constrained-str"}]
    return ".".join(part if part != "sender" else "from" for part in named) or "update"
