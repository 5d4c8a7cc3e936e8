"""The wire-level pieces both fake Bot API servers (Telegram, Zalo) use.

The record of one answered request (`RecordedCall`), the error a method handler
raises (`ApiError`) and its JSON envelope, the reading of request parameters
(query string, JSON body or urlencoded form), the per-bot state the server loop
shares with the test thread (`BotState`), the request a method handler gets
(`Context`) and the small keep-alive HTTP client that posts webhook updates
(`Poster`). A multipart/form-data body (a file upload) is read where a fake
accepts one: its file parts become `UploadedFile` parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email.parser import HeaderParser
from email.policy import HTTP
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

JSONDict = dict[str, Any]


@dataclass
class RecordedCall:
    """One request a fake answered.

    Attributes:
        method: Canonical method name (``"sendMessage"``), or the name as requested
            when the method is unknown.
        token: The bot token from the URL.
        params: The parameters of the request (each fake says how it normalizes them).
        status: The HTTP status of the answer.
        response: The JSON body of the answer.
        at: ``time.perf_counter()`` when the request was received.
        message: For a successful call that created or changed a message: the message
            as the fake stores it (each fake documents its shape), else None.
    """

    method: str
    token: str
    params: JSONDict
    status: int
    response: JSONDict
    at: float
    message: JSONDict | None = None

    @property
    def ok(self) -> bool:
        """Whether the fake answered with success."""
        return self.status == 200

    @property
    def result(self) -> Any:
        """The ``result`` of a successful answer, else None."""
        return self.response.get("result")


class ApiError(Exception):
    """An error answer: HTTP status, Bot API description and optional parameters."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        """Keeps the parts of the error envelope."""
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        """The error envelope: ``{"ok": false, "error_code", "description"[, "parameters"]}``."""
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class Failure:
    """An error that ``fail_next`` queued for a method."""

    status: int
    description: str
    retry_after: int | None


def json_response(status: int, body: JSONDict) -> Response:
    """A compact UTF-8 JSON answer with a real HTTP status."""
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(content, status_code=status, media_type="application/json")


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart/form-data body (the value of its parameter)."""

    filename: str
    content_type: str
    data: bytes

    def __str__(self) -> str:
        return f"<file {self.filename!r} {self.content_type} {len(self.data)} bytes>"


async def read_params(
    request: Request, normalize: Callable[[str, Any], Any], multipart: bool = False
) -> JSONDict:
    """The request's parameters from its query string and its JSON, urlencoded or multipart body.

    Args:
        request: The request.
        normalize: Called as ``normalize(name, value)`` on every value but files.
        multipart: Whether a multipart/form-data body is accepted: its fields are read
            like form values, its file parts become `UploadedFile` values.

    Raises:
        ApiError: The body is not a JSON object, is a malformed multipart body, or is
            multipart where the fake does not accept it.
    """
    params = {name: normalize(name, value) for name, value in _pairs(request.url.query)}
    body = await request.body()
    if not body:
        return params
    content_type = request.headers.get("content-type", "")
    items: Iterable[tuple[str, Any]]
    if content_type.startswith("application/json"):
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ApiError(400, "Bad Request: can't parse JSON object") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "Bad Request: can't parse JSON object")
        items = data.items()
    elif content_type.startswith("multipart/"):
        if not multipart:
            raise ApiError(400, "Bad Request: the fake does not accept multipart bodies")
        items = _multipart_items(content_type, body)
    else:
        items = _pairs(body.decode("utf-8"))
    params.update(
        (name, value if isinstance(value, UploadedFile) else normalize(name, value))
        for name, value in items
    )
    return params


def _multipart_items(content_type: str, body: bytes) -> list[tuple[str, str | UploadedFile]]:
    """The fields (text) and files of a multipart/form-data body (RFC 7578).

    Raises:
        ApiError: No boundary, a part without a name, or a body that is not multipart.
    """
    header = HeaderParser(policy=HTTP).parsestr(f"Content-Type: {content_type}\r\n\r\n")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ApiError(400, "Bad Request: multipart body without a boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise ApiError(400, "Bad Request: malformed multipart body")
    items: list[tuple[str, str | UploadedFile]] = []
    for chunk in chunks[1:-1]:
        head, separator, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise ApiError(400, "Bad Request: malformed multipart body")
        part = HeaderParser(policy=HTTP).parsestr(head.decode("utf-8") + "\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "Bad Request: a multipart part without a name")
        filename = part.get_filename()
        if filename is None:
            items.append((name, data.decode("utf-8")))
        else:
            items.append((name, UploadedFile(filename, part.get_content_type(), data)))
    return items


def _pairs(text: str) -> list[tuple[str, str]]:
    return parse_qsl(text, keep_blank_values=True)


class Poster:
    """A minimal HTTP/1.1 keep-alive POST client for ``http://`` webhooks.

    Telegram's servers spend none of the bot machine's CPU; this client keeps the
    fake's share small in benchmarks (httpx costs about a millisecond per request).
    """

    def __init__(self) -> None:
        """Starts unconnected; the first ``post`` connects."""
        self._key: tuple[str, int] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POSTs ``body``; returns the status code (reads and drops the response body)."""
        parts = urlsplit(url)
        key = (parts.hostname or "127.0.0.1", parts.port or 80)
        for attempt in (1, 2):  # a kept-alive connection may have been closed meanwhile
            if self._writer is None or self._key != key or self._writer.is_closing():
                await self.close()
                self._reader, self._writer = await asyncio.open_connection(*key)
                self._key = key
            assert self._reader is not None and self._writer is not None
            lines = [f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
                     f"Host: {key[0]}:{key[1]}", f"Content-Length: {len(body)}",
                     *(f"{name}: {value}" for name, value in headers.items())]  # fmt: skip
            try:
                self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
                await self._writer.drain()
                status_line = await self._reader.readuntil(b"\r\n")
                if not status_line:
                    raise ConnectionResetError("connection closed")
                status = int(status_line.split()[1])
                length, close = 0, False
                while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                    elif name.strip().lower() == "connection" and "close" in value.lower():
                        close = True
                    elif name.strip().lower() == "transfer-encoding":
                        raise ValueError("chunked webhook responses are not supported")
                await self._reader.readexactly(length)
                if close:
                    await self.close()
                return status
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Closes the connection, if open."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@dataclass
class BotState:
    """One bot account of a fake: its queued updates and webhook (behind the server lock).

    ``waiters``, ``wake`` and ``poster`` belong to the server loop only.
    """

    token: str
    updates: deque[JSONDict] = field(default_factory=deque)
    webhook: JSONDict | None = None
    waiters: set[asyncio.Future[None]] = field(default_factory=set)
    wake: asyncio.Event | None = None
    poster: Poster = field(default_factory=Poster)


BotT = TypeVar("BotT", bound=BotState)


@dataclass
class Context(Generic[BotT]):
    """One request being handled: its bot and parameters, and what the handler adds.

    Attributes:
        bot: The bot the token named.
        params: The request's parameters.
        request: The HTTP request (a long poll watches it for a client that went away).
        message: Set by a handler that created or changed a message (see `RecordedCall`).
        description: Set by a handler whose success answer carries a ``description``.
    """

    bot: BotT
    params: JSONDict
    request: Request
    message: JSONDict | None = None
    description: str | None = None


@dataclass
class Later:
    """A handler's answer that is awaited after the server lock is released (a long poll)."""

    wait: Callable[[], Awaitable[Any]]
