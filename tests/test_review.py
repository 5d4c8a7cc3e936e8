"""The review log on a real database: SQLite, and PostgreSQL where a server answers."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.db import Base, create_db_engine, init_db
from bot.review import ReviewLog
from bot.settings import Settings

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_engine():
    url = Settings(_env_file=None, database_url=POSTGRES_URL).database_url  # type: ignore[call-arg]
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except OperationalError as exc:
        engine.dispose()
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_URL}: {exc.orig}")
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'nested' / 'review.db'}")
    else:
        engine = _postgres_engine()
    Base.metadata.drop_all(engine)
    init_db(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def test_records_and_lists_open_questions(engine):
    log = ReviewLog(engine)
    first = log.record(
        channel="cli",
        text="thời tiết?",
        reason="out_of_scope",
        intent="out_of_scope",
        confidence=0.9,
    )
    second = log.record(
        channel="cli", text="x" * 10_000, reason="low_confidence", intent=None, confidence=None
    )
    assert second > first
    assert log.count_open() == 2
    latest = log.latest()
    assert [q.id for q in latest] == [second, first]
    assert len(latest[0].text) == 4000  # long texts are cut, not rejected
    assert latest[1].text == "thời tiết?" and latest[1].confidence == pytest.approx(0.9)
    assert latest[1].created_at is not None


def test_postgres_url_uses_psycopg3():
    settings = Settings(_env_file=None, database_url="postgresql://u@h/db")  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+psycopg://u@h/db"
