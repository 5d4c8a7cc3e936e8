"""Training sessions in chat: /taphuan for members, /taphuan_tao for staff (role checked)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bot.answers import AnswerService
from bot.conversation import Conversation
from bot.profile import load_profile_options
from bot.sending import Senders
from bot.store.db import Member, OutboxMessage, TrainingSession
from bot.store.handovers import HandoverStore
from bot.store.members import MemberStore
from bot.store.messages import MessageLogStore
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore
from bot.store.training import TrainingStore
from bot.store.training_sessions import SessionDraft
from scheduler.deadlines import load_rules
from tests.unit.test_conversation import KB, SEARCH, payloads, say

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = dt.datetime(2027, 1, 5, 1, 0, tzinfo=dt.UTC)  # 08:00 in Hà Nội

FORM = """/taphuan_tao
Tiêu đề: Chuyển đổi số cho HTX
Bắt đầu: 15/01/2027 08:00
Kết thúc: 11:00
Địa điểm: Hội trường Liên minh HTX <tỉnh> & "khách"
Tỉnh: Ha Noi
Số chỗ: 30
Mô tả: Hướng dẫn kê khai thuế điện tử,
hoá đơn điện tử."""


@pytest.fixture
def store(sqlite_engine: Engine) -> TrainingStore:
    return TrainingStore(sqlite_engine, Outbox(sqlite_engine, lambda: NOW), lambda: NOW)


@pytest.fixture
def changed() -> list[int]:
    return []


def make_core(engine: Engine, **extra: Any) -> Conversation:
    extra.setdefault("answers", AnswerService(KB, SEARCH, None))
    return Conversation(
        kb=KB,
        members=MemberStore(engine),
        messages=MessageLogStore(engine),
        handovers=HandoverStore(engine),
        profile_options=load_profile_options(),
        senders=Senders(),
        deadline_rules=load_rules(),
        subscriptions=SubscriptionStore(engine),
        clock=lambda: NOW,
        **extra,
    )


@pytest.fixture
def core(sqlite_engine: Engine, store: TrainingStore, changed: list[int]) -> Conversation:
    async def record(member_id: int) -> None:
        changed.append(member_id)

    return make_core(sqlite_engine, training=store, on_reminders_changed=record)


def session(store: TrainingStore, day: int = 15, capacity: int = 10, **kw: Any) -> int:
    values: dict[str, Any] = {
        "title": f"Tập huấn ngày {day}",
        "starts_at": dt.datetime(2027, 1, day, 8, 0, tzinfo=VN),
        "ends_at": dt.datetime(2027, 1, day, 11, 0, tzinfo=VN),
        "place": "Hội trường",
        "capacity": capacity,
        **kw,
    }
    return store.create(SessionDraft.build(**values)).id


def member_id(engine: Engine, user: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(Member.id).where(Member.external_id == user))  # type: ignore[return-value]


def set_role(engine: Engine, user: str, role: str) -> None:
    with engine.begin() as connection:
        connection.execute(update(Member).where(Member.external_id == user).values(role=role))


def outbox(engine: Engine, **where: Any) -> list[Any]:
    query = select(OutboxMessage)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    with engine.connect() as connection:
        return list(connection.execute(query).all())


def test_no_sessions_says_so(core):
    (reply,) = say(core, "/taphuan")
    assert "chưa có buổi tập huấn nào" in reply.text
    assert reply.buttons == ()


def test_listing_follows_the_profile_and_shows_seats(core, store, sqlite_engine):
    hanoi = session(store, 15, province="ha_noi")
    everyone = session(store, 16, capacity=1)
    say(core, "/start", user="1")
    say(core, "/start", user="2")
    MemberStore(sqlite_engine).update_profile(member_id(sqlite_engine, "2"), province="da_nang")
    store.register(everyone, member_id(sqlite_engine, "2"))

    (unset,) = say(core, "/taphuan", user="1")
    assert "1. Tập huấn ngày 15" in unset.text and "2. Tập huấn ngày 16" in unset.text
    assert "08:00 Thứ Sáu 15/01/2027" in unset.text
    assert payloads(unset) == [f"th:r:{hanoi}", f"th:v:{everyone}"]  # the second is full
    assert "Đã hết chỗ" in unset.text

    (danang,) = say(core, "/taphuan", user="2")
    assert "Tập huấn ngày 15" not in danang.text
    assert "✅ Bạn đã đăng ký" in danang.text
    assert payloads(danang) == [f"th:u:{everyone}"]


def test_register_unregister_and_every_refusal(core, store, sqlite_engine):
    first = session(store, 15, capacity=1)
    overlapping = session(
        store,
        15,
        starts_at=dt.datetime(2027, 1, 15, 10, 0, tzinfo=VN),
        ends_at=dt.datetime(2027, 1, 15, 12, 0, tzinfo=VN),
    )
    (ok,) = say(core, payload=f"th:r:{first}", user="1")
    assert ok.text.startswith("✅ Bạn đã đăng ký thành công")
    assert payloads(ok) == [f"th:u:{first}"]
    mine = member_id(sqlite_engine, "1")
    assert {r.slot for r in outbox(sqlite_engine, member_id=mine, kind="session")} == {"1d", "1h"}

    (again,) = say(core, payload=f"th:r:{first}", user="1")
    assert again.text == "Bạn đã đăng ký buổi này rồi."
    (full,) = say(core, payload=f"th:r:{first}", user="2")
    assert "vừa hết chỗ" in full.text
    (clash,) = say(core, payload=f"th:r:{overlapping}", user="1")
    assert "trùng giờ" in clash.text and payloads(clash) == [f"th:u:{first}"]

    (gone,) = say(core, payload=f"th:u:{first}", user="1")
    assert gone.text.startswith("Đã huỷ đăng ký buổi “Tập huấn ngày 15”")
    assert {r.status for r in outbox(sqlite_engine, member_id=mine, kind="session")} == {"dropped"}
    (not_mine,) = say(core, payload=f"th:u:{first}", user="1")
    assert not_mine.text == "Bạn chưa đăng ký buổi này."
    (now_free,) = say(core, payload=f"th:r:{first}", user="2")
    assert now_free.text.startswith("✅")

    store.cancel(overlapping)
    (closed,) = say(core, payload=f"th:r:{overlapping}", user="3")
    assert "không đăng ký được nữa" in closed.text


def test_details_offer_the_right_seat_button(core, store, sqlite_engine):
    target = session(store, province="ha_noi", capacity=1)
    (before,) = say(core, payload=f"th:v:{target}", user="1")
    assert before.text.startswith("📅 Tập huấn ngày 15\n🕗 08:00 Thứ Sáu 15/01/2027")
    assert "Dành cho: Hà Nội" in before.text and "Còn 1/1 chỗ." in before.text
    assert payloads(before) == [f"th:r:{target}"]

    say(core, payload=f"th:r:{target}", user="1")
    (mine,) = say(core, payload=f"th:v:{target}", user="1")
    assert "Còn 0/1 chỗ." in mine.text and payloads(mine) == [f"th:u:{target}"]
    (full,) = say(core, payload=f"th:v:{target}", user="2")
    assert payloads(full) == []


@pytest.mark.parametrize("payload", ["th:r:abc", "th:r:999", "th:q:1", "th:", "th:r:1:2"])
def test_odd_payloads_are_stale_choices(core, store, payload):
    session(store)
    (reply,) = say(core, payload=payload)
    assert reply.notice and "không còn hiệu lực" in reply.text


def test_a_session_for_another_province_cannot_be_taken(core, store, sqlite_engine):
    hanoi = session(store, province="ha_noi")
    say(core, "/start", user="1")
    MemberStore(sqlite_engine).update_profile(member_id(sqlite_engine, "1"), province="hue")
    (reply,) = say(core, payload=f"th:r:{hanoi}", user="1")
    assert "khác với hồ sơ của bạn" in reply.text
    assert store.get(hanoi).registered == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("role", ["member", "trainer"])
def test_taphuan_tao_is_unknown_to_non_staff(core, sqlite_engine, role):
    say(core, "/start", user="5")
    set_role(sqlite_engine, "5", role)
    (reply,) = say(core, FORM, user="5")
    assert reply.text == "Mình chưa hiểu lệnh /taphuan_tao. Gõ /help để xem các lệnh."
    with sqlite_engine.connect() as connection:
        assert connection.execute(select(TrainingSession)).all() == []


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_create_a_session_from_the_form(core, store, sqlite_engine, role):
    say(core, "/start", user="9")
    set_role(sqlite_engine, "9", role)
    (template,) = say(core, "/taphuan_tao", user="9")
    assert "Tiêu đề:" in template.text and "Số chỗ:" in template.text

    (created,) = say(core, FORM, user="9")
    assert created.text.startswith("✅ Đã tạo buổi tập huấn #")
    (info,) = store.upcoming()
    assert info.starts_at == dt.datetime(2027, 1, 15, 1, 0, tzinfo=dt.UTC)
    assert info.ends_at == dt.datetime(2027, 1, 15, 4, 0, tzinfo=dt.UTC)
    assert info.province == "ha_noi" and info.capacity == 30
    assert info.place == 'Hội trường Liên minh HTX <tỉnh> & "khách"'
    assert info.description == "Hướng dẫn kê khai thuế điện tử,\nhoá đơn điện tử."
    assert "Dành cho: Hà Nội" in created.text
    assert payloads(created) == [f"th:x:{info.id}"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("Bắt đầu: 15/01/2027 08:00", "Bắt đầu: 32/01/2027 08:00"), "Thời gian không hợp lệ"),
        (("Tiêu đề: Chuyển đổi số cho HTX\n", ""), "Còn thiếu: Tiêu đề"),
        (("Kết thúc: 11:00", "Kết thúc: 07:00"), "giờ kết thúc phải sau giờ bắt đầu"),
        (("Tỉnh: Ha Noi", "Tỉnh: Atlantis"), "Tỉnh không có trong danh sách"),
        (("Số chỗ: 30", "Số chỗ: ba mươi"), "Số chỗ phải là một số"),
        (("15/01/2027 08:00", "15/01/2020 08:00"), "đã qua"),
    ],
)
def test_a_bad_form_is_explained_and_creates_nothing(core, store, sqlite_engine, change, message):
    say(core, "/start", user="9")
    set_role(sqlite_engine, "9", "staff")
    (reply,) = say(core, FORM.replace(*change), user="9")
    assert message in reply.text and "Gõ /taphuan_tao để xem mẫu." in reply.text
    assert store.all() == []


def test_the_form_attaches_entries_and_refuses_unknown_ones(core, store, sqlite_engine):
    say(core, "/start", user="9")
    set_role(sqlite_engine, "9", "staff")
    form = f"{FORM}\nHỏi đáp: han_khai_thue_quy, HOA_DON_DIEN_TU han_khai_thue_quy"
    (created,) = say(core, form, user="9")
    (info,) = store.upcoming()
    assert info.entries == ("han_khai_thue_quy", "hoa_don_dien_tu")
    assert info.description == "Hướng dẫn kê khai thuế điện tử,\nhoá đơn điện tử."
    assert "📚 Gửi người đăng ký 1 giờ sau buổi học:" in created.text
    assert f"• {KB.get('hoa_don_dien_tu').title}" in created.text

    (refused,) = say(core, f"{FORM}\nHỏi đáp: han_khai_thue_quy, khong_co_muc", user="9")
    assert "Không có mục hỏi đáp mang mã: khong_co_muc." in refused.text
    assert len(store.all()) == 1


def test_staff_cancel_tells_registered_members_and_members_cannot(core, store, sqlite_engine):
    target = session(store)
    for user in ("1", "2"):
        say(core, payload=f"th:r:{target}", user=user)
    (refused,) = say(core, payload=f"th:x:{target}", user="1")
    assert refused.notice and store.get(target).status == "scheduled"  # type: ignore[union-attr]

    say(core, "/start", user="9")
    set_role(sqlite_engine, "9", "staff")
    (done,) = say(core, payload=f"th:x:{target}", user="9")
    assert done.text == f"Đã huỷ buổi #{target}; 2 người đã đăng ký sẽ nhận được thông báo."
    rows = outbox(sqlite_engine, kind="session_change")
    assert sorted((r.member_id, r.slot) for r in rows) == sorted(
        (member_id(sqlite_engine, u), "cancelled") for u in ("1", "2")
    )
    (twice,) = say(core, payload=f"th:x:{target}", user="9")
    assert "đã bị huỷ từ trước" in twice.text


def test_reminder_and_profile_changes_notify_the_reminder_service(core, sqlite_engine, changed):
    say(core, "/start", user="7")
    me = member_id(sqlite_engine, "7")
    say(core, payload="nh:yes", user="7")
    say(core, payload="hs:v:monthly", user="7")
    say(core, payload="nh:no", user="7")  # no change of subscriptions: no call
    assert changed == [me, me]


def test_menu_buttons_for_reminder_messages_work(core):
    (nhacnho,) = say(core, payload="cmd:nhacnho")
    assert "Nhắc hạn nộp" in nhacnho.text
    (taphuan,) = say(core, payload="cmd:taphuan")
    assert "tập huấn" in taphuan.text


def test_taphuan_without_the_feature_says_it_is_off(sqlite_engine):
    (reply,) = say(make_core(sqlite_engine), "/taphuan")
    assert reply.text == "Tính năng tập huấn chưa được bật trên hệ thống này."


def test_a_failing_reminder_planner_does_not_break_the_reply(sqlite_engine, store, caplog):
    async def broken(member_id: int) -> None:
        raise RuntimeError(f"planner down for {member_id}")

    core = make_core(sqlite_engine, training=store, on_reminders_changed=broken)
    say(core, "/start", user="7")
    (reply,) = say(core, payload="nh:yes", user="7")
    assert reply.text.startswith("Đã bật nhắc hạn.") and reply.edit
    assert "planning reminders after a change failed" in caplog.text
    assert SubscriptionStore(sqlite_engine).rules(member_id(sqlite_engine, "7"))
