"""The web server of the running assistant: one Starlette app, served by uvicorn.

``create_web_app`` serves ``/healthz``, ``/metrics``, each running chat-app
channel's webhook (``/telegram``, ``/zalo``), the public FAQ and law pages
(``/faq``, ``/luat``: :mod:`bot.web.faq`), the admin pages behind a login
(``/admin``: :mod:`bot.web.admin`) and, unless disabled, the web chat (its page,
its API and ``/static``), every response with the security headers.
``serve()`` is what ``coopbot run`` runs: it builds everything
(``bot.app.running_app``), serves the web app until SIGINT/SIGTERM (or ``stop``),
then stops accepting work and lets replies in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.app import Runtime, running_app
from bot.channels.webchat.chat import WebChatError
from bot.channels.webhooks import read_body
from bot.metrics import CONTENT_TYPE
from bot.settings import Settings
from bot.store.admin_sessions import AdminSessionStore
from bot.web.admin import AdminAuth, NoStore, admin_routes
from bot.web.dashboard import Dashboard
from bot.web.faq import asset_routes, faq_routes

__all__ = ["SecurityHeaders", "admin_app", "create_web_app", "foreign_post", "serve", "web_hosts"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "channels" / "webchat" / "static"
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# The chat apps' webhook paths, answered with a 404 while their channel is not configured.
_WEBHOOKS: Final = {"/telegram": "Telegram", "/zalo": "Zalo"}


def create_web_app(runtime: Runtime) -> Starlette:
    """The ASGI app: health, metrics, webhooks, FAQ, law and admin pages, the web chat."""

    async def healthz(request: Request) -> Response:
        database = await asyncio.to_thread(_database_ok, runtime.engine)
        nlu = await runtime.nlu.is_ready()
        status = 200 if database and nlu else 503
        body = {"status": "ok" if status == 200 else "degraded", "database": database, "nlu": nlu}
        return JSONResponse(body, status_code=status)

    async def metrics(request: Request) -> Response:
        settings, metrics = runtime.settings, runtime.metrics
        if metrics is None or settings.metrics_token is None:
            return JSONResponse({"error": "metrics are off"}, status_code=404)
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse(
                {"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        body = await asyncio.to_thread(metrics.render)
        return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    allowed_hosts = web_hosts(runtime.settings)

    async def chat_message(request: Request) -> Response:
        refused = foreign_post(request, allowed_hosts)
        if refused is not None:
            return refused
        body = await read_body(request)
        if body is None:
            return JSONResponse({"error": "Tin nhắn quá lớn."}, status_code=413)
        try:
            client = request.client.host if request.client is not None else "unknown"
            result = await runtime.webchat.post_message(json.loads(body), client)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "Yêu cầu không hợp lệ (cần JSON)."}, status_code=400)
        except WebChatError as exc:
            headers = (
                {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
                if exc.retry_after is not None
                else None
            )
            return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)
        return JSONResponse(result, headers={"Cache-Control": "no-store"})

    async def chat_inbox(request: Request) -> Response:
        try:
            result = await runtime.webchat.wait_inbox(
                request.query_params.get("session"), runtime.settings.web_poll_seconds
            )
        except WebChatError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        return JSONResponse(result, headers={"Cache-Control": "no-store"})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    for channel in runtime.channels:
        routes += channel.routes()
    # Reached only when no running channel serves the path (the first full match wins).
    routes += [_not_configured(path, title) for path, title in _WEBHOOKS.items()]
    # The FAQ is public: served whether or not the web chat is.
    routes += faq_routes(
        runtime.conversation.services.answers,
        runtime.settings,
        on_open=runtime.on_faq_open,
        floodgate=runtime.webchat.floodgate,
    )
    routes += admin_routes()
    if runtime.settings.web_chat_enabled:
        routes += [
            Route("/", index, methods=["GET"]),
            Route("/chat/api/messages", chat_message, methods=["POST"]),
            Route("/chat/api/inbox", chat_inbox, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders), Middleware(NoStore)])
    services = runtime.conversation.services
    app.state.admin_auth = AdminAuth(
        AdminSessionStore(runtime.engine, services.clock), runtime.settings.public_url
    )
    app.state.dashboard = Dashboard(
        engine=runtime.engine,
        kb=services.kb,
        options=services.options,
        registry=runtime.keeper.registry,
        broadcasts=services.broadcasts,
        training=services.training,
        review=services.review,
        rules=services.deadline_rules,
        clock=services.clock,
    )
    return app


def admin_app(dashboard: Dashboard, public_url: str = "http://127.0.0.1:8080") -> Starlette:
    """The admin pages alone (with their assets and security headers): tests, benchmarks."""
    app = Starlette(
        routes=[*admin_routes(), *asset_routes()],
        middleware=[Middleware(SecurityHeaders), Middleware(NoStore)],
    )
    app.state.admin_auth = AdminAuth(
        AdminSessionStore(dashboard.engine, dashboard.clock), public_url
    )
    app.state.dashboard = dashboard
    return app


def _not_configured(path: str, title: str) -> Route:
    """A webhook path whose channel is off: 404 with ``"<title> is not configured"``."""

    async def refuse(request: Request) -> Response:
        return JSONResponse({"error": f"{title} is not configured"}, status_code=404)

    return Route(path, refuse, methods=["POST"])


_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def web_hosts(settings: Settings) -> frozenset[str]:
    """The host names the web chat accepts POSTs for: WEB_HOST, loopback, WEB_ALLOWED_HOSTS."""
    extra = {h.strip().lower() for h in settings.web_allowed_hosts.split(",") if h.strip()}
    return frozenset({settings.web_host.lower(), *_LOOPBACK_NAMES, *extra})


def foreign_post(request: Request, allowed_hosts: frozenset[str]) -> Response | None:
    """The refusal of a web-chat POST from elsewhere; None when it may go on.

    The body must be declared JSON (a form or ``text/plain`` POST is what another
    site can send without asking), the ``Host`` must be one we serve (a page on
    another name resolving to us, DNS rebinding, is refused) and a browser's
    ``Origin``, when sent, must be that same host.
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        return JSONResponse({"error": "Yêu cầu phải là JSON."}, status_code=415)
    host = request.headers.get("host", "")
    try:
        name = urlsplit(f"//{host}").hostname  # "Host:8080" -> "host", "[::1]:80" -> "::1"
    except ValueError:  # "[::1" and the like
        name = None
    if name not in allowed_hosts:
        log.warning("web chat POST for an unknown host refused")
        return JSONResponse({"error": "forbidden"}, status_code=403)
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != host.strip().lower():
        log.warning("web chat POST from another origin refused")
        return JSONResponse({"error": "forbidden"}, status_code=403)
    return None


class SecurityHeaders:
    """ASGI middleware adding the security headers (CSP, nosniff...) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Passes the request on and adds the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(_SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _database_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception:
        log.exception("database health check failed")
        return False
    return True


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    settings: Settings,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Runs everything configured until ``stop`` is set or SIGINT/SIGTERM arrives.

    ``on_ready(url)`` is called once the web app answers, with its address.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    with contextlib.suppress(ValueError, RuntimeError):  # not the main thread: no signals
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with running_app(settings) as runtime:
            config = uvicorn.Config(
                create_web_app(runtime),
                host=settings.web_host,
                port=settings.web_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=10,
            )
            server = _Server(config)
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():
                await asyncio.sleep(0.02)
            if task.done():
                task.result()  # the web server could not start (port taken...)
                raise RuntimeError("the web server stopped at start-up")
            port = server.servers[0].sockets[0].getsockname()[1]
            url = f"http://{settings.web_host}:{port}/"
            if on_ready is not None:
                on_ready(url)
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            log.info("shutting down: finishing replies in flight")
            runtime.webchat.close()
            server.should_exit = True
            await task
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
