"""Typed settings read from environment variables (and a `.env` file), validated at start-up."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PROJECT_ROOT", "Settings", "load_settings"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_ZALO_SECRET = re.compile(r"^[A-Za-z0-9_-]{8,256}$")


class Settings(BaseSettings):
    """Every setting the application reads; each field documents its default in the README."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    nlu_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:5005"),
        description="Rasa NLU service; started as a child process when none answers here.",
    )
    # The NLU service's --auth-token: the one of a service at NLU_URL, and the one a child is
    # started with (unset: a random token for each child).
    nlu_token: SecretStr | None = None
    nlu_confidence_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    nlu_timeout: Annotated[float, Field(gt=0.0, le=60.0)] = 2.0
    search_min_score: Annotated[float, Field(ge=0.0)] = 9.0
    search_min_coverage: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'coopbot.db'}"
    log_level: str = "INFO"
    model_dir: Path = PROJECT_ROOT / "models"
    nlu_venv: Path = PROJECT_ROOT / ".venv-nlu"
    nlu_start_timeout: Annotated[float, Field(gt=0.0)] = 120.0
    # Admins' labelled questions (coopbot review label, /xemxet): training data of retrains.
    reviewed_data: Path = PROJECT_ROOT / "nlu" / "data" / "reviewed.yml"
    # Answers below this NLU confidence also go to the review queue.
    review_confidence_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.7
    # How far below the deployed model a retrained one may score and still be deployed.
    nlu_retrain_tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    # How often a running assistant checks the model registry for a model to swap in.
    nlu_model_poll_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 5.0

    web_host: str = "127.0.0.1"
    web_port: Annotated[int, Field(ge=0, le=65535)] = 8080  # 0: any free port (tests)
    # Where members reach the web server (FAQ pages, share links, QR codes); None: the local
    # address http://WEB_HOST:WEB_PORT.
    public_base_url: AnyHttpUrl | None = None
    # The Telegram bot's @username (without @), for t.me deep links in share links and QR codes;
    # None: share links point to the web page only.
    telegram_bot_username: str | None = None
    web_chat_enabled: bool = True
    # Comma-separated host names the web chat answers POSTs for, besides WEB_HOST and the
    # loopback names (e.g. the public name a reverse proxy forwards: "hotro.lienminhhtx.vn").
    web_allowed_hosts: str = ""
    # How long the page's poll for later messages (a staff answer) waits when none is there.
    web_poll_seconds: Annotated[float, Field(ge=0, le=60)] = 25.0
    # Flood limits of the web chat (token buckets): new sessions per client address per hour
    # and for everyone per hour; messages per address per minute and for everyone per second.
    web_new_sessions_per_ip_hour: Annotated[int, Field(ge=1)] = 60
    web_new_sessions_per_hour: Annotated[int, Field(ge=1)] = 3000
    web_messages_per_ip_minute: Annotated[int, Field(ge=1)] = 120
    web_messages_per_second: Annotated[int, Field(ge=1)] = 50

    telegram_bot_token: SecretStr | None = None
    telegram_base_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    telegram_webhook_url: AnyHttpUrl | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_staff_chat_id: int | None = None
    telegram_concurrency: Annotated[int, Field(ge=1, le=256)] = 32
    # Hand-overs to staff (/lienhe) a member, and all members together, may open per hour.
    handovers_per_member_hour: Annotated[int, Field(ge=1)] = 3
    handovers_per_hour: Annotated[int, Field(ge=1)] = 120

    zalo_bot_token: SecretStr | None = None
    zalo_base_url: AnyHttpUrl = AnyHttpUrl("https://bot-api.zaloplatforms.com")
    zalo_webhook_url: AnyHttpUrl | None = None
    zalo_webhook_secret: SecretStr | None = None

    # The durable inbox of Telegram and Zalo updates: a process that dies leaves its updates
    # leased for INBOX_LEASE_SECONDS; every INBOX_SWEEP_SECONDS each process takes over lapsed ones.
    inbox_lease_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    inbox_sweep_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0

    # Comma-separated user ids who are admins from the start (see `coopbot users grant`).
    admin_telegram_ids: str = ""
    admin_zalo_ids: str = ""

    # /metrics (Prometheus): off unless enabled; the scraper sends "Authorization: Bearer <token>".
    metrics_enabled: bool = False
    metrics_token: SecretStr | None = None

    reminders_enabled: bool = True
    # Several `coopbot run` on one PostgreSQL database: an outbox reservation holds this long
    # unrenewed (a dead process's rows go to others after it); a follower tries to become the
    # scheduler leader this often.
    outbox_lease_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    scheduler_leader_retry_seconds: Annotated[float, Field(gt=0, le=600)] = 2.0
    # The outbox worker (reminders, session messages, broadcasts).
    outbox_poll_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 15.0
    outbox_concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    telegram_rate: Annotated[float, Field(gt=0.0, le=1000.0)] = 30.0  # messages/s overall
    telegram_paid_broadcast: bool = False  # outbox messages with allow_paid_broadcast
    zalo_rate: Annotated[float, Field(gt=0.0, le=1000.0)] = 20.0  # UNCONFIRMED platform limit
    per_chat_interval: Annotated[float, Field(ge=0.0, le=60.0)] = 1.0  # seconds between sends

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

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret_chars(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.match(value.get_secret_value()):
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters from A-Z a-z 0-9 _ -"
            )
        return value

    @field_validator("zalo_webhook_secret")
    @classmethod
    def _zalo_secret_chars(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _ZALO_SECRET.match(value.get_secret_value()):
            raise ValueError("ZALO_WEBHOOK_SECRET must be 8-256 characters from A-Z a-z 0-9 _ -")
        return value

    @field_validator("telegram_bot_token", "zalo_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # an empty TOKEN= line means "this channel is off"
        if value is not None and ":" not in value.get_secret_value():
            name = (info.field_name or "token").upper()
            raise ValueError(f"{name} must look like <bot id>:<secret>")
        return value

    @model_validator(mode="after")
    def _webhook_needs_token(self) -> Settings:
        if self.telegram_webhook_url is not None and self.telegram_bot_token is None:
            raise ValueError("TELEGRAM_WEBHOOK_URL is set but TELEGRAM_BOT_TOKEN is not")
        if self.zalo_webhook_url is not None and self.zalo_bot_token is None:
            raise ValueError("ZALO_WEBHOOK_URL is set but ZALO_BOT_TOKEN is not")
        if self.metrics_enabled and self.metrics_token is None:
            raise ValueError("METRICS_ENABLED needs METRICS_TOKEN (the scraper's bearer token)")
        return self

    @property
    def telegram_api_base(self) -> str:
        """The Bot API base without a trailing slash (``.../bot`` is appended by the client)."""
        return str(self.telegram_base_url).rstrip("/")

    @property
    def zalo_api_base(self) -> str:
        """The Zalo Bot API base without a trailing slash (``/bot{token}/`` is appended)."""
        return str(self.zalo_base_url).rstrip("/")

    @property
    def bot_accounts(self) -> dict[str, str | None]:
        """``{channel: bot id}`` of the bots this process runs (the web chat: any member).

        The ids come from the tokens. Outbox rows of other bots' members are left to them.
        """
        accounts: dict[str, str | None] = {"web": None}
        for channel, token in (
            ("telegram", self.telegram_bot_token),
            ("zalo", self.zalo_bot_token),
        ):
            if token is not None:
                accounts[channel] = token.get_secret_value().split(":", 1)[0][:64]
        return accounts

    @property
    def admin_ids(self) -> dict[str, frozenset[str]]:
        """Configured admins per channel (ADMIN_TELEGRAM_IDS, ADMIN_ZALO_IDS)."""
        return {
            "telegram": _id_list(self.admin_telegram_ids),
            "zalo": _id_list(self.admin_zalo_ids),
        }

    @field_validator("admin_telegram_ids", "admin_zalo_ids")
    @classmethod
    def _id_lists(cls, value: str, info: ValidationInfo) -> str:
        for item in _id_list(value):
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", item):
                name = (info.field_name or "ids").upper()
                raise ValueError(f"{name} is a comma-separated list of user ids; got {item!r}")
        return value

    @property
    def public_url(self) -> str:
        """The public base URL of the web server, without a trailing slash."""
        if self.public_base_url is not None:
            return str(self.public_base_url).rstrip("/")
        return f"http://{self.web_host}:{self.web_port}"

    @field_validator("telegram_bot_username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        name = value.strip().removeprefix("@")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{3,31}", name):
            raise ValueError("TELEGRAM_BOT_USERNAME must be a bot username such as HtxTroLyBot")
        return name

    @property
    def nlu_base_url(self) -> str:
        """The NLU URL without a trailing slash."""
        return str(self.nlu_url).rstrip("/")


def _id_list(value: str) -> frozenset[str]:
    return frozenset(item.strip() for item in value.split(",") if item.strip())


def load_settings() -> Settings:
    """Reads the settings; raises ``pydantic.ValidationError`` with a clear message when invalid."""
    return Settings()
