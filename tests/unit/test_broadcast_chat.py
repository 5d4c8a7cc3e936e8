"""Composing, sending, following and stopping broadcasts in chat; only staff and admins may."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.store.broadcasts import BroadcastStore
from bot.store.db import Broadcast, OutboxMessage
from bot.store.members import ROLES, MemberStore
from bot.store.outbox import Outbox
from tests.unit.test_broadcasts import people
from tests.unit.test_conversation import payloads, say
from tests.unit.test_roles import UNKNOWN, set_role
from tests.unit.test_training_chat import NOW, make_core

TEXT = "Lớp tập huấn kê khai thuế điện tử ngày 15/01.\nGõ /taphuan để đăng ký <ngay>!"


@pytest.fixture
def core(sqlite_engine: Engine) -> Any:
    store = BroadcastStore(sqlite_engine, Outbox(sqlite_engine, lambda: NOW), lambda: NOW)
    return make_core(sqlite_engine, broadcasts=store)


def press(core: Any, payload: str, user: str = "staff") -> Any:
    (reply,) = say(core, payload=payload, user=user)
    return reply


def broadcast_rows(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(Broadcast)).all())


def outbox_count(engine: Engine, status: str | None = None) -> int:
    query = select(OutboxMessage).where(OutboxMessage.kind == "broadcast")
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    with engine.connect() as connection:
        return len(connection.execute(query).all())


def test_compose_narrow_preview_send_follow_and_stop(core, sqlite_engine):
    people(sqlite_engine)
    (menu,) = say(core, f"/thongbao {TEXT}", user="staff")
    (row,) = broadcast_rows(sqlite_engine)
    assert row.status == "draft" and row.text == TEXT
    assert f"Bản nháp thông báo #{row.id}" in menu.text
    assert "Nhóm nhận: mọi thành viên (6 người)" in menu.text

    provinces = press(core, f"tb:p:{row.id}")
    assert provinces.edit and f"tb:ps:{row.id}:ha_noi" in payloads(provinces)
    assert f"tb:p:{row.id}:1" in payloads(provinces)  # a second page of provinces
    narrowed = press(core, f"tb:ps:{row.id}:ha_noi")
    assert "Nhóm nhận: tỉnh Hà Nội (2 người)" in narrowed.text
    both = press(core, f"tb:ps:{row.id}:hue")
    assert "tỉnh Hà Nội, Huế (4 người)" in both.text
    typed = press(core, f"tb:ts:{row.id}:htx_nong_nghiep")
    assert "loại hình HTX nông nghiệp (2 người)" in typed.text

    preview = press(core, f"tb:v:{row.id}")
    assert "Số người nhận: 2" in preview.text and TEXT in preview.text
    assert payloads(preview)[0] == f"tb:go:{row.id}"
    sent = press(core, f"tb:go:{row.id}")
    assert sent.text.startswith(f"🚀 Đang gửi thông báo #{row.id} tới 2 người")
    assert outbox_count(sqlite_engine, "pending") == 2
    again = press(core, f"tb:go:{row.id}")
    assert again.notice and outbox_count(sqlite_engine) == 2  # a double press sends nothing

    (status,) = say(core, "/thongbao_trangthai", user="staff")
    assert f"📊 Thông báo #{row.id}" in status.text and "0/2" in status.text
    assert payloads(status) == [f"tb:st:{row.id}", f"tb:x:{row.id}"]
    stopped = press(core, f"tb:x:{row.id}")
    assert "2 tin chưa gửi sẽ không gửi" in stopped.text
    assert outbox_count(sqlite_engine, "dropped") == 2
    (after,) = say(core, f"/thongbao_trangthai {row.id}", user="staff")
    assert "đã huỷ" in after.text and payloads(after) == [f"tb:st:{row.id}"]


def test_drafts_can_be_discarded_and_reset(core, sqlite_engine):
    people(sqlite_engine)
    say(core, "/thongbao Bản thử", user="staff")
    (row,) = broadcast_rows(sqlite_engine)
    press(core, f"tb:r:{row.id}:staff")
    press(core, f"tb:s:{row.id}")
    reset = press(core, f"tb:clr:{row.id}")
    assert "Nhóm nhận: mọi thành viên (6 người)" in reset.text
    gone = press(core, f"tb:x:{row.id}")
    assert gone.text == f"Đã bỏ bản nháp #{row.id}."
    assert broadcast_rows(sqlite_engine)[0].status == "cancelled"
    assert press(core, f"tb:go:{row.id}").notice and outbox_count(sqlite_engine) == 0


@pytest.mark.parametrize(
    "payload", ["tb:go:abc", "tb:go:999", "tb:ps:1:atlantis", "tb:zz:1", "tb:", "tb:r:1:boss"]
)
def test_odd_payloads_are_stale(core, sqlite_engine, payload):
    people(sqlite_engine)
    say(core, "/thongbao Bản thử", user="staff")
    reply = press(core, payload)
    assert reply.notice and "không còn hiệu lực" in reply.text


def test_empty_thongbao_explains_how(core, sqlite_engine):
    people(sqlite_engine)
    (reply,) = say(core, "/thongbao", user="staff")
    assert reply.text.startswith("Soạn thông báo: gõ /thongbao")
    assert broadcast_rows(sqlite_engine) == []


@pytest.mark.parametrize("role", ROLES)
def test_broadcast_commands_matrix(core, sqlite_engine, role):
    people(sqlite_engine)
    say(core, "/thongbao Bản nháp của cán bộ", user="staff")
    (draft,) = broadcast_rows(sqlite_engine)
    say(core, "/start", user="x")
    set_role(sqlite_engine, "x", role)
    allowed = role in ("staff", "admin")

    (compose,) = say(core, "/thongbao Tin giả mạo", user="x")
    (status,) = say(core, "/thongbao_trangthai", user="x")
    go = press(core, f"tb:go:{draft.id}", user="x")

    if allowed:
        assert compose.text.startswith("📝 Bản nháp thông báo")
        assert len(broadcast_rows(sqlite_engine)) == 2
        assert go.text.startswith("🚀 Đang gửi")
    else:
        assert compose.text == UNKNOWN.format(name="thongbao")
        assert status.text == UNKNOWN.format(name="thongbao_trangthai")
        assert go.notice and "không còn hiệu lực" in go.text
        assert len(broadcast_rows(sqlite_engine)) == 1 and outbox_count(sqlite_engine) == 0
    assert MemberStore(sqlite_engine).find("telegram", "x").role == role  # type: ignore[union-attr]
