"""Roles: configured admins, /capquyen and `coopbot users`, the authorization matrix, opt-out."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bot.settings import Settings
from bot.store.db import Member, TrainingSession, create_db_engine, upgrade_db
from bot.store.members import ROLES, LastAdminError, MemberStore
from bot.store.outbox import Outbox
from bot.store.training import TrainingStore
from tests.processes import coopbot
from tests.unit.test_conversation import say
from tests.unit.test_training_chat import FORM, NOW, make_core, session

UNKNOWN = "Mình chưa hiểu lệnh /{name}. Gõ /help để xem các lệnh."


def role_of(engine: Engine, user: str) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(select(Member.role).where(Member.external_id == user))


def set_role(engine: Engine, user: str, role: str) -> None:
    with engine.begin() as connection:
        connection.execute(update(Member).where(Member.external_id == user).values(role=role))


@pytest.fixture
def store(sqlite_engine: Engine) -> TrainingStore:
    return TrainingStore(sqlite_engine, Outbox(sqlite_engine, lambda: NOW), lambda: NOW)


@pytest.fixture
def core(sqlite_engine: Engine, store: TrainingStore) -> Any:
    return make_core(sqlite_engine, training=store)


# -- the authorization matrix ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_taphuan_tao_matrix(core, sqlite_engine, role):
    say(core, "/start", user="5")
    set_role(sqlite_engine, "5", role)
    (reply,) = say(core, FORM, user="5")
    with sqlite_engine.connect() as connection:
        created = connection.execute(select(TrainingSession)).all()
    if role in ("staff", "admin"):
        assert reply.text.startswith("✅ Đã tạo buổi tập huấn #") and len(created) == 1
    else:
        assert reply.text == UNKNOWN.format(name="taphuan_tao") and created == []


@pytest.mark.parametrize("role", ROLES)
def test_capquyen_matrix(core, sqlite_engine, role):
    say(core, "/start", user="5")
    say(core, "/start", user="6")
    set_role(sqlite_engine, "5", role)
    (reply,) = say(core, "/capquyen telegram:6 staff", user="5")
    if role == "admin":
        assert reply.text.startswith("✅") and role_of(sqlite_engine, "6") == "staff"
    else:
        assert reply.text == UNKNOWN.format(name="capquyen")
        assert role_of(sqlite_engine, "6") == "member"
    (bare,) = say(core, "/capquyen", user="5")
    assert ("Cấp quyền:" in bare.text) is (role == "admin")


@pytest.mark.parametrize("role", ROLES)
def test_cancel_button_matrix(core, sqlite_engine, store, role):
    target = session(store)
    say(core, "/start", user="5")
    set_role(sqlite_engine, "5", role)
    (reply,) = say(core, payload=f"th:x:{target}", user="5")
    status = store.get(target).status  # type: ignore[union-attr]
    if role in ("staff", "admin"):
        assert reply.text.startswith(f"Đã huỷ buổi #{target}") and status == "cancelled"
    else:
        assert reply.notice and "không còn hiệu lực" in reply.text and status == "scheduled"


# -- granting -----------------------------------------------------------------------------------


def test_capquyen_lists_grants_by_vietnamese_name_and_revokes(core, sqlite_engine):
    say(core, "/start", user="1")
    set_role(sqlite_engine, "1", "admin")
    (granted,) = say(core, "/capquyen telegram:77 Cán bộ", user="1")
    assert granted.text == "✅ (chưa nhắn tin với bot) (telegram:77) giờ là cán bộ."
    (trainer,) = say(core, "/capquyen zalo:abc123 giang vien", user="1")
    assert "giờ là giảng viên" in trainer.text
    (listing,) = say(core, "/capquyen", user="1")
    lines = listing.text.split("Đang có quyền:")[1].strip().splitlines()
    assert lines == [
        "• quản trị viên: Lan (telegram:1)",
        "• cán bộ: (chưa nhắn tin) (telegram:77)",
        "• giảng viên: (chưa nhắn tin) (zalo:abc123)",
    ]
    say(core, "/capquyen telegram:77 member", user="1")
    assert role_of(sqlite_engine, "77") == "member"
    for bad in ("/capquyen 77 staff", "/capquyen telegram:77 boss", "/capquyen telegram:<b> staff"):
        (usage,) = say(core, bad, user="1")
        assert usage.text.startswith("Cấp quyền:")
    (last,) = say(core, "/capquyen telegram:1 member", user="1")
    assert "quản trị viên cuối cùng" in last.text and role_of(sqlite_engine, "1") == "admin"


def test_configured_admins_are_admins_on_first_contact_and_at_start(sqlite_engine):
    plain = MemberStore(sqlite_engine)
    early = plain.touch("telegram", "100", "100", "Đã nhắn trước")
    assert early.role == "member"
    configured = MemberStore(
        sqlite_engine, {"telegram": frozenset({"100", "200"}), "zalo": frozenset()}
    )
    assert configured.promote_admins() == 1
    assert role_of(sqlite_engine, "100") == "admin"
    assert configured.touch("telegram", "200", "200", None).role == "admin"
    assert configured.touch("zalo", "200", "200", None).role == "member"  # other channel
    assert configured.promote_admins() == 0


def test_the_last_admin_keeps_the_role(sqlite_engine):
    members = MemberStore(sqlite_engine)
    members.set_role("telegram", "1", "admin")
    with pytest.raises(LastAdminError):
        members.set_role("telegram", "1", "staff")
    members.set_role("zalo", "2", "admin")
    assert members.set_role("telegram", "1", "staff").role == "staff"


def test_admin_id_settings_are_checked():
    settings = Settings(_env_file=None, admin_telegram_ids=" 12, 34 ,", admin_zalo_ids="")  # type: ignore[call-arg]
    assert settings.admin_ids == {"telegram": frozenset({"12", "34"}), "zalo": frozenset()}
    with pytest.raises(ValidationError, match="ADMIN_TELEGRAM_IDS"):
        Settings(_env_file=None, admin_telegram_ids="12; DROP TABLE")  # type: ignore[call-arg]


# -- opting out of announcements ---------------------------------------------------------------


def test_tatthongbao_and_batthongbao(core, sqlite_engine):
    (off,) = say(core, "/tatthongbao", user="3")
    assert off.text.startswith("🔕 Đã tắt thông báo")
    with sqlite_engine.connect() as connection:
        assert connection.scalar(select(Member.consent_broadcasts)) is False
    (shown,) = say(core, "/toi", user="3")
    assert "• Nhận thông báo: không" in shown.text
    (on,) = say(core, "/batthongbao", user="3")
    assert on.text.startswith("🔔 Đã bật lại")
    with sqlite_engine.connect() as connection:
        assert connection.scalar(select(Member.consent_broadcasts)) is True


# -- the command line ---------------------------------------------------------------------------


def _users(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return coopbot(tmp_path, "users", *args)


def test_coopbot_users_grant_list_revoke(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade_db(engine)
    MemberStore(engine).touch("zalo", "abc", "abc", "Chị Lan")
    try:
        granted = _users(tmp_path, "grant", "zalo:abc", "staff")
        assert granted.returncode == 0, granted.stderr
        assert granted.stdout.strip() == "zalo:abc Chị Lan: cán bộ (staff)"
        assert _users(tmp_path, "grant", "telegram:42", "admin").returncode == 0
        listed = _users(tmp_path, "list").stdout.splitlines()
        assert listed == [
            "admin    telegram:42  (chưa nhắn tin với bot)",
            "staff    zalo:abc  Chị Lan",
        ]
        assert _users(tmp_path, "revoke", "zalo:abc").returncode == 0
        assert role_of(engine, "abc") == "member"
        last = _users(tmp_path, "revoke", "telegram:42")
        assert last.returncode == 1 and "quản trị viên cuối cùng" in last.stderr
        bad_role = _users(tmp_path, "grant", "zalo:abc", "boss")
        assert bad_role.returncode == 2 and "Vai trò không hợp lệ" in bad_role.stderr
        bad_person = _users(tmp_path, "grant", "abc", "staff")
        assert bad_person.returncode == 2 and "kênh:mã" in bad_person.stderr
    finally:
        engine.dispose()
