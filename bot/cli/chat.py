"""``coopbot chat``: the terminal channel, through the core like any channel."""

from __future__ import annotations

import asyncio

import typer

from bot.app import chat_in_terminal
from bot.cli.context import cli_settings
from nlu.build import NLUBuildError

__all__ = ["chat"]


def chat() -> None:
    """Talk to the assistant in the terminal."""
    settings = cli_settings()
    try:
        asyncio.run(chat_in_terminal(settings))
    except NLUBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
