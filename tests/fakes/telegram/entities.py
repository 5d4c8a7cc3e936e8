"""Telegram's HTML parse mode: formatted text to plain text and message entities.

Entity offsets and lengths count UTF-16 code units, as Telegram's do (`utf16_len`).
Telegram strips the surrounding whitespace of a text after parsing (`trim`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.fakes.wire import JSONDict

__all__ = ["EntityParseError", "parse_html", "trim", "utf16_len"]


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


def trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
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
