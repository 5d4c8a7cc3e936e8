"""What the fake Bot API servers (Telegram, Zalo) share.

``FakeBotServer`` runs a Starlette app with uvicorn on its own thread and
event loop, on a loopback socket made with ``IPPROTO_TCP`` (so that asyncio
sets TCP_NODELAY). It keeps the record of calls behind one lock and gives the
test API both fakes have: ``wait_for``, ``fail_next``, ``slow``,
``wait_for_request``, ``add_listener``, ``wait_for_deliveries``. Subclasses
provide the Bot API itself: ``_endpoint``, ``_deliver_webhooks`` and ``_methods``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Generic, Self, TypeVar
from urllib.parse import urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

JSONDict = dict[str, Any]


@dataclass
class RecordedCall:
    """One request a fake answered (each fake documents how it fills the fields).

    Attributes:
        method: Canonical method name (``"sendMessage"``), or the name as requested
            when the method is unknown.
        token: The bot token from the URL.
        params: The parameters of the request.
        status: The HTTP status of the answer.
        response: The JSON body of the answer.
        at: ``time.perf_counter()`` when the request was received.
    """

    method: str
    token: str
    params: JSONDict
    status: int
    response: JSONDict
    at: float

    @property
    def ok(self) -> bool:
        """Whether the fake answered with success."""
        return self.status == 200

    @property
    def result(self) -> Any:
        """The ``result`` of a successful answer, else None."""
        return self.response.get("result")


CallT = TypeVar("CallT", bound=RecordedCall)
DeliveryT = TypeVar("DeliveryT")


class _ApiError(Exception):
    """An error answer: HTTP status, Bot API description and optional parameters."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None


class _Poster:
    """A minimal HTTP/1.1 keep-alive POST client for ``http://`` webhooks.

    Telegram's servers spend none of the bot machine's CPU; this client keeps the
    fake's share small in benchmarks (httpx costs about a millisecond per request).
    """

    def __init__(self) -> None:
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


def _error_body(error: _ApiError) -> JSONDict:
    body: JSONDict = {"ok": False, "error_code": error.status, "description": error.description}
    if error.parameters:
        body["parameters"] = error.parameters
    return body


def _json_response(status: int, body: JSONDict) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(content, status_code=status, media_type="application/json")


def _parse_multipart(content_type: str, body: bytes) -> Iterator[tuple[str, Any]]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            yield (
                name,
                {
                    "filename": filename,
                    "content_type": part.get_content_type(),
                    "size": len(data),
                },
            )
        else:
            charset = part.get_content_charset() or "utf-8"
            yield name, data.decode(charset)


