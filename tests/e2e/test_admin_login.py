"""The admin login end to end over real HTTP: /quantri in the web chat -> link -> cookie -> page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.store.db import create_db_engine
from bot.store.members import MemberStore
from tests.conftest import bot_settings
from tests.running_bot import RunningBot

STAFF = "s-admin-staff-0000001"
MEMBER = "s-admin-member-000001"


@pytest.fixture(scope="module")
def web(nlu_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A running assistant; yields (URL, database)."""
    database = tmp_path_factory.mktemp("admin-login") / "bot.db"
    with RunningBot(bot_settings(nlu_url, database)) as bot:
        yield bot.url.rstrip("/"), database


def _chat(client: httpx.Client, session: str, text: str) -> str:
    response = client.post("/chat/api/messages", json={"session": session, "text": text})
    assert response.status_code == 200, response.text
    return "\n".join(r["text"] for r in response.json()["replies"])


def _grant(database: Path, user: str, role: str) -> None:
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        MemberStore(engine).set_role("web", user, role)
    finally:
        engine.dispose()


def test_quantri_link_logs_staff_in_once_and_logout_all_ends_it(web, monkeypatch):
    url, database = web
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as client:
        assert "Mình chưa hiểu lệnh" in _chat(client, MEMBER, "/quantri")
        _chat(client, STAFF, "/start")
        _grant(database, STAFF, "staff")
        text = _chat(client, STAFF, "/quantri")
        (link,) = [w for w in text.split() if "/admin/login?token=" in w]
        path = urlsplit(link)
        login = client.get(f"{path.path}?{path.query}")
        assert login.status_code == 200 and 'content="0;url=/admin"' in login.text
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        page = client.get("/admin")
        assert page.status_code == 200
        assert "vai trò cán bộ (staff)" in page.text
        assert page.headers["cache-control"] == "no-store"
        # Every page a staff member may open works on the running assistant's own stores.
        for page_path in (
            "/admin/topics",
            "/admin/members",
            "/admin/broadcasts",
            "/admin/reminders",
        ):
            assert client.get(page_path, params={"days": 90}).status_code == 200, page_path
        for page_path in ("/admin/review", "/admin/models", "/admin/roles"):
            assert client.get(page_path).status_code == 403, page_path
        _grant(database, STAFF, "admin")
        for page_path in ("/admin/review", "/admin/models", "/admin/roles"):
            response = client.get(page_path)
            assert response.status_code == 200 and "vai trò quản trị viên" in response.text, (
                page_path
            )
        assert "<h1>Mô hình NLU</h1>" in client.get("/admin/models").text
        # The link works once.
        other = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
        with other:
            reused = other.get(f"{path.path}?{path.query}")
            assert reused.status_code == 403 and "set-cookie" not in reused.headers
        # coopbot users logout-all, against the same database.
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
        result = CliRunner().invoke(cli_app, ["users", "logout-all"])
        assert result.exit_code == 0, result.output
        assert "Đã đăng xuất 1 phiên" in result.output
        after = client.get("/admin")
        assert after.status_code == 403 and "/quantri" in after.text
        assert "vai trò cán bộ" not in after.text
