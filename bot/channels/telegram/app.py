"""The Telegram channel: the python-telegram-bot Application, fed from the durable inbox.

Updates arrive by long polling (``getUpdates``) or, when ``TELEGRAM_WEBHOOK_URL``
is set, on ``POST /telegram`` (its secret header checked); either way each is
committed to the inbox before it is acknowledged, and the inbox worker hands it
to the Application's handlers (``bot.channels.telegram.updates``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Final

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, Defaults

from bot.channels.telegram.render import CHANNEL as TELEGRAM
from bot.channels.telegram.render import TelegramSender, retry_seconds
from bot.channels.telegram.updates import BotContext, BotServices, register_handlers
from bot.channels.telegram.validation import TelegramUpdate, invalid_field
from bot.channels.webhooks import checked_body, derived_secret
from bot.conversation import Conversation
from bot.settings import Settings
from bot.store.inbox import InboxRow, InboxWorker
from bot.tasks import cancel_and_wait

__all__ = ["ALLOWED_UPDATES", "BOT_COMMANDS", "TelegramChannel"]

log = logging.getLogger(__name__)

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

    name = TELEGRAM

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
        await cancel_and_wait(self._poller)
        await self.worker.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    def routes(self) -> list[BaseRoute]:
        """``POST /telegram``: the webhook (404 while the channel polls)."""
        return [Route("/telegram", self.handle_webhook, methods=["POST"])]

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
