"""The admin dashboard's pages, CSV downloads and actions, on SQLite and PostgreSQL.

The fixture (``tests/dashboard_seed.py``) is small and counted by hand. The clock
stands at 03/11/2026 23:45 Vietnam time, so the 7-day window is [28/10 00:00, now).
Figures are checked through the CSV downloads, which hold exactly what the page's
tables show, and a few on the rendered HTML. Every route is tried with no session,
a forged cookie, a demoted member's session, a staff session and an admin session.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from bot.nlu_model.registry import ModelRegistry
from bot.store.admin_sessions import AdminSessionStore
from bot.store.db import Broadcast, Member, NLUModel, OutboxMessage, ReviewQuestion
from bot.store.members import MemberStore
from bot.web.admin import COOKIE
from bot.web.dashboard import PAGES
from bot.web.server import admin_app
from tests.dashboard_seed import E1, E2, E3, KB, NOW, board_of, seed, utc


@pytest.fixture
def dashboard(db_engine: Engine, tmp_path: Path):
    ids = seed(db_engine, tmp_path)
    app = admin_app(board_of(db_engine, tmp_path))
    with TestClient(app, follow_redirects=False) as client:
        yield client, db_engine, ids


def log_in(client: TestClient, engine: Engine, member_id: int) -> None:
    token = AdminSessionStore(engine, lambda: NOW).issue_token(member_id)
    response = client.get("/admin/login", params={"token": token})
    assert response.status_code == 200 and COOKIE in response.cookies
    assert '<meta http-equiv="refresh" content="0;url=/admin">' in response.text


def table(client: TestClient, path: str) -> list[list[str]]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(response.text[1:])))


def test_overview_figures(dashboard) -> None:
    client, engine, ids = dashboard
    log_in(client, engine, ids["lan"])
    assert table(client, "/admin/csv/overview/outcomes.csv?days=7") == [
        ["outcome", "count", "share"],
        ["Trả lời từ mục hỏi đáp", "3", "0.4286"],
        ["Gợi ý mục gần đúng", "1", "0.1429"],
        ["Trích dẫn điều luật", "1", "0.1429"],
        ["Ngoài phạm vi", "1", "0.1429"],
        ["Chưa trả lời được", "1", "0.1429"],
        ["Trò chuyện", "0", "0.0000"],
        ["Chuyển cán bộ", "1", "0.1429"],
    ]
    assert table(client, "/admin/csv/overview/questions_per_day.csv?days=7") == [
        ["day", "telegram", "web", "zalo", "total"],
        ["2026-11-03", "0", "2", "1", "3"],
        ["2026-11-02", "0", "0", "2", "2"],
        ["2026-11-01", "0", "0", "0", "0"],
        ["2026-10-31", "0", "0", "0", "0"],
        ["2026-10-30", "1", "0", "0", "1"],
        ["2026-10-29", "0", "0", "0", "0"],
        ["2026-10-28", "1", "0", "0", "1"],
    ]
    page = client.get("/admin?days=7").text
    cards = [("Câu hỏi", "7"), ("Thành viên đã dùng", "3"), ("👍 Hữu ích", "3"),
             ("👎 Chưa hữu ích", "1"), ("Chuyển cán bộ", "1"),
             ("Trả lời từ mục hỏi đáp", "42,9 %")]  # fmt: skip
    for label, value in cards:
        expected = f'<div class="card-value">{value}</div><div class="card-label">{label}</div>'
        assert expected in page
    chart = page.split('data-target="chart-questions">', 1)[1].split("</script>", 1)[0]
    data = json.loads(chart)
    assert data["kind"] == "time" and len(data["x"]) == 7
    assert data["x"][0] == int(dt.datetime(2026, 10, 27, 17, tzinfo=dt.UTC).timestamp())
    assert data["series"] == [
        {"label": "Telegram", "values": [1, 0, 1, 0, 0, 0, 0]},
        {"label": "Web", "values": [0, 0, 0, 0, 0, 0, 2]},
        {"label": "Zalo", "values": [0, 0, 0, 0, 0, 2, 1]},
    ]
    # Hà Nội: m1's two questions (Minh asked none); the browsed entry's 👍 counts.
    hanoi = table(client, "/admin/csv/overview/outcomes.csv?days=7&province=ha_noi")
    assert [row[1] for row in hanoi[1:]] == ["1", "1", "0", "0", "0", "0", "0"]
    assert (
        '<div class="card-value">2</div><div class="card-label">👍 Hữu ích</div>'
        in client.get("/admin?days=7&province=ha_noi").text
    )
    # 30 days reach back to 05/10: the question of 27/10 and the hand-over of 20/10 count.
    month = table(client, "/admin/csv/overview/outcomes.csv?days=30")
    assert (month[1][1], month[7][1]) == ("4", "2")
    # An unknown period or province falls back to 30 days, all provinces.
    assert table(client, "/admin/csv/overview/outcomes.csv?days=12&province=atlantis") == month


def test_topics_members_broadcasts_reminders_figures(dashboard) -> None:
    client, engine, ids = dashboard
    log_in(client, engine, ids["minh"])  # staff
    assert table(client, "/admin/csv/topics/entries.csv?days=7") == [
        ["entry_id", "title", "category", "questions"],
        [E2, KB.get(E2).title, "Vốn góp", "2"],
        [E3, KB.get(E3).title, "Thành viên và thành lập HTX", "1"],
        [E1, KB.get(E1).title, "Thành viên và thành lập HTX", "1"],
    ]
    assert table(client, "/admin/csv/topics/categories.csv?days=7") == [
        ["category", "questions"],
        ["Thành viên và thành lập HTX", "2"],
        ["Vốn góp", "2"],
    ]
    topics = client.get("/admin/topics?days=7").text
    assert "chỉ quản trị viên xem" in topics and "vay vốn" not in topics  # staff: no queue
    assert client.get("/admin/csv/topics/unanswered.csv").status_code == 404

    provinces = table(client, "/admin/csv/members/provinces.csv?days=7")
    assert provinces[0] == ["province", "members", "share"]
    assert len(provinces) == 1 + 34 + 1  # the 34 provinces, then members without one
    counted = {row[0]: row[1] for row in provinces[1:]}
    assert (counted["Hà Nội"], counted["Huế"], counted["Cần Thơ"]) == ("2", "1", "1")
    assert counted["(chưa khai báo)"] == "1" and counted["Đà Nẵng"] == "0"
    assert sum(int(n) for n in counted.values()) == 5  # m4 is inactive
    assert table(client, "/admin/csv/members/channels.csv") == [
        ["channel", "members", "share"],
        ["Telegram", "2", "0.4000"],
        ["Zalo", "2", "0.4000"],
        ["Web", "1", "0.2000"],
    ]
    assert table(client, "/admin/csv/members/coop_types.csv") == [
        ["coop_type", "members", "share"],
        ["HTX nông nghiệp", "2", "0.4000"],
        ["(chưa khai báo)", "2", "0.4000"],
        ["HTX vận tải", "1", "0.2000"],
    ]
    assert table(client, "/admin/csv/members/new_per_week.csv?days=7") == [
        ["week_start", "iso_week", "new_members"],
        ["2026-11-02", "2026-W45", "1"],  # m2
        ["2026-10-26", "2026-W44", "2"],  # m1, m4 (inactive now, new then)
    ]
    assert table(client, "/admin/csv/broadcasts/broadcasts.csv?days=7") == [
        ["id", "created_at", "segment", "recipients", "status", "sent", "blocked", "failed",
         "dropped", "pending"],
        ["3", "2026-11-03T08:00+07:00", "mọi thành viên", "0", "Đã xong", "0", "0", "0", "0", "0"],
        ["1", "2026-11-02T08:00+07:00", "tỉnh Hà Nội", "3", "Đang gửi", "1", "1", "0", "0", "1"],
    ]  # fmt: skip
    broadcasts = client.get("/admin/broadcasts?days=7").text
    assert broadcasts.count('action="/admin/broadcasts/') == 1  # only #1 can be stopped
    chart = broadcasts.split('data-target="chart-deliveries">', 1)[1].split("</script>", 1)[0]
    series = {s["label"]: s["values"] for s in json.loads(chart)["series"]}
    assert series == {
        "Đã gửi": [0, 0, 0, 0, 0, 1, 0],
        "Chặn bot": [0, 0, 0, 0, 0, 1, 0],
        "Chờ gửi": [0, 0, 0, 0, 0, 1, 0],
    }
    reminders = table(client, "/admin/csv/reminders/reminders.csv?days=7")
    assert reminders == [
        ["kind", "rule", "sent", "unknown", "dropped", "blocked", "failed", "pending", "total"],
        ["Hạn nộp", "vat_monthly", "1", "1", "1", "0", "0", "0", "3"],
        ["Nhắc buổi tập huấn", reminders[2][1], "1", "0", "0", "0", "0", "0", "1"],
    ]
    assert reminders[2][1].endswith("Tập huấn Luật HTX")
    sessions = table(client, "/admin/csv/reminders/sessions.csv?days=7")
    assert [row[1:] for row in sessions[1:]] == [
        ["Tập huấn Luật HTX", "2026-11-10T08:00+07:00", "Toàn quốc", "scheduled", "30", "2"]
    ]
    can_tho = table(client, "/admin/csv/reminders/reminders.csv?days=7&province=can_tho")
    assert can_tho[1:] == [["Hạn nộp", "vat_monthly", "0", "1", "0", "0", "0", "0", "1"]]


def test_admin_pages_review_models_roles_and_actions(dashboard, tmp_path: Path) -> None:
    client, engine, ids = dashboard
    log_in(client, engine, ids["lan"])
    topics = client.get("/admin/topics").text
    assert '<a href="/admin/review#group-1">' in topics  # the loan group, asked twice
    groups = table(client, "/admin/csv/review/groups.csv")
    assert [row[:3] for row in groups] == [
        ["group", "question", "asked"],
        ["1", "htx tôi muốn vay vốn ngân hàng", "2"],
        ["3", "giá lúa hôm nay bao nhiêu", "1"],
    ]
    assert [row[:2] for row in table(client, "/admin/csv/models/models.csv")] == [
        ["version", "status"],
        ["v2", "Đang dùng"],
        ["v1", "Đã thay"],
    ]
    assert table(client, "/admin/csv/roles/roles.csv") == [
        ["member_id", "name", "role", "channel", "province"],
        [str(ids["lan"]), "Lan", "quản trị viên", "Telegram", "Huế"],
        [str(ids["minh"]), "Minh", "cán bộ", "Zalo", "Hà Nội"],
    ]

    csrf = csrf_of(client.get("/admin/models").text)
    # Without the form's token nothing happens.
    refused = client.post("/admin/models/rollback", data={"csrf": "x"})
    assert refused.status_code == 403
    response = client.post("/admin/models/rollback", data={"csrf": csrf})
    assert response.status_code == 303
    assert "Đã triển khai lại mô hình v1" in client.get(response.headers["location"]).text
    deployed = ModelRegistry(engine, tmp_path).deployed()
    assert deployed is not None and deployed.version == "v1"
    assert deployed.deployed_by == f"Lan (#{ids['lan']}, web)"

    response = client.post("/admin/review/1", data={"csrf": csrf, "action": "label", "intent": E2})
    assert response.status_code == 303
    with Session(engine) as session:
        labelled = session.scalars(
            select(ReviewQuestion.label).where(ReviewQuestion.status == "labelled")
        ).all()
    assert labelled == [E2, E2]
    assert "vay vốn" not in client.get("/admin/review").text
    assert (
        client.post(
            "/admin/review/3", data={"csrf": csrf, "action": "label", "intent": "no_such_intent"}
        )
        .headers["location"]
        .startswith("/admin/review?done=bad_decision")
    )

    response = client.post("/admin/broadcasts/1/stop", data={"csrf": csrf})
    assert response.status_code == 303
    assert "1 tin chưa gửi đã được bỏ" in client.get(response.headers["location"]).text
    with Session(engine) as session:
        states = session.scalars(
            select(OutboxMessage.status)
            .where(OutboxMessage.kind == "broadcast", OutboxMessage.ref == "1")
            .order_by(OutboxMessage.id)
        ).all()
        assert states == ["sent", "blocked", "dropped"]
        assert session.get(Broadcast, 1).status == "cancelled"
    again = client.post("/admin/broadcasts/1/stop", data={"csrf": csrf})
    assert "không dừng được" in client.get(again.headers["location"]).text


def csrf_of(page: str) -> str:
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


# -- who may open what ---------------------------------------------------------------------

ADMIN_PAGES = {p.path for p in PAGES if "staff" not in p.roles}
CSVS = {  # one table of each page
    "/admin/csv/overview/outcomes.csv": "staff",
    "/admin/csv/topics/entries.csv": "staff",
    "/admin/csv/members/provinces.csv": "staff",
    "/admin/csv/broadcasts/broadcasts.csv": "staff",
    "/admin/csv/reminders/sessions.csv": "staff",
    "/admin/csv/review/groups.csv": "admin",
    "/admin/csv/models/models.csv": "admin",
    "/admin/csv/roles/roles.csv": "admin",
}
POSTS = {
    "/admin/broadcasts/1/stop": "staff",
    "/admin/models/rollback": "admin",
    "/admin/review/1": "admin",
}
SECRET_BITS = ("Tập huấn Luật HTX", "vay vốn", "Hà Nội", "v2", "Lan", "Minh")


def test_every_route_needs_a_session_of_the_right_role(dashboard) -> None:
    client, engine, ids = dashboard
    gets = {p.path: "admin" if p.path in ADMIN_PAGES else "staff" for p in PAGES} | CSVS
    assert len(gets) == len(PAGES) + len(CSVS) == 16

    def refused(response, *, login: bool) -> None:
        assert response.status_code == 403, response.request.url
        assert response.headers["content-type"].startswith("text/html")
        assert ("/quantri" in response.text) is login
        assert not any(bit in response.text for bit in SECRET_BITS)

    for path in gets:  # no cookie, then a forged one
        refused(client.get(path), login=True)
        client.cookies.set(COOKIE, "1.deadbeef", path="/admin")
        refused(client.get(path), login=True)
        client.cookies.clear()
    for path in POSTS:
        refused(client.post(path, data={"csrf": "x", "action": "skipped"}), login=True)

    log_in(client, engine, ids["minh"])
    staff_csrf = csrf_of(client.get("/admin").text)
    for path, role in gets.items():
        response = client.get(path)
        if role == "staff":
            assert response.status_code == 200, path
        else:
            refused(response, login=False)
    refused(client.post("/admin/models/rollback", data={"csrf": staff_csrf}), login=False)
    refused(client.post("/admin/review/1", data={"csrf": staff_csrf}), login=False)
    nav = client.get("/admin").text.split("</nav>", 1)[0]
    assert "/admin/models" not in nav and "/admin/broadcasts" in nav
    # Demoted to member: the same cookie opens nothing.
    MemberStore(engine).set_role("zalo", "minh", "member")
    for path in gets:
        refused(client.get(path), login=True)
    refused(client.post("/admin/broadcasts/1/stop", data={"csrf": staff_csrf}), login=True)

    client.cookies.clear()
    log_in(client, engine, ids["lan"])
    for path in gets:
        assert client.get(path).status_code == 200, path
    for path in POSTS:  # the right role but another session's token: refused, nothing done
        refused(client.post(path, data={"csrf": staff_csrf, "action": "skipped"}), login=False)
    with Session(engine) as session:
        assert session.get(Broadcast, 1).status == "sending"
        assert session.scalar(select(NLUModel.status).where(NLUModel.version == "v2")) == "deployed"
    # Unknown pages and tables are 404 only behind the login.
    assert client.get("/admin/csv/nothing/outcomes.csv").status_code == 404
    assert client.get("/admin/csv/overview/nothing.csv").status_code == 404
    client.cookies.clear()
    refused(client.get("/admin/csv/nothing/outcomes.csv"), login=True)


def test_an_empty_database_renders_every_page(db_engine: Engine, tmp_path: Path) -> None:
    member = MemberStore(db_engine).set_role("telegram", "9", "admin").id
    with Session(db_engine) as session, session.begin():
        session.execute(update(Member).values(created_at=utc(9, 1, 1)))
    with TestClient(admin_app(board_of(db_engine, tmp_path)), follow_redirects=False) as client:
        log_in(client, db_engine, member)
        for page in PAGES:
            for days in (7, 30, 90):
                response = client.get(page.path, params={"days": days})
                assert response.status_code == 200, page.path
                assert "Không vào được" not in response.text
        overview = client.get("/admin").text
        assert '<div class="card-value">0</div><div class="card-label">Câu hỏi</div>' in overview
