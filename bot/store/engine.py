"""The database engine and its schema's migrations (Alembic): SQLite by default, PostgreSQL by URL.

``bot.store.db`` re-exports these with the models, so callers import both from there.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

__all__ = ["MIGRATIONS_DIR", "create_db_engine", "current_revision", "downgrade_db", "upgrade_db"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def create_db_engine(url: str) -> Engine:
    """Creates the engine; for SQLite makes the parent folder and turns on WAL."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # A ping before each use guards against server-side disconnects; SQLite needs none.
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL loses nothing on an application crash and spares
            # an fsync per commit.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            # SQLite enforces ON DELETE CASCADE (and SET NULL) only when asked to.
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade_db(engine: Engine, revision: str = "head") -> None:
    """Applies the Alembic migrations up to ``revision`` (run at start-up and by ``db upgrade``)."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)


def downgrade_db(engine: Engine, revision: str = "base") -> None:
    """Reverts the migrations down to ``revision`` (``base`` drops every table)."""
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
