"""The running assistant: the one place where the core, channels and web app are assembled.

``serve()`` is what ``coopbot run`` runs: migrate the database, start (or find)
the NLU service, build the conversation core, start Telegram when
``TELEGRAM_BOT_TOKEN`` is set (polling, or webhook when ``TELEGRAM_WEBHOOK_URL``
is set), and serve one Starlette app with ``/telegram``, ``/healthz`` and the
web chat. On SIGINT/SIGTERM it stops accepting work, lets replies in flight
finish, then closes clients and stops the NLU child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import math
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import uvicorn
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, Defaults

from bot.answers import AnswerService
from bot.channels.telegram.render import CHANNEL as TELEGRAM
from bot.channels.telegram.render import TelegramSender, retry_seconds
from bot.channels.telegram.updates import BotContext, BotServices, register_handlers
from bot.channels.telegram.validation import TelegramUpdate, invalid_field
from bot.channels.webchat.chat import CHANNEL as WEB
from bot.channels.webchat.chat import WebChat, WebChatError, WebLimits
from bot.channels.webhooks import checked_body, derived_secret, read_body
from bot.channels.zalo.channel import CHANNEL as ZALO
from bot.channels.zalo.channel import ZaloChannel
from bot.conversation import Conversation, StaffDesk
from bot.handlers.review import ReviewChat
from bot.metrics import CONTENT_TYPE, Metrics
from bot.nlu_model.client import NLUClient
from bot.nlu_model.registry import ModelRegistry
from bot.nlu_model.retrain import ChatRetrain
from bot.nlu_model.review_queue import ReviewLog, ReviewQueue
from bot.nlu_model.service import ensure_nlu_service
from bot.nlu_model.swap import ModelKeeper, serving_model
from bot.profile import load_profile_options
from bot.sending import Senders
from bot.settings import Settings
from bot.store.broadcasts import BroadcastStore
from bot.store.db import create_db_engine, upgrade_db
from bot.store.handovers import HandoverStore
from bot.store.inbox import InboxRow, InboxWorker
from bot.store.members import MemberStore
from bot.store.messages import MessageLogStore
from bot.store.pushes import PushStore
from bot.store.subscriptions import SubscriptionStore
from knowledge.base import load_knowledge_base
from knowledge.law.corpus import LegalCorpus
from knowledge.search import KnowledgeSearch
from nlu.build import TRAIN_DIR, load_examples
from scheduler.deadlines import load_rules
from scheduler.reminders import ReminderService

__all__ = ["Runtime", "TelegramChannel", "create_web_app", "running_app", "serve"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "channels" / "webchat" / "static"
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


ALLOWED_UPDATES: Final = (Update.MESSAGE, Update.CALLBACK_QUERY)
POLL_TIMEOUT_S: Final = 25
BOT_COMMANDS: Final = (
    ("start", "Bắt đầu, xem menu"),
    ("faq", "Tra cứu câu hỏi theo chủ đề"),
    ("hoso", "Hồ sơ HTX của bạn"),
    ("lienhe", "Hỏi cán bộ Liên minh HTX"),
    ("lichnop", "Hạn nộp sắp tới của HTX"),
    ("nhacnho", "Chọn hạn nộp muốn được nhắc"),
    ("taphuan", "Lịch tập huấn, đăng ký tham gia"),
    ("toi", "Xem dữ liệu được lưu về bạn"),
    ("xoadulieu", "Xoá dữ liệu của bạn"),
    ("help", "Hướng dẫn sử dụng"),
)


class TelegramChannel:
    """The python-telegram-bot Application, fed from the durable inbox.

    Webhook updates and polled updates alike are committed to the inbox
    (``inbox_events``, keyed by the bot's id and the update id) before the 200
    or the next ``getUpdates`` acknowledges them; the inbox worker hands each
    one to the Application's handlers and marks it done.
    """

    def __init__(self, settings: Settings, conversation: Conversation, engine: Engine) -> None:
        """Builds the Application and the inbox (nothing runs until ``start``)."""
        assert settings.telegram_bot_token is not None
        self.bot_id = str(settings.bot_accounts[TELEGRAM])
        self.webhook_url = settings.telegram_webhook_url
        self.secret = (
            derived_secret(
                settings.telegram_webhook_secret, settings.telegram_bot_token, "telegram"
            )
            if self.webhook_url is not None
            else ""
        )
        context_types = ContextTypes(context=BotContext, bot_data=BotServices)
        builder = (
            Application.builder()
            .token(settings.telegram_bot_token.get_secret_value())
            .base_url(f"{settings.telegram_api_base}/bot")
            .base_file_url(f"{settings.telegram_api_base}/file/bot")
            .context_types(context_types)
            .defaults(
                Defaults(
                    parse_mode=ParseMode.HTML,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            )
            .connection_pool_size(settings.telegram_concurrency + 4)
            .pool_timeout(10.0)
            .updater(None)  # updates come through the inbox, in both modes
        )
        self.application = builder.build()
        self.application.bot_data.conversation = conversation
        register_handlers(self.application, settings.telegram_staff_chat_id)
        self.sender = TelegramSender(self.application.bot, settings.telegram_paid_broadcast)
        self.worker = InboxWorker.for_bot(
            engine,
            TELEGRAM,
            self.bot_id,
            self._handle_row,
            lease_seconds=settings.inbox_lease_seconds,
            sweep_seconds=settings.inbox_sweep_seconds,
            concurrency=settings.telegram_concurrency,
        )
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Initialises the bot (``getMe``), resumes the inbox, sets the webhook or polls."""
        await self.application.initialize()
        await self.application.start()
        try:  # the command menu members see next to the text box
            await self.application.bot.set_my_commands(BOT_COMMANDS)
        except TelegramError as exc:
            log.warning("could not set the Telegram command menu: %s", exc)
        await self.worker.start()
        if self.webhook_url is not None:
            await self.application.bot.set_webhook(
                str(self.webhook_url), secret_token=self.secret, allowed_updates=ALLOWED_UPDATES
            )
            log.info("Telegram: webhook mode")
        else:
            await self.application.bot.delete_webhook()  # getUpdates fails while one is set
            self._poller = asyncio.create_task(self._poll(), name="telegram-poll")
            log.info("Telegram: long polling")

    async def stop(self) -> None:
        """Stops fetching updates, finishes the updates in hand, closes the client."""
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        await self.worker.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def _poll(self) -> None:
        """Long polling: a batch is committed to the inbox before the next call acknowledges it."""
        offset: int | None = None
        failures = 0
        bot = self.application.bot
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT_S, allowed_updates=ALLOWED_UPDATES
                )
                failures = 0
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc.retry_after))
                continue
            except (InvalidToken, Forbidden) as exc:
                log.error("Telegram refused the bot token; retrying in 60 s: %s", exc)
                await asyncio.sleep(60)
                continue
            except TelegramError as exc:  # network errors, timeouts, a 409 while a webhook is set
                failures += 1
                delay = min(2.0**failures, 30.0)
                log.warning("Telegram getUpdates failed (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            for update in updates:
                data = update.to_dict()
                try:
                    TelegramUpdate.model_validate(data)
                except ValidationError as exc:
                    log.warning("Telegram update refused: bad %s", invalid_field(exc))
                else:
                    payload = json.dumps(data, ensure_ascii=False)
                    await self.worker.submit_stored(str(update.update_id), payload)
                offset = update.update_id + 1

    async def _handle_row(self, row: InboxRow) -> None:
        update = Update.de_json(json.loads(row.payload), self.application.bot)
        await self.application.process_update(update)

    async def handle_webhook(self, request: Request) -> Response:
        """Checks the secret header, validates the update, commits it to the inbox, then 200.

        403/400/413 for a wrong secret, a malformed update or a too large body;
        503 when the inbox cannot store it (Telegram then delivers it again).
        """
        if self.webhook_url is None:
            return JSONResponse({"error": "webhook mode is off"}, status_code=404)
        body = await checked_body(
            request, "X-Telegram-Bot-Api-Secret-Token", self.secret, "Telegram"
        )
        if isinstance(body, Response):
            return body
        try:
            checked = TelegramUpdate.model_validate_json(body)  # strict types first
        except ValidationError as exc:
            log.warning("Telegram webhook body refused: bad %s", invalid_field(exc))
            return JSONResponse({"error": "malformed update"}, status_code=400)
        except Exception as exc:  # any malformed body: refuse it, keep serving
            log.warning("malformed Telegram webhook body refused: %s", type(exc).__name__)
            return JSONResponse({"error": "malformed update"}, status_code=400)
        try:  # the body as received (valid JSON, checked above) is what the inbox keeps
            await self.worker.submit(str(checked.update_id), body.decode("utf-8"))
        except SQLAlchemyError as exc:
            log.error("Telegram update not stored (%s): asking for a redelivery", exc)
            return JSONResponse({"error": "try again"}, status_code=503)
        return Response(status_code=200)


@dataclass
class Runtime:
    """Everything ``serve`` runs, built and closed by ``running_app``."""

    settings: Settings
    engine: Engine
    nlu: NLUClient
    conversation: Conversation
    senders: Senders
    webchat: WebChat
    telegram: TelegramChannel | None
    zalo: ZaloChannel | None = None
    reminders: ReminderService | None = None
    keeper: ModelKeeper | None = None
    retrain: ChatRetrain | None = None
    metrics: Metrics | None = None


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[Runtime]:
    """Builds and starts everything configured; stops and closes it all on exit."""
    engine = create_db_engine(settings.database_url)
    try:
        await asyncio.to_thread(upgrade_db, engine)
        kb = load_knowledge_base()
        corpus = LegalCorpus.load()  # a text whose hash the register does not know stops here
        examples = load_examples(TRAIN_DIR)
        search = KnowledgeSearch(kb, examples)
        registry = ModelRegistry(engine, settings.model_dir)
        async with (
            ensure_nlu_service(
                settings,
                train_if_missing=True,
                choose=lambda: serving_model(registry, settings.reviewed_data),
            ) as endpoint,
            endpoint.client(timeout=settings.nlu_timeout) as nlu,
        ):
            answers = AnswerService(
                kb,
                search,
                nlu,
                threshold=settings.nlu_confidence_threshold,
                search_min_score=settings.search_min_score,
                search_min_coverage=settings.search_min_coverage,
                review_log=ReviewLog(engine),
                review_threshold=settings.review_confidence_threshold,
                corpus=corpus,
            )
            senders = Senders()
            keeper = ModelKeeper(registry, nlu, settings.nlu_model_poll_seconds)
            metrics = None
            if settings.metrics_enabled:
                metrics = Metrics(engine, senders, nlu, lambda: keeper.loaded_file)
                answers.on_answer = metrics.observe
            retrain = ChatRetrain(settings, engine, keeper, senders)
            queue = ReviewQueue(engine, settings.reviewed_data, examples.keys())
            staff_chat = settings.telegram_staff_chat_id
            rules = load_rules()
            options = load_profile_options()
            members = MemberStore(engine, settings.admin_ids)
            await asyncio.to_thread(members.promote_admins)
            reminders = ReminderService(
                engine,
                senders,
                rules,
                options,
                poll_interval=settings.outbox_poll_seconds,
                rates={TELEGRAM: settings.telegram_rate, ZALO: settings.zalo_rate},
                per_chat=settings.per_chat_interval,
                concurrency=settings.outbox_concurrency,
                accounts=settings.bot_accounts,
                lease=dt.timedelta(seconds=settings.outbox_lease_seconds),
                leader_retry=settings.scheduler_leader_retry_seconds,
            )
            conversation = Conversation(
                answers=answers,
                kb=kb,
                members=members,
                messages=MessageLogStore(engine),
                handovers=HandoverStore(engine),
                profile_options=options,
                senders=senders,
                staff=StaffDesk(
                    TELEGRAM,
                    str(staff_chat) if staff_chat is not None else None,
                    per_member_hour=settings.handovers_per_member_hour,
                    per_hour=settings.handovers_per_hour,
                ),
                deadline_rules=rules,
                subscriptions=SubscriptionStore(engine),
                training=reminders.training,
                broadcasts=BroadcastStore(engine, reminders.outbox),
                review=ReviewChat(queue, kb, retrain),
                on_reminders_changed=reminders.plan_member,
            )
            webchat = WebChat(
                conversation,
                PushStore(engine),
                WebLimits(
                    settings.web_new_sessions_per_ip_hour,
                    settings.web_new_sessions_per_hour,
                    settings.web_messages_per_ip_minute,
                    settings.web_messages_per_second,
                ),
            )
            senders.register(WEB, webchat)
            async with contextlib.AsyncExitStack() as channels:
                await keeper.start()
                channels.push_async_callback(keeper.stop)
                channels.push_async_callback(retrain.stop)
                telegram = None
                if settings.telegram_bot_token is not None:
                    telegram = TelegramChannel(settings, conversation, engine)
                    await telegram.start()
                    channels.push_async_callback(_stop_channel, senders, TELEGRAM, telegram)
                    senders.register(TELEGRAM, telegram.sender)
                zalo = None
                if settings.zalo_bot_token is not None:
                    zalo = ZaloChannel(settings, conversation, engine)
                    try:
                        await zalo.start()
                    except BaseException:
                        await zalo.client.aclose()
                        raise
                    channels.push_async_callback(_stop_channel, senders, ZALO, zalo)
                    senders.register(ZALO, zalo)
                running_reminders = None
                if settings.reminders_enabled:
                    # Started after the channels, stopped before them: its sends finish first.
                    await reminders.start()
                    channels.push_async_callback(reminders.stop)
                    running_reminders = reminders
                yield Runtime(
                    settings,
                    engine,
                    nlu,
                    conversation,
                    senders,
                    webchat,
                    telegram,
                    zalo,
                    running_reminders,
                    keeper,
                    retrain,
                    metrics,
                )
    finally:
        engine.dispose()


async def _stop_channel(
    senders: Senders, name: str, channel: TelegramChannel | ZaloChannel
) -> None:
    """Stops a chat-app channel (replies in flight finish first) and unregisters it."""
    try:
        await channel.stop()
    finally:
        senders.unregister(name)


def create_web_app(runtime: Runtime) -> Starlette:
    """The ASGI app: ``/healthz``, ``/telegram`` and (unless disabled) the web chat."""

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

    async def telegram_webhook(request: Request) -> Response:
        if runtime.telegram is None:
            return JSONResponse({"error": "Telegram is not configured"}, status_code=404)
        return await runtime.telegram.handle_webhook(request)

    async def zalo_webhook(request: Request) -> Response:
        if runtime.zalo is None:
            return JSONResponse({"error": "Zalo is not configured"}, status_code=404)
        return await runtime.zalo.handle_webhook(request)

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

    routes: list[Route | Mount] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/telegram", telegram_webhook, methods=["POST"]),
        Route("/zalo", zalo_webhook, methods=["POST"]),
    ]
    if runtime.settings.web_chat_enabled:
        routes += [
            Route("/", index, methods=["GET"]),
            Route("/chat/api/messages", chat_message, methods=["POST"]),
            Route("/chat/api/inbox", chat_inbox, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


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
    """Runs everything configured until ``stop`` is set or SIGINT/SIGTERM arrives."""
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
