"""Shared fixtures: a real NLU service with a real trained model, once per test session."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.nlu_service import NLUService
from bot.settings import Settings
from nlu.build import current_model, train_model

# Tests never read the developer's .env: each builds its own settings.
os.environ.pop("NLU_URL", None)


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
    """URL of a real Rasa NLU service (a child process) serving the current model."""
    service = NLUService(test_settings, nlu_model)
    service.start()
    try:
        asyncio.run(service.wait_ready(timeout=180))
        yield service.url
    finally:
        service.stop()
