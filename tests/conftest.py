"""Shared fixtures: a real NLU service with a real trained model, once per test session."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from bot.nlu_model.service import NLUService
from bot.settings import Settings
from bot.store.db import Base, create_db_engine, upgrade_db
from nlu.build import current_model, train_model
from tests.running_bot import RunningBot

# Tests never read the developer's .env: each builds its own settings.
for _name in list(os.environ):
    if _name.startswith(("NLU_", "TELEGRAM_", "ZALO_", "WEB_", "DATABASE_")):
        os.environ.pop(_name)


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    db = tmp_path_factory.mktemp("db") / "test.db"
    return Settings(_env_file=None, database_url=f"sqlite:///{db}")  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def nlu_model(test_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model of the current data: `make test` trains it first; else train one here."""
    model = current_model(test_settings.model_dir)
    if model is not None:
        return model
    return train_model(tmp_path_factory.mktemp("models"), test_settings.nlu_venv).model


@pytest.fixture(scope="session")
def nlu_url(test_settings: Settings, nlu_model: Path) -> Iterator[str]:
    """URL of a real Rasa NLU service (a child process) serving the current model.

    It requires its auth token like any service we start; ``NLU_TOKEN`` carries it
    to every assistant a test builds or runs (settings and child processes read it).
    """
    service = NLUService(test_settings, nlu_model)
    os.environ["NLU_TOKEN"] = service.token
    service.start()
    try:
        asyncio.run(service.wait_ready(timeout=180))
        yield service.url
    finally:
        service.stop()
        os.environ.pop("NLU_TOKEN", None)


POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _drop_everything(engine: Engine) -> None:
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def postgres_engine() -> Engine:
    """An engine on the test PostgreSQL server; skips the test when none answers."""
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
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database: a SQLite file, then the PostgreSQL test database."""
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'nested' / 'test.db'}")
    else:
        engine = postgres_engine()
    _drop_everything(engine)
    upgrade_db(engine)
    try:
        yield engine
    finally:
        _drop_everything(engine)
        engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database in a temporary folder."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'test.db'}")
    upgrade_db(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def bot_settings(nlu_url: str, database: Path, **overrides: object) -> Settings:
    """Settings for an end-to-end bot: the session's NLU service, a fresh SQLite file."""
    values: dict[str, object] = {"web_port": 0, **overrides}
    return Settings(  # type: ignore[call-arg]
        _env_file=None, nlu_url=nlu_url, database_url=f"sqlite:///{database}", **values
    )


@pytest.fixture(scope="module")
def web_chat_url(nlu_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The web chat of a running assistant (real NLU service, real database)."""
    database = tmp_path_factory.mktemp("webchat") / "webchat.db"
    with RunningBot(bot_settings(nlu_url, database)) as bot:
        yield bot.url
