"""The entries attached to a training session reach its members an hour after it, once."""

from __future__ import annotations

import asyncio
import functools

import pytest

from bot.answers.links import entry_links
from bot.sending import Senders
from bot.store.training_sessions import SessionDraft, TrainingError, entry_ids
from knowledge.base import load_knowledge_base
from scheduler.reminders import ReminderService
from tests.unit.test_reminders import RULES, Clock, Recorder, make_member, outbox_rows, vn

KB = load_knowledge_base()
BASE = "https://hoc.lienminhhtx.vn"
BOT = "HtxTroLyBot"
ENTRIES = ("han_khai_thue_quy", "hoa_don_dien_tu")
LINKS = functools.partial(entry_links, BASE, telegram_username=BOT)


def service_for(engine, clock: Clock, recorder: Recorder) -> ReminderService:
    senders = Senders()
    senders.register("telegram", recorder)
    return ReminderService(engine, senders, RULES, clock=clock, per_chat=0.0, kb=KB, links=LINKS)


def session(service: ReminderService, day: int, **kw) -> int:
    values = {
        "title": f"Thuế điện tử ngày {day}",
        "starts_at": vn(2027, 3, day, 8, 0),
        "ends_at": vn(2027, 3, day, 11, 0),
        "place": "Hội trường",
        "capacity": 10,
        **kw,
    }
    return service.training.create(SessionDraft.build(**values)).id


def run_once(service: ReminderService) -> None:
    """One planning pass and one delivery pass, as the jobs and the worker do them."""
    asyncio.run(service.plan_after_sessions())
    asyncio.run(service.deliver_due())


def test_the_entries_go_to_the_members_holding_a_seat_once(sqlite_engine):
    clock = Clock(vn(2027, 3, 1, 9, 0))
    recorder = Recorder()
    service = service_for(sqlite_engine, clock, recorder)
    store = service.training
    a, b, c = (make_member(sqlite_engine, user) for user in ("1", "2", "3"))
    with_entries = session(service, 10, entries=ENTRIES)
    cancelled = session(service, 11, entries=ENTRIES)
    without = session(service, 12)
    for target in (with_entries, cancelled, without):
        for member in (a, b, c):
            store.register(target, member)
    store.unregister(with_entries, c)
    store.cancel(cancelled)
    asyncio.run(service.deliver_due())  # the cancellation messages
    recorder.sent.clear()

    clock.now = vn(2027, 3, 10, 11, 59)  # not yet an hour after the end
    run_once(service)
    assert outbox_rows(sqlite_engine, kind="session_after") == []
    clock.now = vn(2027, 3, 10, 12, 0, 30)
    run_once(service)
    assert sorted(chat for chat, _ in recorder.sent) == ["1", "2"]
    (text,) = recorder.texts("1")
    assert "Thuế điện tử ngày 10" in text
    for entry_id in ENTRIES:
        assert KB.get(entry_id).title in text
        assert f"🌐 {BASE}/faq/{entry_id}\n" in text  # no trainer code
        assert f"https://t.me/{BOT}?start=faq-{entry_id}\n" in text
    assert "?t=" not in text
    (_, reply) = recorder.sent[0]
    assert [b.payload for b in reply.buttons] == [f"faq:{e}" for e in ENTRIES]

    # Planned and delivered again, after an edit, after a restart: nothing more.
    run_once(service)
    store.update(with_entries, entries=("von_gop_toi_da",))
    clock.now = vn(2027, 3, 11, 8, 0)
    run_once(service)
    restarted = service_for(sqlite_engine, clock, recorder)
    asyncio.run(restarted.delivery.recover())
    run_once(restarted)
    clock.now = vn(2027, 3, 12, 12, 0, 30)  # the session without entries ended an hour ago
    run_once(restarted)
    after = [chat for chat, reply in recorder.sent if reply.text.startswith("📚 Cảm ơn")]
    assert sorted(after) == ["1", "2"]  # the others were the third session's reminders
    rows = outbox_rows(sqlite_engine, kind="session_after")
    assert sorted((r.member_id, r.ref, r.status) for r in rows) == [
        (a, str(with_entries), "sent"),
        (b, str(with_entries), "sent"),
    ]


def test_a_session_cancelled_after_planning_sends_nothing(sqlite_engine):
    clock = Clock(vn(2027, 3, 1, 9, 0))
    recorder = Recorder()
    service = service_for(sqlite_engine, clock, recorder)
    target = session(service, 10, entries=ENTRIES)
    service.training.register(target, make_member(sqlite_engine, "1"))
    clock.now = vn(2027, 3, 10, 12, 5)
    assert asyncio.run(service.plan_after_sessions()) == 1
    service.training.cancel(target)  # late, but before the worker got to it
    asyncio.run(service.deliver_due())
    assert all("Cảm ơn bạn đã tham gia" not in text for text in recorder.texts("1"))
    (row,) = outbox_rows(sqlite_engine, kind="session_after")
    assert row.status == "dropped" and row.error == "the session was cancelled"


def test_after_a_long_downtime_old_sessions_are_not_planned(sqlite_engine):
    clock = Clock(vn(2027, 3, 1, 9, 0))
    recorder = Recorder()
    service = service_for(sqlite_engine, clock, recorder)
    target = session(service, 10, entries=ENTRIES)
    service.training.register(target, make_member(sqlite_engine, "1"))
    clock.now = vn(2027, 3, 12, 12, 1)  # more than two days after the hour
    run_once(service)
    assert outbox_rows(sqlite_engine, kind="session_after") == []
    assert recorder.sent == []


def test_without_links_the_message_lists_titles_and_buttons(sqlite_engine):
    clock = Clock(vn(2027, 3, 1, 9, 0))
    recorder = Recorder()
    senders = Senders()
    senders.register("telegram", recorder)
    service = ReminderService(sqlite_engine, senders, RULES, clock=clock, per_chat=0.0)
    target = session(service, 10, entries=ENTRIES[:1])
    service.training.register(target, make_member(sqlite_engine, "1"))
    clock.now = vn(2027, 3, 10, 12, 1)
    run_once(service)
    ((_, reply),) = recorder.sent
    assert KB.get(ENTRIES[0]).title in reply.text and "http" not in reply.text
    assert [b.payload for b in reply.buttons] == [f"faq:{ENTRIES[0]}"]


def test_entry_ids_are_checked_against_the_knowledge_base():
    assert entry_ids(" Han_khai_thue_quy,, hoa_don_dien_tu;han_khai_thue_quy ", KB) == ENTRIES
    assert entry_ids("", KB) == ()
    with pytest.raises(TrainingError, match="khong_co, cung_khong"):
        entry_ids("han_khai_thue_quy khong_co cung_khong", KB)
    with pytest.raises(TrainingError, match="tối đa 10"):
        entry_ids(",".join(e.id for e in list(KB)[:11]), KB)
    with pytest.raises(TrainingError, match="mục hỏi đáp"):
        SessionDraft.build(
            title="Buổi học",
            starts_at=vn(2027, 3, 10, 8, 0),
            ends_at=vn(2027, 3, 10, 9, 0),
            place="Hội trường",
            capacity=5,
            entries=("<script>",),
        )
