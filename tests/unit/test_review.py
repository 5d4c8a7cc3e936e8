"""The review log on a real database: SQLite, and PostgreSQL where a server answers."""

from __future__ import annotations

import pytest

from bot.nlu_model.review_queue import ReviewLog
from bot.settings import Settings


@pytest.fixture
def engine(db_engine):
    return db_engine


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
