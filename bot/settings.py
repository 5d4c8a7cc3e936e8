"""Typed settings read from environment variables (and a `.env` file), validated at start-up."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PROJECT_ROOT", "Settings", "load_settings"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting the application reads; each field documents its default in the README."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    nlu_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:5005"),
        description="Rasa NLU service; started as a child process when none answers here.",
    )
    nlu_confidence_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    nlu_timeout: Annotated[float, Field(gt=0.0, le=60.0)] = 2.0
    search_min_score: Annotated[float, Field(ge=0.0)] = 9.0
    search_min_coverage: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'coopbot.db'}"
    log_level: str = "INFO"
    model_dir: Path = PROJECT_ROOT / "models"
    nlu_venv: Path = PROJECT_ROOT / ".venv-nlu"
    nlu_start_timeout: Annotated[float, Field(gt=0.0)] = 120.0

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR; got {value!r}")
        return level

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("DATABASE_URL must be a sqlite:/// or postgresql:// URL")
        if value.startswith("postgresql://"):
            # SQLAlchemy's default PostgreSQL driver is psycopg2; we ship psycopg 3.
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @property
    def nlu_base_url(self) -> str:
        """The NLU URL without a trailing slash."""
        return str(self.nlu_url).rstrip("/")


def load_settings() -> Settings:
    """Reads the settings; raises ``pydantic.ValidationError`` with a clear message when invalid."""
    return Settings()
