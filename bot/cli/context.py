"""What every command shares: its settings, its logging, its database and the answer service.

The answer service is built by the composition root (``bot.app.answer_service``);
it is re-exported here for the command modules.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from bot.app import answer_service
from bot.settings import Settings, load_settings
from bot.store.db import create_db_engine, upgrade_db

__all__ = ["answer_service", "cli_engine", "cli_settings", "configure_logging", "fail"]


def configure_logging(settings: Settings) -> None:
    """Logs to stderr at LOG_LEVEL; httpx stays at WARNING (its INFO lines carry URLs)."""
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # Alembic says "Context impl SQLiteImpl." on every start-up.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


def cli_settings() -> Settings:
    """The settings for a command: exits with code 2 and the reasons when they are invalid."""
    try:
        settings = load_settings()
    except ValidationError as exc:
        typer.echo(f"error: invalid settings:\n{exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings)
    return settings


@contextmanager
def cli_engine() -> Iterator[Engine]:
    """The migrated database engine for a command; disposed at the end."""
    engine = create_db_engine(cli_settings().database_url)
    try:
        upgrade_db(engine)
        yield engine
    finally:
        engine.dispose()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Prints ``message`` on stderr and returns the ``typer.Exit`` for the caller to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code)
