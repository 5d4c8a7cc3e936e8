"""Admin logins: one-time tokens, sessions, cookies, CSRF and /quantri, on real databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.conversation import Conversation, Incoming
from bot.profile import load_profile_options
from bot.store.admin_sessions import AdminSessionStore
from bot.store.members import MemberStore
from bot.web.admin import COOKIE, AdminAuth
from bot.web.dashboard import Dashboard
from bot.web.server import admin_app as dashboard_app
from tests.unit.test_training_chat import KB, make_core

START = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


def _member(engine, user: str, role: str) -> int:
    return MemberStore(engine).set_role("telegram", user, role).id


# -- the store, on SQLite and PostgreSQL ---------------------------------------------------


def test_a_token_opens_one_session_once_and_expires(db_engine):
    clock = Clock()
    store = AdminSessionStore(db_engine, clock)
    staff_id = _member(db_engine, "1", "staff")
    token = store.issue_token(staff_id)
    assert len(token) >= 43
    staff = store.redeem(token)
    assert staff is not None and (staff.member_id, staff.role) == (staff_id, "staff")
    assert store.redeem(token) is None  # used once
    assert store.current(staff.session_id) == staff
    late = store.issue_token(staff_id)
    clock.now += dt.timedelta(minutes=10)
    assert store.redeem(late) is None  # 10 minutes: expired
    for bad in ("", "x", "A" * 500, token + "x"):
        assert store.redeem(bad) is None
    clock.now = START + dt.timedelta(hours=12)
    assert store.current(staff.session_id) is None  # the session lasts 12 hours


def test_only_staff_get_tokens_and_the_current_role_decides(db_engine):
    store = AdminSessionStore(db_engine)
    member_id = _member(db_engine, "2", "member")
    with pytest.raises(PermissionError):
        store.issue_token(member_id)
    with pytest.raises(LookupError):
        store.issue_token(999_999)
    admin_id = _member(db_engine, "3", "admin")
    _member(db_engine, "4", "admin")  # so that "3" is not the last admin
    staff = store.redeem(store.issue_token(admin_id))
    assert staff is not None and staff.role == "admin"
    MemberStore(db_engine).set_role("telegram", "3", "staff")
    now = store.current(staff.session_id)
    assert now is not None and (now.role, now.login_role) == ("staff", "admin")
    MemberStore(db_engine).set_role("telegram", "3", "member")
    assert store.current(staff.session_id) is None  # demoted: out at once
    # A token made before the demotion opens nothing either.
    MemberStore(db_engine).set_role("telegram", "3", "staff")
    pending = store.issue_token(admin_id)
    MemberStore(db_engine).set_role("telegram", "3", "trainer")
    assert store.redeem(pending) is None


def test_logout_all_ends_sessions_and_unused_tokens(db_engine):
    store = AdminSessionStore(db_engine)
    staff_id = _member(db_engine, "5", "staff")
    sessions = [store.redeem(store.issue_token(staff_id)) for _ in range(2)]
    unused = store.issue_token(staff_id)
    assert store.logout_all() == (2, 1)
    assert all(s is not None and store.current(s.session_id) is None for s in sessions)
    assert store.redeem(unused) is None
    assert store.logout_all() == (0, 0)


def test_two_uses_of_one_token_at_once_open_one_session(db_engine):
    store = AdminSessionStore(db_engine)
    token = store.issue_token(_member(db_engine, "6", "staff"))
    barrier = threading.Barrier(8)
    results = []

    def use() -> None:
        barrier.wait()
        results.append(store.redeem(token))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1


def test_the_cookie_key_is_made_once_and_kept(db_engine):
    first = AdminSessionStore(db_engine).cookie_key()
    assert len(first) == 32
    assert AdminSessionStore(db_engine).cookie_key() == first


# -- /quantri through the conversation core ------------------------------------------------


def core(engine, store: AdminSessionStore) -> Conversation:
    return make_core(engine, public_url="https://htx.example", admin_sessions=store)


def say(conversation: Conversation, user: str, text: str) -> str:
    incoming = Incoming(channel="telegram", chat_id=user, user_id=user, text=text)
    return "\n".join(r.text for r in asyncio.run(conversation.handle(incoming)))


def link_token(text: str) -> str:
    (url,) = [w for w in text.split() if w.startswith("https://")]
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("htx.example", "/admin/login")
    return parse_qs(parts.query)["token"][0]


def test_quantri_gives_staff_a_link_and_members_nothing(sqlite_engine):
    store = AdminSessionStore(sqlite_engine)
    chat = core(sqlite_engine, store)
    assert "Mình chưa hiểu lệnh" in say(chat, "10", "/quantri")
    _member(sqlite_engine, "11", "trainer")
    assert "Mình chưa hiểu lệnh" in say(chat, "11", "/quantri")
    _member(sqlite_engine, "12", "staff")
    token = link_token(say(chat, "12", "/quantri"))
    staff = store.redeem(token)
    assert staff is not None and staff.role == "staff"


# -- the web side: cookie, CSRF, refusals --------------------------------------------------


def admin_app(engine, store: AdminSessionStore, public_url: str = "http://testserver") -> Starlette:
    board = Dashboard(engine=engine, kb=KB, options=load_profile_options(), clock=store.clock)
    return dashboard_app(board, public_url)


@pytest.fixture
def web(sqlite_engine):
    clock = Clock()
    store = AdminSessionStore(sqlite_engine, clock)
    with TestClient(admin_app(sqlite_engine, store), follow_redirects=False) as client:
        yield client, store, clock, sqlite_engine


def log_in(client, store, member_id: int):
    response = client.get("/admin/login", params={"token": store.issue_token(member_id)})
    assert response.status_code == 200 and 'content="0;url=/admin"' in response.text
    return response


def csrf_of(page: str) -> str:
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_login_sets_a_strict_cookie_and_shows_the_role(web):
    client, store, _clock, engine = web
    response = log_in(client, store, _member(engine, "20", "admin"))
    cookie = response.headers["set-cookie"]
    for part in ("HttpOnly", "SameSite=strict", "Path=/admin", "Max-Age=43200"):
        assert part.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # http base URL
    assert response.headers["cache-control"] == "no-store"
    page = client.get("/admin")
    assert page.status_code == 200
    assert "vai trò quản trị viên (admin)" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "form-action 'self'" in page.headers["content-security-policy"]


def test_cookies_are_secure_behind_https(sqlite_engine):
    store = AdminSessionStore(sqlite_engine)
    with TestClient(
        admin_app(sqlite_engine, store, "https://htx.example"), follow_redirects=False
    ) as client:
        response = log_in(client, store, _member(sqlite_engine, "21", "staff"))
    assert "secure" in response.headers["set-cookie"].lower()


def test_bad_tokens_get_403_and_no_cookie(web):
    client, store, clock, engine = web
    staff_id = _member(engine, "22", "staff")
    used = store.issue_token(staff_id)
    log_in_response = client.get("/admin/login", params={"token": used})
    assert log_in_response.status_code == 200
    client.cookies.clear()
    expired = store.issue_token(staff_id)
    clock.now += dt.timedelta(minutes=11)
    for params in ({"token": used}, {"token": expired}, {"token": "nope"}, {}):
        response = client.get("/admin/login", params=params)
        assert response.status_code == 403, params
        assert "set-cookie" not in response.headers
        assert "/quantri" in response.text
    assert client.get("/admin").status_code == 403


def test_forged_and_foreign_cookies_show_nothing(web, sqlite_engine):
    client, store, _clock, engine = web
    log_in(client, store, _member(engine, "23", "staff"))
    genuine = client.cookies[COOKIE]
    session_id, signature = genuine.split(".")
    other = AdminAuth(store, "http://testserver")
    other._key = b"another secret, another server!!"
    foreign = asyncio.run(other.cookie_value(session_id))
    for value in (f"{session_id}.{'0' * 64}", f"x{session_id}.{signature}", foreign, "junk", ""):
        client.cookies.clear()
        client.cookies.set(COOKIE, value, path="/admin")
        page = client.get("/admin")
        assert page.status_code == 403, value
        assert "vai trò" not in page.text and "csrf" not in page.text
    client.cookies.clear()
    client.cookies.set(COOKIE, genuine, path="/admin")
    assert client.get("/admin").status_code == 200


def test_revoked_and_demoted_sessions_show_nothing(web):
    client, store, _clock, engine = web
    log_in(client, store, _member(engine, "24", "staff"))
    assert client.get("/admin").status_code == 200
    cookie = client.cookies[COOKIE]
    MemberStore(engine).set_role("telegram", "24", "member")
    demoted = client.get("/admin")
    assert demoted.status_code == 403 and "vai trò" not in demoted.text
    MemberStore(engine).set_role("telegram", "24", "staff")  # the role back: the session works
    client.cookies.set(COOKIE, cookie, path="/admin")
    assert client.get("/admin").status_code == 200
    store.logout_all()  # coopbot users logout-all
    revoked = client.get("/admin")
    assert revoked.status_code == 403 and "/quantri" in revoked.text
    assert COOKIE in revoked.headers["set-cookie"]  # told to forget it


def test_logout_needs_the_sessions_csrf_token(web):
    client, store, _clock, engine = web
    log_in(client, store, _member(engine, "25", "staff"))
    token = csrf_of(client.get("/admin").text)
    assert len(token) == 64
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in ("", "csrf=", f"csrf={'0' * 64}", f"csrf={token[:-1]}"):
        assert client.post("/admin/logout", content=body, headers=form).status_code == 403
    as_json = client.post("/admin/logout", json={"csrf": token})
    assert as_json.status_code == 403
    assert client.get("/admin").status_code == 200  # still logged in
    # Another session's token is no good either.
    second = TestClient(client.app, follow_redirects=False)
    log_in(second, store, _member(engine, "26", "staff"))
    other = csrf_of(second.get("/admin").text)
    assert client.post("/admin/logout", data={"csrf": other}).status_code == 403
    done = client.post("/admin/logout", data={"csrf": token})
    assert done.status_code == 200 and "đăng xuất" in done.text
    assert client.get("/admin").status_code == 403
    assert second.get("/admin").status_code == 200
    # Without a session, no POST gets anywhere.
    client.cookies.clear()
    assert client.post("/admin/logout", data={"csrf": token}).status_code == 403
