"""``coopbot run``: the assistant itself, with every configured channel."""

from __future__ import annotations

import asyncio

import typer
import uvloop
from telegram.error import TelegramError

from bot.channels.zalo.client import ZaloError
from bot.cli.context import cli_settings
from bot.web import serve
from nlu.build import NLUBuildError

__all__ = ["run"]


def run() -> None:
    """Run the assistant: NLU service, database, web chat and the configured chat apps."""
    settings = cli_settings()

    def ready(url: str) -> None:
        channels = ["web chat" if settings.web_chat_enabled else None]
        if settings.telegram_bot_token is not None:
            mode = "webhook" if settings.telegram_webhook_url else "polling"
            channels.append(f"Telegram ({mode})")
        if settings.zalo_bot_token is not None:
            mode = "webhook" if settings.zalo_webhook_url else "polling"
            channels.append(f"Zalo ({mode})")
        typer.echo(f"Trợ lý HTX is running: {', '.join(c for c in channels if c)}")
        if settings.web_chat_enabled:
            typer.echo(f"Web chat: {url}")
        typer.echo("Stop with Ctrl+C.")

    try:
        # uvloop: the same asyncio API with a faster event loop (about a tenth less CPU per
        # message in `make bench-chat`).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(settings, on_ready=ready))
    except (NLUBuildError, OSError, ZaloError, TelegramError) as exc:
        prefix = {ZaloError: "Zalo: ", TelegramError: "Telegram: "}
        where = next((p for kind, p in prefix.items() if isinstance(exc, kind)), "")
        message = exc.message if isinstance(exc, TelegramError) else str(exc)
        typer.echo(f"error: {where}{message}", err=True)
        raise typer.Exit(1) from exc
