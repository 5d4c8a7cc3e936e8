"""Share links to knowledge-base entries: the web page, the Telegram deep link, QR codes.

A trainer points learners at an entry with one of these links. Each can carry
the trainer's code, so that opens are counted per trainer:

- the web page ``<PUBLIC_BASE_URL>/faq/<entry id>`` (``?t=<code>``);
- the Telegram deep link ``https://t.me/<bot>?start=faq-<entry id>`` (``-t<code>``
  appended), when the bot's username is configured; the bot receives
  ``/start faq-<entry id>[-t<code>]`` (at most 64 characters, ``A-Z a-z 0-9 _ -``);
- Zalo offers no deep link that carries a payload into a bot chat (CHANNELS.md),
  so its link is the web page.

QR codes are drawn with ``segno`` (SVG for pages, PNG for chats and handouts).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

import segno

from knowledge.base import ENTRY_ID_PATTERN

__all__ = [
    "TRAINER_CODE",
    "EntryLinks",
    "QRCode",
    "deep_link_payload",
    "entry_links",
    "parse_deep_link",
    "parse_trainer_code",
    "qr_png",
    "qr_svg",
]

TRAINER_CODE: Final = re.compile(r"[a-z0-9]{4,12}")
_ENTRY_ID: Final = re.compile(ENTRY_ID_PATTERN)
_DEEP_LINK: Final = re.compile(r"faq-([a-z0-9_-]{1,60})")
_CODE_MARK: Final = "-t"  # between the entry id and the trainer's code
_MAX_PAYLOAD: Final = 64  # Telegram's limit on a deep link's start parameter


@dataclass(frozen=True, slots=True)
class EntryLinks:
    """Where an entry can be opened: the web page, Telegram, Zalo (the web page)."""

    entry_id: str
    web: str
    telegram: str | None

    @property
    def zalo(self) -> str:
        """Zalo has no deep link with a payload: the web page."""
        return self.web

    def by_kind(self) -> dict[str, str]:
        """``{"web": ..., "telegram": ..., "zalo": ...}`` without the missing ones."""
        links = {"web": self.web, "zalo": self.zalo}
        if self.telegram is not None:
            links["telegram"] = self.telegram
        return links


def deep_link_payload(entry_id: str, trainer_code: str | None = None) -> str:
    """The ``/start`` payload that opens ``entry_id`` (with the trainer's code, if any)."""
    payload = f"faq-{entry_id}" + (f"{_CODE_MARK}{trainer_code}" if trainer_code else "")
    code_ok = trainer_code is None or TRAINER_CODE.fullmatch(trainer_code) is not None
    if len(payload) > _MAX_PAYLOAD or not _ENTRY_ID.match(entry_id) or not code_ok:
        raise ValueError(f"no deep link can carry {payload!r}")
    return payload


def parse_deep_link(
    payload: str, exists: Callable[[str], bool] | None = None
) -> tuple[str, str | None] | None:
    """``(entry id, trainer code or None)`` of a ``/start`` payload; None if it is not one.

    Entry ids may contain ``-``, so ``faq-a-tb123`` reads as entry ``a`` with code
    ``b123`` or as entry ``a-tb123``; ``exists`` (an entry id is known) decides, the
    trainer's reading first. Without it the trainer's reading wins when well formed.
    """
    match = _DEEP_LINK.fullmatch(payload.strip().lower())
    if match is None:
        return None
    body = match.group(1)
    head, mark, code = body.rpartition(_CODE_MARK)
    readings: list[tuple[str, str | None]] = []
    if mark and TRAINER_CODE.fullmatch(code):
        readings.append((head, code))
    readings.append((body, None))
    for entry_id, trainer in readings:
        if _ENTRY_ID.match(entry_id) and (exists is None or exists(entry_id)):
            return entry_id, trainer
    return None


def parse_trainer_code(value: str | None) -> str | None:
    """The trainer's code in a ``?t=`` value, or None when it is missing or malformed."""
    code = (value or "").strip().lower()
    return code if TRAINER_CODE.fullmatch(code) else None


def entry_links(
    base_url: str,
    entry_id: str,
    *,
    telegram_username: str | None = None,
    trainer_code: str | None = None,
) -> EntryLinks:
    """The links to ``entry_id``; ``base_url`` is the public base (no trailing slash)."""
    web = f"{base_url.rstrip('/')}/faq/{quote(entry_id)}"
    if trainer_code:
        web += f"?t={quote(trainer_code)}"
    telegram = None
    if telegram_username:
        telegram = (
            f"https://t.me/{telegram_username}?start={deep_link_payload(entry_id, trainer_code)}"
        )
    return EntryLinks(entry_id=entry_id, web=web, telegram=telegram)


@dataclass(frozen=True, slots=True)
class QRCode:
    """A QR code of ``url`` as PNG bytes (for chats and handouts)."""

    url: str
    png: bytes


def _qr(url: str) -> segno.QRCode:
    return segno.make_qr(url, error="m")


def qr_svg(url: str, *, scale: int = 4, title: str | None = None) -> str:
    """The QR code of ``url`` as an SVG document (a quiet zone of 4 modules included)."""
    buffer = io.BytesIO()
    _qr(url).save(buffer, kind="svg", scale=scale, xmldecl=False, title=title, border=4)
    return buffer.getvalue().decode("utf-8")


def qr_png(url: str, *, scale: int = 8) -> QRCode:
    """The QR code of ``url`` as a PNG image (a quiet zone of 4 modules included)."""
    buffer = io.BytesIO()
    _qr(url).save(buffer, kind="png", scale=scale, border=4)
    return QRCode(url=url, png=buffer.getvalue())
