"""Web-chat POSTs from elsewhere: only JSON, for a host we serve, from our own origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.db import Handover, Member, create_db_engine
from tests.conftest import bot_settings
from tests.running_bot import RunningBot


@pytest.fixture(scope="module")
def web(nlu_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A running assistant that also serves the name a proxy forwards; yields (URL, database)."""
    database = tmp_path_factory.mktemp("webchat-posts") / "bot.store.db"
    settings = bot_settings(nlu_url, database, web_allowed_hosts="hotro.example, Other.Example")
    with RunningBot(settings) as bot:
        yield bot.url.rstrip("/"), database


def _members(database: Path) -> int:
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        with Session(engine) as session:
            return int(session.scalar(select(func.count()).select_from(Member)) or 0)
    finally:
        engine.dispose()


def test_posts_from_other_sites_are_refused_and_create_nothing(web):
    url, database = web
    own = url.split("://", 1)[1]  # 127.0.0.1:port
    body = '{"session": "s-attack-000000001", "text": "/lienhe"}'
    with httpx.Client(base_url=url, timeout=30) as client:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
            headers = {"Content-Type": content_type} if content_type else {}
            response = client.post("/chat/api/messages", content=body, headers=headers)
            assert response.status_code == 415, content_type
        foreign_origin = {"Content-Type": "application/json", "Origin": "http://evil.example"}
        response = client.post("/chat/api/messages", content=body, headers=foreign_origin)
        assert response.status_code == 403
        rebinding = {
            "Content-Type": "application/json",
            "Host": "evil.example:8080",
            "Origin": "http://evil.example:8080",
        }
        response = client.post("/chat/api/messages", content=body, headers=rebinding)
        assert response.status_code == 403
    assert _members(database) == 0
    # The page's own requests, and a host named in WEB_ALLOWED_HOSTS, still work.
    with httpx.Client(base_url=url, timeout=60) as client:
        same = {"Origin": f"http://{own}"}
        ok = client.post(
            "/chat/api/messages",
            json={"session": "s-member-000000001", "text": "/help"},
            headers=same,
        )
        assert ok.status_code == 200, ok.text
        proxied = {"Host": "hotro.example", "Origin": "https://hotro.example"}
        forwarded = client.post(
            "/chat/api/messages",
            json={"session": "s-member-000000002", "text": "/help"},
            headers=proxied,
        )
        assert forwarded.status_code == 200, forwarded.text
        cased = client.post(
            "/chat/api/messages",
            json={"session": "s-member-000000003", "text": "/help"},
            headers={"Host": "OTHER.example:443"},
        )
        assert cased.status_code == 200, cased.text
    assert _members(database) == 3


def test_a_flood_of_new_sessions_from_one_address_is_cut_at_the_limit(nlu_url, tmp_path):
    database = tmp_path / "bot.store.db"
    settings = bot_settings(nlu_url, database)  # the default limits
    limit = settings.web_new_sessions_per_ip_hour
    statuses = []
    with RunningBot(settings) as bot, httpx.Client(base_url=bot.url, timeout=60) as client:
        for index in range(limit + 40):
            response = client.post(
                "/chat/api/messages",
                json={"session": f"flood-session-{index:06d}", "text": "/lienhe hỏi về thuế"},
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert "quá nhiều phiên" in response.json()["error"]
        # A session that already exists goes on talking.
        again = client.post(
            "/chat/api/messages",
            json={"session": "flood-session-000000", "text": "htx can bao nhieu thanh vien"},
        )
    assert statuses == [200] * limit + [429] * 40
    assert again.status_code == 200
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        with Session(engine) as session:
            members = session.scalar(select(func.count()).select_from(Member))
            handovers = session.scalar(select(func.count()).select_from(Handover))
    finally:
        engine.dispose()
    assert members == limit and handovers == limit
