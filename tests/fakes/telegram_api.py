"""A local fake of the Telegram Bot API server, for end-to-end tests and benchmarks.

`FakeTelegram` serves ``/bot{token}/{method}`` over real HTTP on 127.0.0.1 from a
Starlette app run by uvicorn on its own thread and event loop, so the real
python-telegram-bot client (``base_url=f"{fake.base_url}/bot"``) talks to it as to
Telegram. It answers with real HTTP status codes and the Bot API JSON envelope
(``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description":
"...", "parameters": {...}}``), checks HTML and MarkdownV2 text the way Telegram
does, long-polls ``getUpdates`` and delivers updates to a webhook by itself.

Tests drive it from their own thread: they push user messages and button presses,
inject failures, then assert what the fake received (`FakeTelegram.calls`,
`FakeTelegram.wait_for`, `FakeTelegram.sent_messages`). All shared state sits behind
one lock; the server loop is woken with ``call_soon_threadsafe``.

Parameters arrive as a query string, a form (urlencoded or multipart) or a JSON
body. Form values are normalized as if they had been posted as JSON: numeric ids
become ints, flags become bools and values that look like a JSON object or array
are decoded, except in free-text parameters such as ``text``.

The module also owns the text parsers (`parse_html`, `parse_markdown_v2`) that turn
formatted text into plain text and entities with offsets in UTF-16 code units.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
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

__all__ = [
    "Call",
    "EntityParseError",
    "FakeTelegram",
    "WebhookDelivery",
    "parse_html",
    "parse_markdown_v2",
    "utf16_len",
]

JSONDict = dict[str, Any]

BOT_FIRST_NAME = "Trợ lý HTX"
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
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
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "reply_to_message_id",
        "message_thread_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "cache_time",
        "max_connections",
        "duration",
        "width",
        "height",
        "until_date",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "disable_content_type_detection",
        "has_spoiler",
        "allow_paid_broadcast",
        "revoke_messages",
        "remove_caption",
        "show_caption_above_media",
    }
)
# Free text is never JSON-decoded, even when it starts with "[" or "{".
_TEXT_PARAMS = frozenset(
    {
        "text",
        "caption",
        "url",
        "secret_token",
        "description",
        "short_description",
        "name",
        "title",
        "query",
        "callback_query_id",
        "inline_message_id",
        "data",
        "parse_mode",
        "action",
        "language_code",
        "ip_address",
        "business_connection_id",
        "message_effect_id",
    }
)
_INT_TEXT = re.compile(r"-?[0-9]{1,20}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
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
_UPDATE_KINDS = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "inline_query",
    "chosen_inline_result",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "message_reaction",
    "poll",
    "poll_answer",
)


# --------------------------------------------------------------------------- text


class EntityParseError(ValueError):
    """Formatted text that Telegram would refuse; the message follows Telegram's wording."""


