"""The one place where the answer service and its parts are built and closed."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import typer
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from bot.answers import AnswerService
from bot.nlu_model.client import NLUClient
from bot.nlu_model.registry import ModelRegistry
from bot.nlu_model.review_queue import ReviewLog
from bot.nlu_model.service import ensure_nlu_service
from bot.nlu_model.swap import serving_model
from bot.settings import Settings, load_settings
from bot.store.db import create_db_engine, upgrade_db
from knowledge.base import load_knowledge_base
from knowledge.law.corpus import LegalCorpus
from knowledge.search import KnowledgeSearch
from nlu.build import TRAIN_DIR, load_examples

__all__ = ["answer_service", "cli_engine", "cli_settings", "configure_logging"]


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


@asynccontextmanager
async def answer_service(
    settings: Settings, *, use_nlu: bool = True
) -> AsyncIterator[AnswerService]:
    """Builds the answer service (starting the NLU service if needed) and closes it after use."""
    kb = load_knowledge_base()
    corpus = LegalCorpus.load()
    search = KnowledgeSearch(kb, load_examples(TRAIN_DIR))
    engine = create_db_engine(settings.database_url)
    upgrade_db(engine)

    def build(nlu: NLUClient | None) -> AnswerService:
        return AnswerService(
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

    try:
        if not use_nlu:
            yield build(None)
            return
        registry = ModelRegistry(engine, settings.model_dir)
        async with (
            ensure_nlu_service(
                settings,
                choose=lambda: serving_model(registry, settings.reviewed_data, record=False),
            ) as endpoint,
            endpoint.client(timeout=settings.nlu_timeout) as nlu,
        ):
            yield build(nlu)
    finally:
        engine.dispose()


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
