"""Alembic environment: migrations run on the connection handed over by ``bot.store.db``.

The application never reads a URL from an ini file: ``bot.store.db.upgrade_db`` opens
the connection from the validated settings and passes it in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from bot.store.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `coopbot db upgrade` (bot.store.db.upgrade_db)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
