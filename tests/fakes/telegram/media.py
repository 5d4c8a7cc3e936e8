"""Photos in the fake Telegram server: ``sendPhoto``, captions, the sizes Telegram makes.

A photo is uploaded as the file part ``photo`` of a multipart/form-data body (what
python-telegram-bot posts for ``photo=bytes`` or an ``InputFile``), or named by the
``file_id`` of a photo the fake already holds. An upload must be an image Pillow can
read (else ``IMAGE_PROCESS_FAILED``, as Telegram answers), at most 10 MB, with
width + height at most 10,000 and sides at most 20 to 1 (else
``PHOTO_INVALID_DIMENSIONS``). The fake never fetches an HTTP URL: it answers
"failed to get HTTP URL content", as Telegram does for a URL it cannot fetch.

The caption is checked like a message text (the parse mode, HTML entities), at most
1024 characters after parsing and trimming; an empty caption is no caption. The
message gets a ``photo`` array of PhotoSize objects: the image scaled into the
boxes Telegram uses (90, 320, 800 and 1280 pixels), up to the image's own size.
The uploaded bytes are kept under the largest size's ``file_id``
(`tests.fakes.telegram.FakeTelegram.file_bytes`).
"""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image

from tests.fakes.telegram.entities import EntityParseError, parse_html, trim, utf16_len
from tests.fakes.telegram.state import wire
from tests.fakes.wire import ApiError, Context, JSONDict, UploadedFile

__all__ = ["MAX_CAPTION_LENGTH", "PhotoMethods", "checked_text", "formatted", "image_size"]

MAX_CAPTION_LENGTH = 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_SIDES = 10_000  # width + height
MAX_PHOTO_RATIO = 20


def formatted(raw: str, parse_mode: Any) -> tuple[str, list[JSONDict]]:
    """The plain text and entities of a text or caption sent with ``parse_mode``, trimmed.

    Raises:
        ApiError: The parse mode is not one the fake plays, or the HTML does not parse.
    """
    mode = str(parse_mode or "")
    if mode.lower() == "html":
        try:
            plain, entities = parse_html(raw)
        except EntityParseError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from exc
    elif mode == "":
        plain, entities = raw, []
    else:
        raise ApiError(400, "Bad Request: unsupported parse_mode (the fake plays HTML only)")
    return trim(plain, entities)


def checked_text(
    params: JSONDict, name: str, limit: int, too_long: str
) -> tuple[str, str, list[JSONDict]]:
    """A text or caption parameter as Telegram reads it: plain text, raw text, entities.

    All three are empty when the parameter is missing or empty.

    Raises:
        ApiError: The formatting does not parse, or the plain text is over ``limit``
            UTF-16 units (the description is ``too_long``).
    """
    raw = params.get(name)
    if raw is None or raw == "":
        return "", "", []
    raw = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    plain, entities = formatted(raw, params.get("parse_mode"))
    if utf16_len(plain) > limit:
        raise ApiError(400, too_long)
    return plain, raw, entities


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of an uploaded photo, checked like Telegram checks them.

    Raises:
        ApiError: Not an image, too large, or sides out of proportion.
    """
    if len(data) > MAX_PHOTO_BYTES:
        raise ApiError(400, "Bad Request: file is too big")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception as exc:  # Pillow raises several kinds for bytes that are no image
        raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from exc
    if (
        width < 1
        or height < 1
        or width + height > MAX_PHOTO_SIDES
        or max(width, height) > MAX_PHOTO_RATIO * min(width, height)
    ):
        raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    return width, height


class PhotoMethods:
    """``sendPhoto``, for `tests.fakes.telegram.methods.TelegramBotApi`.

    It uses the API's store (``_store``) and its checks of the chat, the keyboard and
    the message replied to (``_target_chat``, ``_reply_markup``, ``_reply_to``).
    """

    _store: Any

    def _send_photo(self, context: Context[Any]) -> JSONDict:
        params = context.params
        chat = self._target_chat(params)
        sizes = self._photo(params.get("photo"))
        caption, raw, entities = self._caption(params)
        markup = self._reply_markup(params)
        message = self._store.store(
            context.bot,
            chat,
            context.bot.user,
            reply_to_message=self._reply_to(context.bot, chat, params),
            photo=sizes,
            caption=caption or None,
            caption_entities=entities or None,
            reply_markup=markup,
            html=raw if caption else None,
        )
        context.message = dict(message)
        return wire(message)

    def _photo(self, value: Any) -> list[JSONDict]:
        """The PhotoSize array of an upload or of a ``file_id`` the fake holds."""
        if isinstance(value, UploadedFile):
            width, height = image_size(value.data)
            sizes: list[JSONDict] = self._store.upload(value.data, width, height)
            return sizes
        if not isinstance(value, str) or not value:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        if value.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: failed to get HTTP URL content")
        known: list[JSONDict] | None = self._store.photo_of(value)
        if known is None:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return known

    @staticmethod
    def _caption(params: JSONDict) -> tuple[str, str, list[JSONDict]]:
        """The caption's plain text, raw text and entities ("" when there is none)."""
        return checked_text(
            params, "caption", MAX_CAPTION_LENGTH, "Bad Request: message caption is too long"
        )
