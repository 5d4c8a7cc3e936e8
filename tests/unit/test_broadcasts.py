"""Broadcasts: segments, the outbox of recipients, delivery rules, progress, the command line."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bot.profile import load_profile_options
from bot.sending import RateLimited, RecipientBlocked, SendError, Senders
from bot.store.broadcasts import MAX_TEXT, BroadcastError, BroadcastStore, Segment
from bot.store.db import Broadcast, Member, OutboxMessage, create_db_engine, upgrade_db
from bot.store.members import MemberStore
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore
from scheduler.reminders import ReminderService
from tests.processes import coopbot
from tests.unit.test_reminders import Clock, Recorder, vn

OPTIONS = load_profile_options()


def people(engine: Engine) -> dict[str, int]:
    """Eight members with different profiles; returns their ids by name."""
    members = MemberStore(engine)
    spec: dict[str, tuple[str, dict[str, Any]]] = {
        "hn_nn": ("telegram", {"province": "ha_noi", "coop_type": "htx_nong_nghiep"}),
        "hn_vt": ("zalo", {"province": "ha_noi", "coop_type": "htx_van_tai"}),
        "hue_nn": ("telegram", {"province": "hue", "coop_type": "htx_nong_nghiep"}),
        "blank": ("zalo", {}),
        "staff": ("telegram", {"province": "hue"}),
        "opted_out": ("telegram", {"province": "ha_noi"}),
        "inactive": ("zalo", {"province": "ha_noi"}),
        "subscribed": ("telegram", {"province": "can_tho"}),
    }
    ids = {}
    for name, (channel, profile) in spec.items():
        member = members.touch(channel, name, name, name)
        if profile:
            members.update_profile(member.id, **profile)
        ids[name] = member.id
    members.set_role("telegram", "staff", "staff")
    members.set_broadcasts(ids["opted_out"], False)
    members.set_active(ids["inactive"], False)
    SubscriptionStore(engine).replace(ids["subscribed"], ("cap_nhat_thong_tin",))
    return ids


def recipients(engine: Engine, broadcast_id: int) -> set[int]:
    with engine.connect() as connection:
        return set(
            connection.scalars(
                select(OutboxMessage.member_id).where(
                    OutboxMessage.kind == "broadcast", OutboxMessage.ref == str(broadcast_id)
                )
            )
        )


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {"hn_nn", "hn_vt", "hue_nn", "blank", "staff", "subscribed"}),
        (["province=Hà Nội"], {"hn_nn", "hn_vt"}),
        (["province=ha_noi,hue"], {"hn_nn", "hn_vt", "hue_nn", "staff"}),
        (["province=ha noi,hue", "coop_type=HTX nông nghiệp"], {"hn_nn", "hue_nn"}),
        (["role=staff"], {"staff"}),
        (["subscribed=yes"], {"subscribed"}),
        (["channel=zalo"], {"hn_vt", "blank"}),
        (["province=hue", "role=member"], {"hue_nn"}),
    ],
)
def test_segments_reach_the_right_members(db_engine, items, expected):
    ids = people(db_engine)
    store = BroadcastStore(db_engine, Outbox(db_engine))
    segment = Segment.parse(items, OPTIONS)
    assert store.count(segment) == len(expected)
    created = store.create("Thông báo thử", segment, created_by="test")
    assert created.recipients == len(expected)
    assert recipients(db_engine, created.id) == {ids[name] for name in expected}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["tinh=ha_noi"], "Không có tiêu chí 'tinh'"),
        (["province=Atlantis"], "Giá trị không có trong danh sách"),
        (["province"], "KHOÁ=GIÁ_TRỊ"),
        (["role=boss"], "Giá trị không có trong danh sách"),
        (["subscribed=maybe"], "subscribed nhận yes hoặc no"),
    ],
)
def test_bad_segments_are_explained(items, message):
    with pytest.raises(BroadcastError, match=message):
        Segment.parse(items, OPTIONS)


def test_segment_round_trip_and_description():
    segment = Segment.parse(["province=hue,ha_noi", "subscribed=yes"], OPTIONS)
    assert Segment.from_json(segment.to_json()) == segment
    assert segment.describe(OPTIONS) == "tỉnh Hà Nội, Huế; đã bật nhắc hạn"
    assert Segment().describe(OPTIONS) == "mọi thành viên"


def test_text_is_checked(sqlite_engine):
    store = BroadcastStore(sqlite_engine, Outbox(sqlite_engine))
    with pytest.raises(BroadcastError, match="trống"):
        store.create("   ", Segment())
    with pytest.raises(BroadcastError, match=f"tối đa {MAX_TEXT}"):
        store.create("a" * (MAX_TEXT + 1), Segment())
    with sqlite_engine.connect() as connection:
        assert connection.execute(select(Broadcast)).all() == []


def _service(engine: Engine, clock: Clock, recorder: Recorder, **kw: Any) -> ReminderService:
    senders = Senders()
    senders.register("telegram", recorder)
    senders.register("zalo", recorder)
    return ReminderService(engine, senders, (), clock=clock, per_chat=0.0, **kw)


def test_delivery_blocked_rate_limited_retried_and_failed(sqlite_engine):
    ids = people(sqlite_engine)
    clock = Clock(vn(2027, 1, 5, 9, 0))
    recorder = Recorder()
    recorder.failures["hn_vt"] = deque([RecipientBlocked("Forbidden: bot was blocked")])
    recorder.failures["hue_nn"] = deque([RateLimited(5)])
    recorder.failures["blank"] = deque([SendError("Bad Gateway")] * 3)
    recorder.failures["staff"] = deque([SendError("Bad Gateway")])
    service = _service(sqlite_engine, clock, recorder)
    store = BroadcastStore(sqlite_engine, Outbox(sqlite_engine, clock), clock)
    created = store.create("Họp trực tuyến <b>ngày mai</b> & đừng quên", Segment(), "test")
    MemberStore(sqlite_engine).set_broadcasts(ids["subscribed"], False)  # opts out meanwhile

    asyncio.run(service.deliver_due())
    (text,) = recorder.texts("hn_nn")
    assert text.startswith("📢 Thông báo từ Liên minh HTX:\n\nHọp trực tuyến <b>ngày mai</b>")
    assert text.endswith("Gõ /tatthongbao.")
    progress = store.progress(created.id)
    assert progress is not None
    assert progress.counts == {"sent": 1, "blocked": 1, "pending": 3, "dropped": 1}
    assert MemberStore(sqlite_engine).get(ids["hn_vt"]).active is False  # type: ignore[union-attr]

    for step in (6, 31, 61):  # 429 after 5 s; other failures after 30 s, then 60 s
        clock.now += dt.timedelta(seconds=step)
        asyncio.run(service.deliver_due())
    progress = store.progress(created.id)
    assert progress is not None
    assert progress.counts == {"sent": 3, "blocked": 1, "failed": 1, "dropped": 1}
    assert len(recorder.texts("hue_nn")) == len(recorder.texts("staff")) == 1
    with sqlite_engine.connect() as connection:
        failed = connection.execute(
            select(OutboxMessage.error, OutboxMessage.attempts).where(
                OutboxMessage.status == "failed"
            )
        ).one()
    assert failed == ("Bad Gateway", 3)
    assert progress.broadcast.status == "done"


def broadcast_to(engine: Engine, members: int, text: str) -> tuple[Clock, BroadcastStore, Any]:
    """``members`` Telegram members and a broadcast to all of them, on a settable clock."""
    store_members = MemberStore(engine)
    for i in range(members):
        store_members.touch("telegram", f"m{i}", f"m{i}", None)
    clock = Clock(vn(2027, 1, 5, 9, 0))
    store = BroadcastStore(engine, Outbox(engine, clock), clock)
    return clock, store, store.create(text, Segment(), "test")


def test_cancel_stops_the_rest_and_progress_reports_rate(sqlite_engine):
    clock, store, created = broadcast_to(sqlite_engine, 10, "Thông báo")
    outbox = Outbox(sqlite_engine, clock)
    for item in outbox.due(4):
        assert outbox.claim(item.id)
        outbox.finish(item.id, "sent")
    progress = store.progress(created.id)
    assert progress is not None
    assert (progress.done, progress.pending) == (4, 6)
    assert progress.rate == pytest.approx(4 / 60)
    assert progress.remaining_s == pytest.approx(6 / (4 / 60))
    assert store.cancel(created.id) == 6
    progress = store.progress(created.id)
    assert progress is not None and progress.broadcast.status == "cancelled"
    assert progress.counts == {"sent": 4, "dropped": 6}
    with pytest.raises(BroadcastError, match="đã kết thúc"):
        store.cancel(created.id)


def test_a_broadcast_in_flight_at_a_crash_is_sent_again_a_reminder_is_not(sqlite_engine):
    members = MemberStore(sqlite_engine)
    member = members.touch("telegram", "1", "1", None)
    clock = Clock(vn(2027, 1, 5, 9, 0))
    outbox = Outbox(sqlite_engine, clock)
    BroadcastStore(sqlite_engine, outbox, clock).create("Thông báo", Segment(), "test")
    outbox.add(
        [
            {
                "member_id": member.id,
                "kind": "deadline",
                "ref": "gtgt_thang",
                "occurrence": "2027-01-20",
                "slot": "7d",
                "send_at": clock.now,
                "expires_at": clock.now + dt.timedelta(days=1),
            }
        ]
    )
    for item in outbox.due():
        assert outbox.claim(item.id)
    assert outbox.recover_in_flight(resend=("broadcast",)) == 1
    with sqlite_engine.connect() as connection:
        states = dict(connection.execute(select(OutboxMessage.kind, OutboxMessage.status)).all())
    assert states == {"broadcast": "pending", "deadline": "unknown"}


# -- the command line ---------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return coopbot(tmp_path, "broadcast", *args)


def test_coopbot_broadcast_send_status_cancel(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade_db(engine)
    try:
        people(engine)
        text = tmp_path / "thongbao.txt"
        text.write_text("Lịch tập huấn mới đã có, gõ /taphuan để xem.", encoding="utf-8")

        dry = _cli(tmp_path, "send", "--text-file", str(text), "--segment", "province=Hà Nội",
                   "--dry-run")  # fmt: skip
        assert dry.returncode == 0, dry.stderr
        assert "Nhóm nhận: tỉnh Hà Nội" in dry.stdout and "Sẽ gửi tới 2 thành viên" in dry.stdout
        with engine.connect() as connection:
            assert connection.execute(select(Broadcast)).all() == []

        sent = _cli(tmp_path, "send", "--text-file", str(text), "--segment", "province=ha_noi")
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("Đã tạo thông báo #1 tới 2 thành viên (tỉnh Hà Nội)")
        status = _cli(tmp_path, "status")
        assert status.returncode == 0
        assert status.stdout.startswith("#1 [") and "0% 0/2" in status.stdout
        assert "chờ 2" in status.stdout and "đang gửi" in status.stdout
        listed = _cli(tmp_path, "list")
        assert "#1" in listed.stdout and "tỉnh Hà Nội" in listed.stdout
        cancelled = _cli(tmp_path, "cancel", "1")
        assert cancelled.returncode == 0 and "2 tin chưa gửi" in cancelled.stdout
        assert "đã huỷ" in _cli(tmp_path, "status", "1").stdout

        bad = _cli(tmp_path, "send", "--text-file", str(text), "--segment", "tinh=ha_noi")
        assert bad.returncode == 2 and "Không có tiêu chí" in bad.stderr
        missing = _cli(tmp_path, "status", "9")
        assert missing.returncode == 1 and "Không có thông báo #9." in missing.stderr
    finally:
        engine.dispose()


def test_members_role_filter_uses_the_stored_role(sqlite_engine):
    people(sqlite_engine)
    with sqlite_engine.begin() as connection:
        connection.execute(
            update(Member).where(Member.external_id == "blank").values(role="trainer")
        )
    store = BroadcastStore(sqlite_engine, Outbox(sqlite_engine))
    assert store.count(Segment(role=("trainer",))) == 1


def test_two_workers_never_send_the_same_row(db_engine):
    clock, store, created = broadcast_to(db_engine, 300, "Hai tiến trình gửi cùng lúc")
    recorders = [Recorder(), Recorder()]
    services = [_service(db_engine, clock, recorder, batch=40) for recorder in recorders]

    def work(service: ReminderService) -> None:
        while asyncio.run(service.deliver_due()):
            pass

    threads = [threading.Thread(target=work, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    chats = [[chat for chat, _ in recorder.sent] for recorder in recorders]
    assert all(chats), "both workers took part"
    assert len(chats[0]) + len(chats[1]) == 300
    assert set(chats[0]).isdisjoint(chats[1])
    assert set(chats[0]) | set(chats[1]) == {f"m{i}" for i in range(300)}
    progress = store.progress(created.id)
    assert progress is not None and progress.counts == {"sent": 300}


def test_a_resent_row_is_picked_by_the_next_worker(sqlite_engine):
    MemberStore(sqlite_engine).touch("telegram", "1", "1", None)
    clock = Clock(vn(2027, 1, 5, 9, 0))
    outbox = Outbox(sqlite_engine, clock)
    BroadcastStore(sqlite_engine, outbox, clock).create("Thông báo", Segment(), "test")
    (item,) = outbox.reserve("old-worker")
    assert outbox.claim(item.id, "old-worker")  # then the process was killed
    outbox.recover_in_flight(resend=("broadcast",))
    assert outbox.reserve("new-worker") == []  # its lease still runs: it may be alive
    clock.now += outbox.lease + dt.timedelta(seconds=1)
    outbox.recover_in_flight(resend=("broadcast",))
    assert [i.id for i in outbox.reserve("new-worker")] == [item.id]
    assert not outbox.claim(item.id, "old-worker")
    assert outbox.claim(item.id, "new-worker")