def utf16_len(text: str) -> int:
    """Returns the length of ``text`` in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_SPECIAL = re.compile(r"[<&]")
_HTML_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,7}));")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_SPACE = " \t\r\n"


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    start: int  # UTF-16 offset in the plain text
    piece: int  # index of the first plain-text piece inside the tag
    begin: int  # index of "<" in the source, for error messages
    language: str | None = None


def _decode_entity(text: str, index: int) -> tuple[str, int] | None:
    """The character of the HTML entity at ``index`` and the index after it, if valid."""
    match = _HTML_ENTITY.match(text, index)
    if match is None:
        return None
    named, decimal, hexadecimal = match.groups()
    if named:
        return _NAMED_ENTITIES[named], match.end()
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


def _decode_attribute(raw: str) -> str:
    if "&" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while i < len(raw):
        decoded = _decode_entity(raw, i) if raw[i] == "&" else None
        if decoded is None:
            out.append(raw[i])
            i += 1
        else:
            out.append(decoded[0])
            i = decoded[1]
    return "".join(out)


def parse_html(text: str) -> tuple[str, list[JSONDict]]:
    """Parses Telegram HTML into plain text and message entities.

    Only Telegram's tags are allowed (b, strong, i, em, u, ins, s, strike, del,
    span class="tg-spoiler", tg-spoiler, a href, code, pre, blockquote [expandable],
    tg-emoji emoji-id); they must nest properly. Every ``<`` must start such a tag and
    every ``&`` an entity (``&lt; &gt; &amp; &quot; &#NN; &#xHH;``). The fake is
    stricter than Telegram here, which keeps a bare ``&`` as text: the project
    escapes everything, so a bare ``&`` is a bug worth failing on.

    Args:
        text: The text as sent with ``parse_mode="HTML"``.

    Returns:
        The plain text and its entities (offsets and lengths in UTF-16 code units),
        sorted by offset, outer entities first.

    Raises:
        EntityParseError: The text is not valid Telegram HTML.
    """
    if "<" not in text and "&" not in text:
        return text, []
    pieces: list[str] = []
    position = 0
    stack: list[_OpenTag] = []
    entities: list[JSONDict] = []
    length = len(text)
    i = 0
    while i < length:
        special = _HTML_SPECIAL.search(text, i)
        stop = special.start() if special else length
        if stop > i:
            chunk = text[i:stop]
            pieces.append(chunk)
            position += utf16_len(chunk)
            i = stop
            if i >= length:
                break
        if text[i] == "&":
            decoded = _decode_entity(text, i)
            if decoded is None:
                raise EntityParseError(
                    f"Character '&' at byte offset {_byte_offset(text, i)} must be escaped as &amp;"
                )
            pieces.append(decoded[0])
            position += utf16_len(decoded[0])
            i = decoded[1]
        elif text.startswith("</", i):
            i = _close_html_tag(text, i, stack, pieces, position, entities)
        else:
            i = _open_html_tag(text, i, stack, pieces, position)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(pieces), entities


def _open_html_tag(
    text: str, begin: int, stack: list[_OpenTag], pieces: list[str], position: int
) -> int:
    """Reads the start tag at ``begin``, pushes it and returns the index after it."""
    length = len(text)
    k = begin + 1
    while k < length and text[k] not in _HTML_SPACE and text[k] != ">":
        k += 1
    name = text[begin + 1 : k].lower()
    offset = _byte_offset(text, begin)
    if k >= length:
        raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
    if name not in _HTML_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
    attrs: dict[str, str] = {}
    while True:
        while k < length and text[k] in _HTML_SPACE:
            k += 1
        if k >= length:
            raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
        if text[k] == ">":
            k += 1
            break
        start = k
        while k < length and (text[k].isascii() and (text[k].isalnum() or text[k] in "-_")):
            k += 1
        attribute = text[start:k].lower()
        if not attribute:
            raise EntityParseError(
                f'Empty attribute name in the tag "{name}" at byte offset {offset}'
            )
        while k < length and text[k] in _HTML_SPACE:
            k += 1
        value = ""
        if k < length and text[k] == "=":
            k += 1
            while k < length and text[k] in _HTML_SPACE:
                k += 1
            if k >= length:
                raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
            if text[k] in "\"'":
                end = text.find(text[k], k + 1)
                if end < 0:
                    raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
                value = _decode_attribute(text[k + 1 : end])
                k = end + 1
            else:
                start = k
                while k < length and text[k] not in _HTML_SPACE and text[k] != ">":
                    k += 1
                value = _decode_attribute(text[start:k])
        attrs[attribute] = value
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise EntityParseError('Custom emoji entity must contain a tag "emoji-id"')
    stack.append(_OpenTag(name, attrs, position, len(pieces), begin))
    return k


def _close_html_tag(
    text: str,
    begin: int,
    stack: list[_OpenTag],
    pieces: list[str],
    position: int,
    entities: list[JSONDict],
) -> int:
    """Reads the end tag at ``begin``, adds its entity and returns the index after it."""
    length = len(text)
    k = begin + 2
    while k < length and text[k] not in _HTML_SPACE and text[k] != ">":
        k += 1
    name = text[begin + 2 : k].lower()
    while k < length and text[k] in _HTML_SPACE:
        k += 1
    offset = _byte_offset(text, begin)
    if k >= length or text[k] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {offset}")
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {offset}")
    tag = stack.pop()
    if name != tag.name:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {offset}, expected "</{tag.name}>", '
            f'found "</{name}>"'
        )
    kind = _HTML_TAGS[tag.name]
    css_class = tag.attrs.get("class", "")
    # <pre><code class="language-x"> is one pre entity with a language.
    if kind == "code" and stack and stack[-1].name == "pre" and css_class.startswith("language-"):
        stack[-1].language = css_class.removeprefix("language-")
        return k + 1
    if position == tag.start:
        return k + 1  # Telegram drops empty entities
    entity: JSONDict = {"type": kind, "offset": tag.start, "length": position - tag.start}
    if kind == "text_link":
        url = tag.attrs.get("href") or "".join(pieces[tag.piece :])
        if not url.strip():
            return k + 1
        entity["url"] = url
    elif kind == "pre" and tag.language:
        entity["language"] = tag.language
    elif kind == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    entities.append(entity)
    return k + 1


_MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "code": "Code",
    "pre": "Pre",
}
_CUSTOM_EMOJI_URL = re.compile(r"tg://emoji\?id=([0-9]+)")


@dataclass
class _MdOpen:
    kind: str
    start: int
    piece: int
    begin: int
    language: str | None = None


def parse_markdown_v2(text: str) -> tuple[str, list[JSONDict]]:
    """Parses Telegram MarkdownV2 into plain text and message entities.

    Follows Telegram's rules: ``_*[]()~`>#+-=|{}.!`` must be escaped with ``\\``
    unless they are markup; inside code and pre only `````` ` `````` and ``\\`` are
    special. Block quotes (``>`` at a line start) are supported in their simple form.

    Args:
        text: The text as sent with ``parse_mode="MarkdownV2"``.

    Returns:
        The plain text and its entities, as `parse_html` returns them.

    Raises:
        EntityParseError: The text is not valid MarkdownV2.
    """
    pieces: list[str] = []
    position = 0
    stack: list[_MdOpen] = []
    entities: list[JSONDict] = []
    length = len(text)
    i = 0

    def add(chunk: str) -> None:
        nonlocal position
        pieces.append(chunk)
        position += utf16_len(chunk)

    def close(entry: _MdOpen, **extra: Any) -> None:
        if position > entry.start:
            entity: JSONDict = {
                "type": entry.kind,
                "offset": entry.start,
                "length": position - entry.start,
            }
            entity.update(extra)
            entities.append(entity)

    def open_entity(kind: str, begin: int, language: str | None = None) -> None:
        stack.append(_MdOpen(kind, position, len(pieces), begin, language))

    while i < length:
        char = text[i]
        if char == "\\" and i + 1 < length and 0 < ord(text[i + 1]) <= 126:
            add(text[i + 1])
            i += 2
            continue
        top = stack[-1].kind if stack else None
        if top in ("code", "pre"):
            if char == "`" and (top == "code" or text.startswith("```", i)):
                entry = stack.pop()
                if entry.language:
                    close(entry, language=entry.language)
                else:
                    close(entry)
                i += 1 if top == "code" else 3
            else:
                add(char)
                i += 1
            continue
        at_line_start = i == 0 or text[i - 1] == "\n"
        if char == "\n" and top == "blockquote" and not text.startswith(">", i + 1):
            close(stack.pop())
            add(char)
            i += 1
            continue
        if char == ">" and at_line_start:
            if not any(entry.kind == "blockquote" for entry in stack):
                open_entity("blockquote", i)
            i += 1
            continue
        if char not in _MD_RESERVED:
            add(char)
            i += 1
            continue
        if (top == "bold" and char == "*") or (
            top == "italic" and char == "_" and not text.startswith("__", i)
        ):
            close(stack.pop())
            i += 1
        elif top == "underline" and text.startswith("__", i):
            close(stack.pop())
            i += 2
        elif top == "strikethrough" and char == "~":
            close(stack.pop())
            i += 1
        elif top == "spoiler" and text.startswith("||", i):
            close(stack.pop())
            i += 2
        elif top in ("text_link", "custom_emoji") and char == "]":
            entry = stack.pop()
            i += 1
            url: str | None = None
            if i < length and text[i] == "(":
                chars: list[str] = []
                j = i + 1
                while j < length and text[j] != ")":
                    if text[j] == "\\" and j + 1 < length and 0 < ord(text[j + 1]) <= 126:
                        chars.append(text[j + 1])
                        j += 2
                    else:
                        chars.append(text[j])
                        j += 1
                if j >= length:
                    raise EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, i)}"
                    )
                url = "".join(chars)
                i = j + 1
            if entry.kind == "custom_emoji":
                match = _CUSTOM_EMOJI_URL.fullmatch(url or "")
                if match is None:
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                close(entry, custom_emoji_id=match.group(1))
            else:
                link = url if url is not None else "".join(pieces[entry.piece :])
                if link:
                    close(entry, url=link)
        elif char == "_":
            if text.startswith("__", i):
                open_entity("underline", i)
                i += 2
            else:
                open_entity("italic", i)
                i += 1
        elif char == "*":
            open_entity("bold", i)
            i += 1
        elif char == "~":
            open_entity("strikethrough", i)
            i += 1
        elif char == "|" and text.startswith("||", i):
            open_entity("spoiler", i)
            i += 2
        elif char == "[":
            open_entity("text_link", i)
            i += 1
        elif char == "!" and text.startswith("![", i):
            open_entity("custom_emoji", i)
            i += 2
        elif char == "`":
            if text.startswith("```", i):
                newline = text.find("\n", i + 3)
                language = None
                begin = i
                i += 3
                if newline >= 0 and "`" not in text[i:newline] and " " not in text[i:newline]:
                    language = text[i:newline] or None
                    i = newline + 1
                open_entity("pre", begin, language)
            else:
                open_entity("code", i)
                i += 1
        else:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
    while stack and stack[-1].kind == "blockquote":
        close(stack.pop())
    if stack:
        entry = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MD_NAMES[entry.kind]} entity at byte offset "
            f"{_byte_offset(text, entry.begin)}"
        )
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(pieces), entities


