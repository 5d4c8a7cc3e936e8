"""``coopbot db upgrade``: the database schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.context import cli_settings
from bot.store.db import create_db_engine, current_revision, upgrade_db

__all__ = ["db_app"]

db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the database migrations (also done at start-up)."""
    settings = cli_settings()
    engine = create_db_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade_db(engine, revision)
        typer.echo(f"database at revision {current_revision(engine)} (was {before or 'empty'})")
    finally:
        engine.dispose()
