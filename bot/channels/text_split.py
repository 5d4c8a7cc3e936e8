"""Splitting long texts for channels with a message size limit."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["split_text", "utf16_len"]

_SENTENCE_END = re.compile(r"(?<=[.!?…;:])\s+")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts (an emoji may count 2)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, length: Callable[[str], int] | None = None) -> list[str]:
    """Splits ``text`` into chunks of at most ``limit`` units.

    Cuts at paragraph breaks first, then line breaks, then sentence ends, then
    spaces; a single word longer than the limit is cut hard. Chunks keep their
    order; whitespace at the cut points is dropped.
    """
    measure = length or utf16_len
    if limit < 1:
        raise ValueError("limit must be positive")
    if measure(text) <= limit:
        return [text]
    chunks: list[str] = []
    _split(text, limit, measure, ("\n\n", "\n", "sentence", " "), chunks)
    return [c for c in chunks if c.strip()]


def _pieces(text: str, separator: str) -> list[str]:
    if separator == "sentence":
        return _SENTENCE_END.split(text)
    return text.split(separator)


def _split(
    text: str,
    limit: int,
    measure: Callable[[str], int],
    separators: tuple[str, ...],
    out: list[str],
) -> None:
    if measure(text) <= limit:
        out.append(text.strip())
        return
    if not separators:
        # No break point left: cut hard, never in the middle of a surrogate pair.
        current = ""
        for ch in text:
            if measure(current + ch) > limit:
                out.append(current)
                current = ""
            current += ch
        if current:
            out.append(current)
        return
    separator, rest = separators[0], separators[1:]
    joiner = " " if separator == "sentence" else separator
    current = ""
    for piece in _pieces(text, separator):
        candidate = f"{current}{joiner}{piece}" if current else piece
        if measure(candidate) <= limit:
            current = candidate
            continue
        if current:
            out.append(current.strip())
        if measure(piece) <= limit:
            current = piece
        else:
            _split(piece, limit, measure, rest, out)
            current = ""
    if current:
        out.append(current.strip())