def _parse_legacy_markdown(text: str) -> tuple[str, list[JSONDict]]:
    """Parses the legacy ``Markdown`` mode: *bold*, _italic_, `code`, [text](url)."""
    pieces: list[str] = []
    entities: list[JSONDict] = []
    position = 0
    i = 0
    kinds = {"*": "bold", "_": "italic", "`": "code"}
    while i < len(text):
        char = text[i]
        if char in kinds:
            end = text.find(char, i + 1)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
            inner = text[i + 1 : end]
            if inner:
                entities.append(
                    {"type": kinds[char], "offset": position, "length": utf16_len(inner)}
                )
            pieces.append(inner)
            position += utf16_len(inner)
            i = end + 1
        elif char == "[":
            match = re.compile(r"\[([^\]]*)\]\(([^)]*)\)").match(text, i)
            if match is None:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
            inner, url = match.groups()
            if inner:
                size = utf16_len(inner)
                entities.append(
                    {"type": "text_link", "offset": position, "length": size, "url": url}
                )
            pieces.append(inner)
            position += utf16_len(inner)
            i = match.end()
        else:
            pieces.append(char)
            position += utf16_len(char)
            i += 1
    return "".join(pieces), entities


def _trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Strips surrounding whitespace as Telegram does and shifts the entities to match."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    if not stripped:
        return "", []
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept: list[JSONDict] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


# ------------------------------------------------------------------------ records


@dataclass
class Call(RecordedCall):
    """One request the fake answered (``params`` normalized as if posted as JSON).

    Attributes:
        message: For calls that created or changed a message (sendMessage,
            copyMessage, forwardMessage, sendPhoto, edits): a snapshot of the stored
            message, with the extra key ``"html"`` (the text as sent).
    """

    message: JSONDict | None = None


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


@dataclass
class _Bot:
    token: str
    id: int
    username: str
    updates: deque[JSONDict] = field(default_factory=deque)
    allowed_updates: list[str] | None = None
    webhook: JSONDict | None = None
    commands: dict[str, list[JSONDict]] = field(default_factory=dict)
    # Owned by the server loop only.
    waiters: set[asyncio.Future[None]] = field(default_factory=set)
    wake: asyncio.Event | None = None
    poster: _Poster = field(default_factory=lambda: _Poster())

    @property
    def user(self) -> JSONDict:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": self.username,
        }


@dataclass
class _Context:
    """One request being handled: its bot and parameters, and what the handler adds."""

    bot: _Bot
    params: JSONDict
    message: JSONDict | None = None
    description: str | None = None


def _normalize(name: str, value: Any) -> Any:
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


def _chat_matches(chat: JSONDict, chat_id: int | str | None) -> bool:
    if chat_id is None:
        return True
    if isinstance(chat_id, str) and chat_id.startswith("@"):
        return f"@{chat.get('username', '')}".lower() == chat_id.lower()
    return bool(chat["id"] == chat_id)


