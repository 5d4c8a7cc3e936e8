"""Persistence: the engine, the migrations and one module per table family."""

# Tables declared outside db.py join Base.metadata here, so that migrations, the schema
# comparison and drop_all see them in every process, whatever it imported first.
import bot.store.admin_sessions  # noqa: F401