class FakeBotServer(Generic[CallT, DeliveryT]):
    """The life cycle and shared test API of a fake Bot API server (see the module)."""

    _bots: dict[str, Any]
    _methods: dict[str, tuple[str, Callable[..., Any]]]

    def _init_server(self, label: str) -> None:
        """Sets up the shared state; subclasses call it first in ``__init__``."""
        self._label = label
        self.base_url = ""
        self.port = 0
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._calls: list[CallT] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._received: dict[str, int] = {}
        self._deliveries: list[DeliveryT] = []
        self._listeners: list[Callable[[CallT], None]] = []
        self._app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST"]),
            ]
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._http: httpx.AsyncClient | None = None
        self._sock: socket.socket | None = None
        self._closing = False
        self._ready = threading.Event()
        self._error: BaseException | None = None
        name = f"fake-{label.lower()}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    async def _endpoint(self, request: Request) -> Response:
        raise NotImplementedError

    async def _deliver_webhooks(self, bot: Any) -> None:
        raise NotImplementedError

    def start(self, timeout: float = 10.0) -> Self:
        """Starts the server on a free port and waits until it accepts connections."""
        if self._thread.is_alive():
            return self
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on such sockets, and
        # without it every answer waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the fake {self._label} server did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the fake {self._label} server failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the server: ends long polls, webhook deliveries and connections."""
        loop = self._loop
        if loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                loop.call_soon_threadsafe(self._begin_shutdown)
        if self._thread.ident is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the fake {self._label} server did not stop in time")
        if self._sock is not None:
            self._sock.close()
        if self._error is not None:
            raise RuntimeError(f"the fake {self._label} server crashed") from self._error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        for bot in self._bots.values():
            bot.wake = asyncio.Event()
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        assert self._sock is not None
        async with httpx.AsyncClient(timeout=10.0) as http:
            self._http = http
            workers = [
                asyncio.create_task(self._deliver_webhooks(bot)) for bot in self._bots.values()
            ]
            serving = asyncio.create_task(self._server.serve(sockets=[self._sock]))
            try:
                while not self._server.started:
                    if serving.done():
                        await serving
                        raise RuntimeError("uvicorn stopped while starting")
                    await asyncio.sleep(0.002)
                self._ready.set()
                await serving
            finally:
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                for bot in self._bots.values():
                    await bot.poster.close()

    def _begin_shutdown(self) -> None:
        self._closing = True
        for bot in self._bots.values():
            self._wake(bot)
        if self._server is not None:
            self._server.should_exit = True

    def _wake(self, bot: Any) -> None:
        """Wakes the long polls and the webhook worker of ``bot`` (server loop only)."""
        for waiter in bot.waiters:
            if not waiter.done():
                waiter.set_result(None)
        if bot.wake is not None:
            bot.wake.set()

    def _notify(self, bot: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._wake, bot)

    async def _not_found(self, request: Request) -> Response:
        return _json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def _summary(self, limit: int = 15) -> str:
        lines = []
        for call in self._calls[-limit:]:
            params = json.dumps(call.params, ensure_ascii=False, default=str)
            if len(params) > 160:
                params = params[:157] + "..."
            outcome = "ok" if call.ok else call.response.get("description")
            lines.append(f"  {call.method} -> {call.status} {outcome} {params}")
        return "\n".join(lines) or "  (no calls)"

    def fail_next(
        self,
        method: str,
        status: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Makes the next ``times`` calls of ``method`` answer this error.

        ``retry_after`` goes to ``parameters.retry_after``, as in a 429 answer.
        """
        known = self._methods.get(method.lower())
        if known is None:
            raise ValueError(f"the fake does not implement {method!r}")
        with self._lock:
            failures = self._failures.setdefault(known[0], deque())
            failures.extend(_Failure(status, description, retry_after) for _ in range(times))

    def _bot(self, token: str) -> Any:
        try:
            return self._bots[token]
        except KeyError:
            raise ValueError(f"the fake does not know the token {token!r}") from None

    def add_listener(self, listener: Callable[[CallT], None]) -> None:
        """Calls ``listener(call)`` on the server thread after each call is recorded."""
        with self._lock:
            self._listeners.append(listener)

    def wait_for(
        self, predicate: Callable[[CallT], bool], timeout: float = 10.0, count: int = 1
    ) -> list[CallT]:
        """Waits until at least ``count`` calls match ``predicate``; returns the matches.

        Raises:
            AssertionError: Fewer calls matched within ``timeout`` seconds; the message
                lists the latest calls.
        """
        deadline = time.monotonic() + timeout
        matches: list[CallT] = []
        seen = 0
        calls = self._calls
        with self._changed:
            while True:
                if calls is not self._calls:  # reset() replaced the list
                    calls, seen, matches = self._calls, 0, []
                for index in range(seen, len(calls)):
                    if predicate(calls[index]):
                        matches.append(calls[index])
                seen = len(calls)
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{len(matches)} of {count} expected calls after {timeout} s; "
                        f"latest calls:\n{self._summary()}"
                    )
                self._changed.wait(remaining)

    def wait_for_deliveries(self, count: int = 1, timeout: float = 10.0) -> list[DeliveryT]:
        """Waits until at least ``count`` webhook deliveries were made; returns them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._deliveries) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{len(self._deliveries)} of {count} webhook deliveries after "
                        f"{timeout} s; latest calls:\n{self._summary()}"
                    )
                self._changed.wait(remaining)
            return list(self._deliveries)

    def slow(self, method: str, seconds: float, times: int = 1) -> None:
        """Holds the answers to the next ``times`` calls of ``method`` for ``seconds``."""
        known = self._methods.get(method.lower())
        if known is None:
            raise ValueError(f"the fake does not implement {method!r}")
        with self._lock:
            self._delays.setdefault(known[0], deque()).extend([seconds] * times)

    def wait_for_request(self, method: str, count: int = 1, timeout: float = 10.0) -> None:
        """Waits until ``count`` requests of ``method`` arrived (answered or not)."""
        known = self._methods.get(method.lower())
        name = known[0] if known is not None else method
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._received.get(name, 0) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {name} request #{count} within {timeout} s")
                self._changed.wait(remaining)