def _wire(message: JSONDict) -> JSONDict:
    """The message as Telegram sends it: the stored record without the fake's extras."""
    return {key: value for key, value in message.items() if key != "html"}


# -------------------------------------------------------------------------- fake


class FakeTelegram(FakeBotServer[Call, WebhookDelivery]):
    """A fake Telegram Bot API server on 127.0.0.1 for tests and benchmarks.

    Use it as a context manager (or call `start` and `stop`) and point the client at
    ``f"{fake.base_url}/bot"``. The test API (`user`, `send_user_message`,
    `press_button`, `push_update`, `calls`, `wait_for`, ...) is thread-safe.

    Args:
        tokens: Bot tokens the fake accepts; the bot id is the number before ``:``.
        bot_username: The username every bot reports in ``getMe``.
    """

    def __init__(
        self, tokens: Iterable[str] = ("123:ABC",), bot_username: str = "tro_ly_htx_bot"
    ) -> None:
        self._init_server("Telegram")
        self._bots: dict[str, _Bot] = {}
        for token in tokens:
            bot_id, _, secret = token.partition(":")
            if not bot_id.isdigit() or not secret:
                raise ValueError(f"a bot token looks like '123:ABC', not {token!r}")
            self._bots[token] = _Bot(token=token, id=int(bot_id), username=bot_username)
        self.bot_username = bot_username

        self._messages: dict[tuple[int, int, int], JSONDict] = {}
        self._sent: dict[tuple[int, int, int], JSONDict] = {}
        self._last_message_id: dict[tuple[int, int], int] = {}
        self._chats: dict[int, JSONDict] = {}
        self._channels: dict[str, int] = {}
        self._users: dict[int, JSONDict] = {}
        self._callback_queries: dict[str, bool] = {}
        self._pushed_at: dict[int, float] = {}
        self._blocked: set[int] = set()
        self._deactivated: set[int] = set()
        self._update_ids = itertools.count(1)
        self._user_ids = itertools.count(100_000_001)
        self._callback_ids = itertools.count(4_382_000_000_001)
        self._channel_ids = itertools.count(1_001_000_000_001)
        self._file_ids = itertools.count(1)

        self._methods: dict[str, tuple[str, Callable[[_Context], Any]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._prepare_get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "answerCallbackQuery": self._answer_callback_query,
                "copyMessage": self._copy_message,
                "forwardMessage": self._forward_message,
                "deleteMessage": self._delete_message,
                "sendChatAction": self._send_chat_action,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "logOut": self._log_out,
                "close": self._log_out,
            }.items()
        }

    # ------------------------------------------------------------- life cycle

    # ------------------------------------------------------------------ HTTP

    async def _read_params(self, request: Request) -> JSONDict:
        params: JSONDict = {}
        query = request.url.query
        if query:
            for name, value in parse_qsl(query, keep_blank_values=True):
                params[name] = _normalize(name, value)
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
            for name, value in data.items():
                params[name] = _normalize(name, value)
        elif content_type.startswith("multipart/form-data"):
            for name, value in _parse_multipart(content_type, body):
                params[name] = _normalize(name, value)
        else:
            for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
                params[name] = _normalize(name, value)
        return params

    async def _endpoint(self, request: Request) -> Response:
        at = time.perf_counter()
        token = request.path_params["token"]
        requested = request.path_params["method"]
        method = requested
        params: JSONDict = {}
        context: _Context | None = None
        try:
            params = await self._read_params(request)
            bot = self._bots.get(token)
            if bot is None:
                raise _ApiError(401, "Unauthorized")
            known = self._methods.get(requested.lower())
            if known is None:
                raise _ApiError(404, "Not Found")
            method, handler = known
            context = _Context(bot, params)
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
                result = handler(context)
            if method == "getUpdates":
                # The handler confirmed the offset; the long poll waits outside the lock.
                result = await self._poll_updates(context, *result)
            status, body = 200, {"ok": True, "result": result}
            if context.description:
                body["description"] = context.description
        except _ApiError as error:
            status, body = error.status, _error_body(error)
        except Exception as exc:  # a bug in the fake: answer it so the test sees it
            crash = _ApiError(500, f"Internal Server Error: fake Telegram failed: {exc!r}")
            status, body = crash.status, _error_body(crash)
        message = context.message if context is not None and status == 200 else None
        call = Call(method, token, params, status, body, at, message)
        with self._lock:
            self._calls.append(call)
            self._changed.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(call)
        return _json_response(status, body)

    # ------------------------------------------------------ parameter helpers

    @staticmethod
    def _int(params: JSONDict, name: str, default: int | None = None) -> int:
        value = params.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            if value is None:
                raise _ApiError(400, f"Bad Request: {name} is empty")
            raise _ApiError(400, f"Bad Request: wrong parameter {name} in request")
        return value

    def _chat_ref(self, params: JSONDict, name: str = "chat_id") -> JSONDict:
        """The chat a parameter names, without the blocked-user check."""
        value = params.get(name)
        if value is None or value == "":
            raise _ApiError(400, f"Bad Request: {name} is empty")
        if isinstance(value, int) and not isinstance(value, bool) and value != 0:
            return self._chat(value)
        if isinstance(value, str) and value.startswith("@") and len(value) > 1:
            return self._channel(value[1:])
        raise _ApiError(400, "Bad Request: chat not found")

    def _target_chat(self, params: JSONDict) -> JSONDict:
        chat = self._chat_ref(params)
        if chat["id"] in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        if chat["id"] in self._deactivated:
            raise _ApiError(403, "Forbidden: user is deactivated")
        return chat

    def _chat(self, chat_id: int, chat_type: str | None = None) -> JSONDict:
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                chat = {"id": chat_id, "type": chat_type or "private"}
                user = self._users.get(chat_id)
                if user is not None:
                    for key in ("first_name", "last_name", "username"):
                        if user.get(key):
                            chat[key] = user[key]
            else:
                chat = {
                    "id": chat_id,
                    "type": chat_type or "supergroup",
                    "title": f"Nhóm {abs(chat_id)}",
                }
            self._chats[chat_id] = chat
        return chat

    def _channel(self, username: str) -> JSONDict:
        chat_id = self._channels.get(username.lower())
        if chat_id is None:
            chat_id = -next(self._channel_ids)
            self._channels[username.lower()] = chat_id
            self._chats[chat_id] = {
                "id": chat_id,
                "type": "channel",
                "title": username,
                "username": username,
            }
        return self._chats[chat_id]

    def _format(
        self, params: JSONDict, name: str, limit: int, required: bool = True
    ) -> tuple[str, str, list[JSONDict]]:
        """Checks formatted text like Telegram: the plain text, the raw text, the entities."""
        raw = params.get(name)
        caption = name == "caption"
        empty = (
            "Bad Request: message caption is empty"
            if caption
            else ("Bad Request: message text is empty")
        )
        if raw is None or raw == "":
            if required:
                raise _ApiError(400, empty)
            return "", "", []
        raw = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        mode = str(params.get("parse_mode") or "")
        try:
            if mode.lower() == "html":
                plain, entities = parse_html(raw)
            elif mode.lower() == "markdownv2":
                plain, entities = parse_markdown_v2(raw)
            elif mode.lower() == "markdown":
                plain, entities = _parse_legacy_markdown(raw)
            elif mode == "":
                given = params.get("caption_entities" if caption else "entities")
                plain, entities = raw, list(given) if isinstance(given, list) else []
            else:
                raise _ApiError(400, "Bad Request: unsupported parse_mode")
        except EntityParseError as exc:
            raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from exc
        plain, entities = _trim(plain, entities)
        if not plain and required:
            raise _ApiError(400, empty)
        if utf16_len(plain) > limit:
            too_long = "message caption is too long" if caption else "message is too long"
            raise _ApiError(400, f"Bad Request: {too_long}")
        return plain, raw, entities

    @staticmethod
    def _reply_markup(params: JSONDict) -> JSONDict | None:
        markup = params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if isinstance(markup, str):
            try:
                markup = json.loads(markup)
            except ValueError:
                markup = None
        if not isinstance(markup, dict):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if not any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
                raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
            return markup
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _ApiError(
                400,
                'Bad Request: can\'t parse inline keyboard: Field "inline_keyboard" '
                "must be of type Array",
            )
        for button in itertools.chain.from_iterable(rows):
            if not isinstance(button, dict):
                raise _ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: "
                    "InlineKeyboardButton must be an Object",
                )
            if not isinstance(button.get("text"), str) or not button["text"]:
                raise _ApiError(
                    400,
                    'Bad Request: can\'t parse inline keyboard button: Field "text" '
                    "must be of type String",
                )
            actions = [key for key in _BUTTON_ACTIONS if key in button]
            if not actions:
                raise _ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard",
                )
            if len(actions) > 1:
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            if "callback_data" in button:
                data = button["callback_data"]
                size = len(data.encode("utf-8")) if isinstance(data, str) else 0
                if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            if "url" in button:
                url = button["url"]
                if not isinstance(url, str) or not url or any(c.isspace() for c in url):
                    raise _ApiError(
                        400,
                        f"Bad Request: inline keyboard button URL '{url}' is invalid: "
                        "Wrong HTTP URL",
                    )
        return markup

    def _reply_to(self, bot: _Bot, chat: JSONDict, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, str):
            with contextlib.suppress(ValueError):
                reply = json.loads(reply)
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow = bool(reply.get("allow_sending_without_reply"))
            if reply.get("chat_id") not in (None, chat["id"]):
                chat = self._chat_ref(reply, "chat_id")
        else:
            message_id = params.get("reply_to_message_id")
            allow = bool(params.get("allow_sending_without_reply"))
        if message_id is None:
            return None
        original = self._messages.get((bot.id, chat["id"], message_id))
        if original is None:
            if allow:
                return None
            raise _ApiError(400, "Bad Request: message to be replied not found")
        quoted = _wire(original)
        quoted.pop("reply_to_message", None)
        return quoted

    def _store(self, bot: _Bot, chat: JSONDict, sender: JSONDict, **fields: Any) -> JSONDict:
        """Creates a message in ``chat`` with the chat's next message id."""
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
        self._messages[(bot.id, chat["id"], message_id)] = message
        if sender.get("id") == bot.id and sender.get("is_bot"):
            self._sent[(bot.id, chat["id"], message_id)] = message
        return message

    def _bot_message(self, context: _Context, not_found: str) -> JSONDict:
        chat = self._target_chat(context.params)
        if context.params.get("inline_message_id"):
            raise _ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        message_id = self._int(context.params, "message_id")
        message = self._messages.get((context.bot.id, chat["id"], message_id))
        if message is None:
            raise _ApiError(400, not_found)
        return message

    # --------------------------------------------------------------- methods

    def _get_me(self, context: _Context) -> JSONDict:
        return {
            **context.bot.user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _prepare_get_updates(self, context: _Context) -> tuple[int, int, float]:
        bot, params = context.bot, context.params
        if bot.webhook is not None:
            raise _ApiError(409, WEBHOOK_CONFLICT)
        offset = self._int(params, "offset", 0)
        limit = min(max(self._int(params, "limit", 100), 1), 100)
        timeout = params.get("timeout", 0)
        if isinstance(timeout, str):
            with contextlib.suppress(ValueError):
                timeout = float(timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise _ApiError(400, "Bad Request: wrong parameter timeout in request")
        timeout = min(max(float(timeout), 0.0), MAX_LONG_POLL_SECONDS)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(kind) for kind in allowed] or None
        if offset > 0:
            while bot.updates and bot.updates[0]["update_id"] < offset:
                bot.updates.popleft()
        elif offset < 0:
            while len(bot.updates) > -offset:
                bot.updates.popleft()
        return offset, limit, timeout

    async def _poll_updates(
        self, context: _Context, offset: int, limit: int, timeout: float
    ) -> list[JSONDict]:
        bot = context.bot
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                if bot.webhook is not None:
                    return []
                if offset >= 0:
                    updates = list(itertools.islice(bot.updates, limit))
                else:
                    updates = list(bot.updates)[-limit:]
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

    def _set_webhook(self, context: _Context) -> bool:
        bot, params = context.bot, context.params
        url = str(params.get("url") or "")
        if not url:
            return self._delete_webhook(context)
        if not url.startswith(("http://", "https://")):
            raise _ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret not in (None, "") and not (
            isinstance(secret, str) and _SECRET_TOKEN.fullmatch(secret)
        ):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(kind) for kind in allowed] or None
        bot.webhook = {
            "url": url,
            "secret_token": secret or None,
            "max_connections": params.get("max_connections", 40),
            "allowed_updates": bot.allowed_updates,
            "ip_address": "127.0.0.1",
        }
        context.description = "Webhook was set"
        self._wake(bot)
        return True

    def _delete_webhook(self, context: _Context) -> bool:
        bot = context.bot
        if context.params.get("drop_pending_updates"):
            bot.updates.clear()
        had_webhook = bot.webhook is not None
        bot.webhook = None
        context.description = (
            "Webhook was deleted" if had_webhook else ("Webhook is already deleted")
        )
        return True

    def _get_webhook_info(self, context: _Context) -> JSONDict:
        bot = context.bot
        info: JSONDict = {
            "url": bot.webhook["url"] if bot.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }
        if bot.webhook is not None:
            for key in (
                "ip_address",
                "max_connections",
                "allowed_updates",
                "last_error_date",
                "last_error_message",
            ):
                if bot.webhook.get(key) is not None:
                    info[key] = bot.webhook[key]
        return info

    def _send_message(self, context: _Context) -> JSONDict:
        params = context.params
        chat = self._target_chat(params)
        text, raw, entities = self._format(params, "text", MAX_TEXT_LENGTH)
        markup = self._reply_markup(params)
        reply = self._reply_to(context.bot, chat, params)
        options = params.get("link_preview_options")
        message = self._store(
            context.bot,
            chat,
            context.bot.user,
            reply_to_message=reply,
            text=text,
            entities=entities or None,
            link_preview_options=options if isinstance(options, dict) else None,
            has_protected_content=True if params.get("protect_content") else None,
            reply_markup=markup,
            html=raw,
        )
        context.message = dict(message)
        return _wire(message)

    def _send_photo(self, context: _Context) -> JSONDict:
        params = context.params
        chat = self._target_chat(params)
        if params.get("photo") in (None, ""):
            raise _ApiError(400, "Bad Request: there is no photo in the request")
        caption, raw, entities = self._format(params, "caption", MAX_CAPTION_LENGTH, False)
        markup = self._reply_markup(params)
        reply = self._reply_to(context.bot, chat, params)
        message = self._store(
            context.bot,
            chat,
            context.bot.user,
            reply_to_message=reply,
            photo=self._photo_sizes(),
            caption=caption or None,
            caption_entities=entities or None,
            reply_markup=markup,
            html=raw or None,
        )
        context.message = dict(message)
        return _wire(message)

    def _photo_sizes(self) -> list[JSONDict]:
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

    def _edit_message_text(self, context: _Context) -> JSONDict:
        message = self._bot_message(context, "Bad Request: message to edit not found")
        if message["from"].get("id") != context.bot.id:
            raise _ApiError(400, "Bad Request: message can't be edited")
        if "text" not in message:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        text, raw, entities = self._format(context.params, "text", MAX_TEXT_LENGTH)
        markup = self._reply_markup(context.params)
        if (
            text == message["text"]
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise _ApiError(400, NOT_MODIFIED)
        message["text"] = text
        message["html"] = raw
        self._set_optional(message, "entities", entities or None)
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        self._set_optional(message, "reply_markup", markup)
        message["edit_date"] = int(time.time())
        context.message = dict(message)
        return _wire(message)

    def _edit_message_reply_markup(self, context: _Context) -> JSONDict:
        message = self._bot_message(context, "Bad Request: message to edit not found")
        if message["from"].get("id") != context.bot.id:
            raise _ApiError(400, "Bad Request: message can't be edited")
        markup = self._reply_markup(context.params)
        if markup == message.get("reply_markup"):
            raise _ApiError(400, NOT_MODIFIED)
        self._set_optional(message, "reply_markup", markup)
        message["edit_date"] = int(time.time())
        context.message = dict(message)
        return _wire(message)

    @staticmethod
    def _set_optional(message: JSONDict, key: str, value: Any) -> None:
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value

    def _answer_callback_query(self, context: _Context) -> bool:
        query_id = str(context.params.get("callback_query_id") or "")
        if self._callback_queries.get(query_id) is not False:
            raise _ApiError(400, QUERY_INVALID)
        text = context.params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._callback_queries[query_id] = True
        return True

    def _source_message(self, context: _Context, not_found: str) -> JSONDict:
        source_chat = self._chat_ref(context.params, "from_chat_id")
        message_id = self._int(context.params, "message_id")
        source = self._messages.get((context.bot.id, source_chat["id"], message_id))
        if source is None:
            raise _ApiError(400, not_found)
        return source

    def _copy_message(self, context: _Context) -> JSONDict:
        params = context.params
        chat = self._target_chat(params)
        source = self._source_message(context, "Bad Request: message to copy not found")
        fields: JSONDict = {
            key: source[key]
            for key in ("text", "entities", "photo", "caption", "caption_entities")
            if key in source
        }
        if "caption" in params and "photo" in source:
            caption, _, entities = self._format(params, "caption", MAX_CAPTION_LENGTH, False)
            fields["caption"] = caption or None
            fields["caption_entities"] = entities or None
        message = self._store(
            context.bot,
            chat,
            context.bot.user,
            reply_to_message=self._reply_to(context.bot, chat, params),
            reply_markup=self._reply_markup(params),
            html=source.get("html"),
            **fields,
        )
        context.message = dict(message)
        return {"message_id": message["message_id"]}

    def _forward_message(self, context: _Context) -> JSONDict:
        chat = self._target_chat(context.params)
        source = self._source_message(context, "Bad Request: message to forward not found")
        if source["chat"]["type"] == "channel":
            origin: JSONDict = {
                "type": "channel",
                "date": source["date"],
                "chat": source["chat"],
                "message_id": source["message_id"],
            }
        else:
            origin = {"type": "user", "date": source["date"], "sender_user": source["from"]}
        fields = {
            key: source[key]
            for key in ("text", "entities", "photo", "caption", "caption_entities")
            if key in source
        }
        message = self._store(
            context.bot,
            chat,
            context.bot.user,
            forward_origin=origin,
            html=source.get("html"),
            **fields,
        )
        context.message = dict(message)
        return _wire(message)

    def _delete_message(self, context: _Context) -> bool:
        chat = self._chat_ref(context.params)
        message_id = self._int(context.params, "message_id")
        key = (context.bot.id, chat["id"], message_id)
        if self._messages.pop(key, None) is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        self._sent.pop(key, None)
        return True

    def _send_chat_action(self, context: _Context) -> bool:
        self._target_chat(context.params)
        if context.params.get("action") not in _CHAT_ACTIONS:
            raise _ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    @staticmethod
    def _commands_key(params: JSONDict) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def _set_my_commands(self, context: _Context) -> bool:
        commands = context.params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND.fullmatch(
                str(command.get("command", ""))
            ):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description") or "")) <= 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        context.bot.commands[self._commands_key(context.params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _get_my_commands(self, context: _Context) -> list[JSONDict]:
        return list(context.bot.commands.get(self._commands_key(context.params), []))

    def _delete_my_commands(self, context: _Context) -> bool:
        context.bot.commands.pop(self._commands_key(context.params), None)
        return True

    def _log_out(self, context: _Context) -> bool:
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
            headers = {"Content-Type": "application/json"}
            if hook["secret_token"]:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            body = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            status: int | None = None
            error: str | None = None
            try:
                if hook["url"].startswith("http://"):
                    status = await bot.poster.post(hook["url"], body, headers)
                else:
                    response = await self._http.post(hook["url"], content=body, headers=headers)
                    status = response.status_code
                if status != 200:
                    error = f"Wrong response from the webhook: {status}"
            except (httpx.HTTPError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                if error is not None:
                    hook["last_error_date"] = int(time.time())
                    hook["last_error_message"] = error
                self._deliveries.append(
                    WebhookDelivery(
                        bot.token,
                        update["update_id"],
                        hook["url"],
                        status,
                        None if status is not None else error,
                        time.perf_counter(),
                    )
                )
                self._changed.notify_all()

    # ---------------------------------------------------------------- test API

    def user(
        self,
        user_id: int | None = None,
        first_name: str = "Nguyễn Văn A",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "vi",
    ) -> JSONDict:
        """Creates (or replaces) a Telegram user; ids are allocated when not given."""
        with self._lock:
            if user_id is None:
                user_id = next(self._user_ids)
            user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
            if last_name:
                user["last_name"] = last_name
            if username:
                user["username"] = username
            if language_code:
                user["language_code"] = language_code
            self._users[user_id] = user
            return dict(user)

    def _user_chat(self, user: JSONDict, chat_id: int | None, chat_type: str | None) -> JSONDict:
        self._users.setdefault(user["id"], dict(user))
        chat = self._chat(chat_id if chat_id is not None else user["id"], chat_type)
        if chat["type"] == "private" and "first_name" not in chat and chat["id"] == user["id"]:
            # The bot wrote first (a broadcast): the chat learns its name now. A new
            # dict, so messages stored earlier keep the chat as they were sent.
            chat = {
                **chat,
                **{k: user[k] for k in ("first_name", "last_name", "username") if k in user},
            }
            self._chats[chat["id"]] = chat
        return chat

    def send_user_message(
        self,
        token: str,
        user: JSONDict,
        text: str,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
        chat_type: str | None = None,
    ) -> JSONDict:
        """Pushes a text message from ``user`` (in their private chat unless ``chat_id``).

        A text starting with ``/`` gets a ``bot_command`` entity. Returns the update.
        """
        bot = self._bot(token)
        with self._lock:
            chat = self._user_chat(user, chat_id, chat_type)
            reply = None
            if reply_to_message_id is not None:
                original = self._messages.get((bot.id, chat["id"], reply_to_message_id))
                if original is None:
                    raise KeyError(f"no message {reply_to_message_id} in chat {chat['id']}")
                reply = _wire(original)
                reply.pop("reply_to_message", None)
            entities = None
            command = re.match(r"/\S+", text)
            if command is not None and len(command.group()) > 1:
                length = utf16_len(command.group())
                entities = [{"type": "bot_command", "offset": 0, "length": length}]
            message = self._store(
                bot, chat, user, reply_to_message=reply, text=text, entities=entities
            )
            update = self._push_locked(bot, {"message": _wire(message)})
        self._notify(bot)
        return update

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
        bot = self._bot(token)
        with self._lock:
            chat = self._user_chat(user, chat_id, None)
            extra: JSONDict = {}
            if reply_to_message_id is not None:
                extra["reply_to_message"] = _wire(
                    self._messages[(bot.id, chat["id"], reply_to_message_id)]
                )
            message = self._store(
                bot, chat, user, photo=self._photo_sizes(), caption=caption, **extra
            )
            update = self._push_locked(bot, {"message": _wire(message)})
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
            stored = self._messages.get((bot.id, chat_id, message_id))
            if stored is None:
                raise KeyError(f"no message {message_id} in chat {chat_id}")
            self._users.setdefault(user["id"], dict(user))
            query_id = str(next(self._callback_ids))
            self._callback_queries[query_id] = False
            query = {
                "id": query_id,
                "from": user,
                "message": _wire(stored),
                "chat_instance": str(7_000_000_000_000_000_000 + abs(chat_id)),
                "data": data,
            }
            update = self._push_locked(bot, {"callback_query": query})
        self._notify(bot)
        return update

    def push_update(self, token: str, update: JSONDict) -> JSONDict:
        """Assigns an ``update_id`` to ``update`` and queues or delivers it; returns it.

        Updates of a kind the bot excluded with ``allowed_updates`` are not queued,
        as on Telegram.
        """
        bot = self._bot(token)
        with self._lock:
            pushed = self._push_locked(bot, update)
        self._notify(bot)
        return pushed

    def _push_locked(self, bot: _Bot, update: JSONDict) -> JSONDict:
        update_id = next(self._update_ids)
        pushed = {"update_id": update_id, **update}
        self._pushed_at[update_id] = time.perf_counter()
        kind = next((key for key in update if key in _UPDATE_KINDS), None)
        if bot.allowed_updates is None or kind is None or kind in bot.allowed_updates:
            bot.updates.append(pushed)
        return dict(pushed)

    def unconfirmed(self, token: str) -> int:
        """Updates of the bot that no ``getUpdates`` offset has confirmed yet."""
        bot = self._bot(token)
        with self._lock:
            return len(bot.updates)

    def pushed_at(self, update_id: int) -> float:
        """``time.perf_counter()`` when the update was pushed."""
        with self._lock:
            return self._pushed_at[update_id]

    def calls(self, method: str | None = None, token: str | None = None) -> list[Call]:
        """The requests answered so far, oldest first, optionally filtered."""
        wanted = method.lower() if method else None
        with self._lock:
            return [
                call
                for call in self._calls
                if (wanted is None or call.method.lower() == wanted)
                and (token is None or call.token == token)
            ]

    def sent_messages(self, chat_id: int | str | None = None) -> list[JSONDict]:
        """The bot's messages still in the chats, with edits applied, oldest first.

        Each is the stored Message dict plus ``"html"``: the text as sent, before
        parsing (whatever the parse mode).
        """
        with self._lock:
            return [
                dict(message)
                for message in self._sent.values()
                if _chat_matches(message["chat"], chat_id)
            ]

    def message(self, chat_id: int, message_id: int, token: str | None = None) -> JSONDict:
        """The stored message (user's or bot's) with edits applied."""
        bot = self._bot(token) if token else next(iter(self._bots.values()))
        with self._lock:
            return dict(self._messages[(bot.id, chat_id, message_id)])

    def wait_for_message(
        self,
        chat_id: int | str,
        text_contains: str | None = None,
        timeout: float = 10.0,
        count: int = 1,
    ) -> list[JSONDict]:
        """Waits for successful sendMessage/copyMessage calls into ``chat_id``.

        Returns:
            The messages those calls created (Message dicts plus ``"html"``).
        """

        def matches(call: Call) -> bool:
            message = call.message
            if call.method not in ("sendMessage", "copyMessage") or message is None:
                return False
            if not call.ok or not _chat_matches(message["chat"], chat_id):
                return False
            text = message.get("text") or message.get("caption") or ""
            return text_contains is None or text_contains in text

        found = self.wait_for(matches, timeout=timeout, count=count)
        return [call.message for call in found if call.message is not None]

    def block(self, chat_id: int) -> None:
        """Makes sends to ``chat_id`` fail with 403 "bot was blocked by the user"."""
        with self._lock:
            self._blocked.add(chat_id)

    def deactivate(self, chat_id: int) -> None:
        """Makes sends to ``chat_id`` fail with 403 "user is deactivated"."""
        with self._lock:
            self._deactivated.add(chat_id)

    def webhook(self, token: str) -> JSONDict | None:
        """The webhook set for ``token`` (url, secret_token, ...), or None."""
        bot = self._bot(token)
        with self._lock:
            return dict(bot.webhook) if bot.webhook is not None else None

    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every webhook delivery so far, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def reset(self) -> None:
        """Forgets calls, messages, updates, failures, webhooks, blocks and commands.

        Update ids keep growing, so a client's ``offset`` from before stays valid.
        """
        with self._lock:
            self._calls = []
            self._messages.clear()
            self._sent.clear()
            self._last_message_id.clear()
            self._callback_queries.clear()
            self._pushed_at.clear()
            self._failures.clear()
            self._delays.clear()
            self._blocked.clear()
            self._deactivated.clear()
            self._deliveries = []
            for bot in self._bots.values():
                bot.updates.clear()
                bot.webhook = None
                bot.allowed_updates = None
                bot.commands.clear()
            self._changed.notify_all()
