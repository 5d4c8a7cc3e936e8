"""``/metrics``: off by default, behind a bearer token, counting what happened."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from bot.settings import Settings
from bot.store.db import create_db_engine
from bot.store.inbox import Inbox
from tests.conftest import bot_settings
from tests.running_bot import RunningBot

TOKEN = "scrape-me-0123456789"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_need_the_token_and_count_questions_queues_and_the_model(
    nlu_url: str, nlu_model: Path, tmp_path: Path
):
    database = tmp_path / "bot.store.db"
    settings = bot_settings(nlu_url, database, metrics_enabled=True, metrics_token=TOKEN)
    with RunningBot(settings) as bot, httpx.Client(base_url=bot.url, timeout=30) as client:
        for text in ("htx can toi thieu bao nhieu thanh vien", "xin chào"):
            asked = client.post(
                "/chat/api/messages", json={"session": "metrics-session-01", "text": text}
            )
            assert asked.status_code == 200
        engine = create_db_engine(settings.database_url)
        Inbox(engine, "telegram", "42", "gone-worker").accept("7", "{}")  # left by a crash
        engine.dispose()
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    samples = _samples(scraped.text)
    web = (("channel", "web"),)
    assert samples[("coopbot_questions_total", (*web, ("outcome", "entry")))] == 1
    assert samples[("coopbot_questions_total", (*web, ("outcome", "chitchat")))] == 1
    assert samples[("coopbot_answer_seconds_count", web)] == 2
    assert samples[("coopbot_nlu_calls_total", (("result", "ok"),))] >= 2
    assert samples[("coopbot_inbox_pending", (("channel", "telegram"),))] == 1
    assert ("coopbot_nlu_model_info", (("file", nlu_model.name),)) in samples
    assert TOKEN not in scraped.text and "NLU_TOKEN" not in scraped.text


def test_metrics_are_off_by_default_and_need_a_token_when_on(web_chat_url: str, tmp_path: Path):
    assert httpx.get(f"{web_chat_url.rstrip('/')}/metrics", timeout=10).status_code == 404
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        Settings(_env_file=None, metrics_enabled=True)  # type: ignore[call-arg]
