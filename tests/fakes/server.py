"""The HTTP server thread both fake Bot API servers (Telegram, Zalo) share.

``FakeBotServer`` runs a Starlette app with uvicorn on its own thread and event
loop, on a loopback socket made with ``IPPROTO_TCP`` (so that asyncio sets
TCP_NODELAY). It serves ``/bot{token}/{method}``: it reads the parameters, applies
the delays and failures a test queued, calls the method handler under one lock and
records the call. It delivers queued updates to a bot's webhook, one at a time, in
order. The test API comes from `tests.fakes.control.FakeControls`. Subclasses
provide the Bot API methods and say how parameters are normalized, whether file
uploads (multipart bodies) are read, which headers a webhook gets and what a
delivery record holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.control import CallT, DeliveryT, FakeControls, Handler
from tests.fakes.wire import ApiError, BotT, Context, JSONDict, Later, json_response, read_params


class FakeBotServer(FakeControls[CallT, DeliveryT, BotT]):
    """A fake Bot API server on 127.0.0.1: `FakeControls` served over real HTTP.

    Args:
        label: The platform's name, for thread names and error messages.
        call_type: The class of the recorded calls.
        bots: The bot accounts by token.
        methods: The Bot API method handlers by canonical name (see `FakeControls`).
    """

    def __init__(
        self,
        label: str,
        call_type: type[CallT],
        bots: dict[str, BotT],
        methods: Mapping[str, Handler],
    ) -> None:
        """Sets up the state; nothing listens until `start`."""
        super().__init__(label, call_type, bots, methods)
        self.base_url = ""
        self.port = 0
        self._app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST"]),
            ]
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._sock: socket.socket | None = None
        self._closing = False
        self._ready = threading.Event()
        self._error: BaseException | None = None
        name = f"fake-{label.lower()}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # ------------------------------------------------------- subclass hooks

    # Whether multipart/form-data bodies (file uploads) are read; refused with 400 if not.
    accepts_multipart = False

    def _normalize(self, name: str, value: Any) -> Any:
        """The parameter value as the platform reads it (as received by default)."""
        return value

    def _webhook_headers(self, hook: JSONDict) -> dict[str, str]:
        raise NotImplementedError

    def _delivery(
        self, bot: BotT, update: JSONDict, url: str, status: int | None, error: str | None
    ) -> DeliveryT:
        raise NotImplementedError

    # ----------------------------------------------------------- life cycle

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
        workers = [asyncio.create_task(self._deliver_webhooks(bot)) for bot in self._bots.values()]
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

    def _wake(self, bot: BotT) -> None:
        """Wakes the long polls and the webhook worker of ``bot`` (server loop only)."""
        for waiter in bot.waiters:
            if not waiter.done():
                waiter.set_result(None)
        if bot.wake is not None:
            bot.wake.set()

    def _notify(self, bot: BotT) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._wake, bot)

    # ----------------------------------------------------------------- HTTP

    async def _not_found(self, request: Request) -> Response:
        return json_response(404, ApiError(404, "Not Found").body())

    async def _endpoint(self, request: Request) -> Response:
        at = time.perf_counter()
        token = request.path_params["token"]
        method = request.path_params["method"]
        params: JSONDict = {}
        context: Context[BotT] | None = None
        try:
            params = await read_params(request, self._normalize, self.accepts_multipart)
            bot = self._bots.get(token)
            if bot is None:
                raise ApiError(401, "Unauthorized")
            known = self._methods.get(method.lower())
            if known is None:
                raise ApiError(404, "Not Found")
            method, handler = known
            context = Context(bot, params, request)
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
                    raise ApiError(failure.status, failure.description, extra)
                result = handler(context)
            if isinstance(result, Later):  # a long poll waits outside the lock
                result = await result.wait()
            status, body = 200, {"ok": True, "result": result}
            if context.description:
                body["description"] = context.description
        except ApiError as error:
            status, body = error.status, error.body()
        except Exception as exc:  # a bug in the fake: answer it so the test sees it
            crash = ApiError(500, f"Internal Server Error: fake {self._label} failed: {exc!r}")
            status, body = crash.status, crash.body()
        message = context.message if context is not None and status == 200 else None
        call = self._call_type(method, token, params, status, body, at, message)
        with self._lock:
            self._calls.append(call)
            self._changed.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(call)
        return json_response(status, body)

    async def _deliver_webhooks(self, bot: BotT) -> None:
        """Posts the queued updates of ``bot`` to its webhook, one at a time, in order.

        Only ``http://`` URLs are posted to (tests listen on 127.0.0.1); a delivery to
        any other URL is recorded as failed.
        """
        assert bot.wake is not None
        while True:
            bot.wake.clear()
            with self._lock:
                hook = bot.webhook
                update = bot.updates.popleft() if hook is not None and bot.updates else None
            if hook is None or update is None:
                await bot.wake.wait()
                continue
            body = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            status: int | None = None
            error: str | None = None
            try:
                if not hook["url"].startswith("http://"):
                    raise ValueError("the fake posts webhooks to http:// URLs only")
                status = await bot.poster.post(hook["url"], body, self._webhook_headers(hook))
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._deliveries.append(self._delivery(bot, update, hook["url"], status, error))
                self._changed.notify_all()
