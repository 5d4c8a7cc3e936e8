"""Migrations and repositories on a real database: SQLite, and PostgreSQL where a server answers."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from bot.store.db import (
    Base,
    Handover,
    Member,
    MessageLog,
    current_revision,
    downgrade_db,
    upgrade_db,
)
from bot.store.handovers import HandoverStore
from bot.store.members import MemberStore
from bot.store.messages import MessageLogStore

TABLES = {
    "members",
    "share_opens",
    "admin_login_tokens",
    "admin_sessions",
    "admin_secrets",
    "messages",
    "handovers",
    "review_questions",
    "inbox_events",
    "reminder_subscriptions",
    "training_sessions",
    "training_registrations",
    "outbox",
    "scheduler_state",
    "apscheduler_jobs",
    "broadcasts",
    "nlu_models",
    "usage_days",
    "usage_days_settled",
    "broadcast_tallies",
    "entry_days",
}


def _log(store: MessageLogStore, member_id: int, text: str = "htx can bao nhieu tv") -> int:
    return store.record(
        member_id=member_id,
        channel="telegram",
        text=text,
        kind="entry",
        intent="so_thanh_vien_toi_thieu",
        confidence=0.9,
        entry_id="so_thanh_vien_toi_thieu",
        fallback=False,
        latency_ms=12.5,
    )


def test_migrations_match_the_models_and_go_both_ways(db_engine):
    assert current_revision(db_engine) == "0011"
    assert set(inspect(db_engine).get_table_names()) >= TABLES
    with db_engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    downgrade_db(db_engine)
    assert current_revision(db_engine) is None
    assert not TABLES & set(inspect(db_engine).get_table_names())
    upgrade_db(db_engine)
    upgrade_db(db_engine)  # idempotent: start-up runs it every time
    assert current_revision(db_engine) == "0011"


def test_member_is_created_once_and_refreshed(db_engine):
    members = MemberStore(db_engine)
    first = members.touch("telegram", "42", "42", "Nguyễn <b>Văn</b> & Co 🌾")
    again = members.touch("telegram", "42", "42", "Tên mới")
    other_channel = members.touch("zalo", "42", "z42", None)
    assert first.id == again.id != other_channel.id
    assert first.display_name == "Nguyễn <b>Văn</b> & Co 🌾"  # stored as typed
    assert again.display_name == "Tên mới"
    assert (again.role, again.consent_reminders, again.active) == ("member", False, True)
    assert members.find("telegram", "42") == members.get(first.id)
    assert members.find("telegram", "43") is None


def test_concurrent_first_messages_make_one_member(db_engine):
    members = MemberStore(db_engine)
    ids: list[int] = []
    barrier = threading.Barrier(8)

    def first_contact() -> None:
        barrier.wait()
        ids.append(members.touch("telegram", "777", "777", "Ba").id)

    threads = [threading.Thread(target=first_contact) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    with Session(db_engine) as session:
        assert len(session.scalars(select(Member)).all()) == 1


def test_profile_update_accepts_only_profile_fields(db_engine):
    members = MemberStore(db_engine)
    member = members.touch("web", "s" * 20, "s" * 20, None)
    updated = members.update_profile(member.id, province="ha_noi", vat_period="quarterly")
    assert (updated.province, updated.vat_period, updated.coop_type) == (
        "ha_noi",
        "quarterly",
        None,
    )
    with pytest.raises(ValueError, match="not profile fields"):
        members.update_profile(member.id, role="admin")  # roles are not self-service
    with pytest.raises(LookupError):
        members.update_profile(999_999, province="ha_noi")


def test_feedback_only_on_own_messages(db_engine):
    members, log = MemberStore(db_engine), MessageLogStore(db_engine)
    alice = members.touch("telegram", "1", "1", "Alice")
    bob = members.touch("telegram", "2", "2", "Bob")
    message_id = _log(log, alice.id)
    assert not log.set_feedback(message_id, bob.id, "down")
    assert log.get(message_id).feedback is None
    assert log.set_feedback(message_id, alice.id, "up")
    assert log.get(message_id).feedback == "up"
    assert log.set_feedback(message_id, alice.id, "down")  # a member may change their mind
    assert log.get(message_id).feedback == "down"
    with pytest.raises(ValueError):
        log.set_feedback(message_id, alice.id, "meh")
    assert log.latest(alice.id).id == message_id
    assert log.latest(bob.id) is None


def test_handover_found_by_staff_post(db_engine):
    members, handovers = MemberStore(db_engine), HandoverStore(db_engine)
    member = members.touch("telegram", "5", "5", "Năm")
    opened = handovers.open(member.id, "Vay vốn quỹ hỗ trợ cần gì?")
    assert handovers.open_count(member.id) == 1
    handovers.attach_staff_post(opened.id, "-1001", "88")
    found = handovers.find_by_staff_post("-1001", "88")
    assert found is not None and found.member_id == member.id and found.status == "open"
    assert handovers.find_by_staff_post("-1001", "89") is None
    handovers.mark_answered(opened.id)
    assert handovers.open_count(member.id) == 0
    assert handovers.find_by_staff_post("-1001", "88").status == "answered"


def test_delete_removes_the_member_and_everything_linked(db_engine):
    members, log, handovers = (
        MemberStore(db_engine),
        MessageLogStore(db_engine),
        HandoverStore(db_engine),
    )
    gone = members.touch("telegram", "9", "9", "Chín")
    kept = members.touch("telegram", "10", "10", "Mười")
    _log(log, gone.id)
    _log(log, kept.id)
    handovers.open(gone.id, "câu hỏi")
    data = members.stored_data(gone.id)
    assert (data.questions, data.handovers, data.feedback_given) == (1, 1, 0)
    assert members.delete(gone.id)
    assert not members.delete(gone.id)
    assert members.get(gone.id) is None and members.stored_data(gone.id) is None
    with Session(db_engine) as session:
        assert session.scalars(select(MessageLog.member_id)).all() == [kept.id]
        assert session.scalars(select(Handover)).all() == []
