"""The usage aggregates (``bot.store.stats``) and ``coopbot stats``, on SQLite and PostgreSQL.

The fixture is small and counted by hand: four members in two provinces (and one
without), three channels, questions over three Vietnam days with one a second
before the window, one at Vietnam's midnight that opens it, one at the midnight
that closes it and one whose UTC day differs from its Vietnam day.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import typer
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.cli.stats import sparkline, stats
from bot.clock import VIETNAM, utcnow
from bot.store import stats as st
from bot.store.db import (
    Broadcast,
    BroadcastTally,
    Handover,
    Member,
    MessageLog,
    OutboxMessage,
    UsageDay,
    UsageDaySettled,
    create_db_engine,
    upgrade_db,
)

UTC = dt.UTC
# [01/11/2026 00:00, 04/11/2026 00:00) Vietnam time; 01/11/2026 is a Sunday.
SINCE = dt.datetime(2026, 10, 31, 17, tzinfo=UTC)
UNTIL = dt.datetime(2026, 11, 3, 17, tzinfo=UTC)
NOV = {d: dt.date(2026, 11, d) for d in (1, 2, 3)}


def utc(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def seed(engine: Engine) -> dict[str, int]:
    """The hand-counted fixture; returns the members' ids by name."""
    members = {
        "m1": Member(channel="telegram", external_id="1", chat_id="1", province="ha_noi",
                     coop_type="htx_nong_nghiep", created_at=utc(10, 20, 3),
                     last_seen_at=utc(11, 3, 16, 30)),
        "m2": Member(channel="zalo", external_id="2", chat_id="2", province="ha_noi",
                     coop_type="htx_van_tai", created_at=utc(11, 2, 10),
                     last_seen_at=utc(11, 2, 5)),
        "m3": Member(channel="telegram", external_id="3", chat_id="3", province="can_tho",
                     coop_type="htx_nong_nghiep", created_at=utc(11, 3, 16, 59, 59),
                     last_seen_at=utc(11, 3, 10)),
        "m4": Member(channel="web", external_id="4", chat_id="4", active=False,
                     created_at=utc(11, 1, 3), last_seen_at=utc(10, 30, 1)),
        "m5": Member(channel="web", external_id="5", chat_id="5", created_at=utc(10, 31, 16),
                     last_seen_at=utc(11, 3, 17)),  # at the window's end: after it
    }  # fmt: skip
    with Session(engine) as session, session.begin():
        session.add_all(members.values())
        session.flush()
        ids = {name: m.id for name, m in members.items()}
        messages = [
            # (member, kind, entry, feedback, created_at): one row per logged message.
            ("m1", "entry", "thue_gtgt", "up", utc(10, 31, 16, 59, 59)),  # a second before
            ("m1", "entry", "thue_gtgt", "up", utc(10, 31, 17)),  # Vietnam midnight: 01/11
            ("m1", "suggested", "dang_ky", "down", utc(11, 1, 2)),
            ("m2", "fallback", None, None, utc(11, 1, 18)),  # 01/11 in UTC, 02/11 in Vietnam
            ("m2", "clause", None, None, utc(11, 2, 5)),
            ("m1", "browse", "dang_ky", "up", utc(11, 2, 3)),  # opened from the menu
            ("m3", "out_of_scope", None, None, utc(11, 3, 9)),
            ("m3", "entry", "thue_gtgt", None, utc(11, 3, 10)),
            ("m1", "entry", "thue_gtgt", None, utc(11, 3, 16, 30)),
            ("m2", "chitchat", None, "down", utc(11, 3, 17)),  # 04/11 00:00: after the window
        ]
        channels = {m.id: m.channel for m in members.values()}
        session.add_all(
            MessageLog(member_id=ids[name], channel=channels[ids[name]], text="?", kind=kind,
                       entry_id=entry, feedback=feedback, created_at=at,
                       fallback=kind in ("fallback", "out_of_scope"))
            for name, kind, entry, feedback, at in messages
        )  # fmt: skip
        session.add_all([
            Handover(member_id=ids["m2"], question="?", created_at=utc(11, 2, 6)),
            Handover(member_id=ids["m3"], question="?", created_at=utc(10, 30, 6)),
        ])  # fmt: skip
        session.add_all([
            Broadcast(id=1, text="a", segment="{}", recipients=3, created_at=utc(11, 2, 1)),
            Broadcast(id=2, text="b", segment="{}", recipients=1, created_at=utc(10, 1, 1)),
            Broadcast(id=3, text="c", segment="{}", recipients=0, created_at=utc(11, 3, 1)),
        ])  # fmt: skip
        outbox = [
            ("m1", "broadcast", "1", "sent", utc(11, 2, 1)),
            ("m2", "broadcast", "1", "blocked", utc(11, 2, 1)),
            ("m3", "broadcast", "1", "failed", utc(11, 2, 1)),
            ("m1", "broadcast", "2", "sent", utc(10, 1, 1)),
            ("m1", "deadline", "vat_monthly", "sent", utc(11, 2, 2)),
            ("m2", "deadline", "vat_monthly", "unknown", utc(11, 2, 2)),
            ("m3", "deadline", "vat_monthly", "dropped", utc(11, 2, 2)),
            ("m1", "deadline", "vat_monthly_old", "sent", utc(10, 20, 2)),  # before the window
            ("m1", "session", "5", "sent", utc(11, 3, 2)),
        ]
        session.add_all(
            OutboxMessage(member_id=ids[name], kind=kind, ref=ref, occurrence="o", slot="s",
                          status=status, send_at=at, expires_at=at + dt.timedelta(days=1))
            for name, kind, ref, status, at in outbox
        )  # fmt: skip
    return ids


@pytest.fixture
def seeded(db_engine: Engine) -> Engine:
    seed(db_engine)
    return db_engine


def test_questions_per_day_by_channel_in_vietnam_days(seeded: Engine) -> None:
    assert st.questions_per_day(seeded, SINCE, UNTIL) == (
        st.ChannelDay(NOV[1], "telegram", 2),
        st.ChannelDay(NOV[2], "zalo", 2),
        st.ChannelDay(NOV[3], "telegram", 3),
    )
    assert st.questions_per_day(seeded, SINCE, UNTIL, "can_tho") == (
        st.ChannelDay(NOV[3], "telegram", 2),
    )


def test_outcomes_handovers_and_feedback(seeded: Engine) -> None:
    result = st.outcomes(seeded, SINCE, UNTIL)
    assert result.counts == {
        "entry": 3, "suggested": 1, "clause": 1, "out_of_scope": 1, "fallback": 1,
        "chitchat": 0, "handover": 1,
    }  # fmt: skip
    assert (result.questions, result.thumbs_up, result.thumbs_down) == (7, 2, 1)
    assert result.share("entry") == pytest.approx(3 / 7)
    hanoi = st.outcomes(seeded, SINCE, UNTIL, "ha_noi")
    assert hanoi.counts == {
        "entry": 2, "suggested": 1, "clause": 1, "out_of_scope": 0, "fallback": 1,
        "chitchat": 0, "handover": 1,
    }  # fmt: skip
    assert (hanoi.thumbs_up, hanoi.thumbs_down) == (2, 1)
    empty = st.outcomes(seeded, SINCE, UNTIL, "hue")
    assert (empty.questions, empty.counts["handover"], empty.share("entry")) == (0, 0, 0.0)


def test_active_members_and_top_entries(seeded: Engine) -> None:
    assert st.active_members(seeded, SINCE, UNTIL) == 3
    assert st.active_members(seeded, SINCE, UNTIL, "ha_noi") == 2
    assert st.active_members(seeded, SINCE, UNTIL, "hue") == 0
    assert st.top_entries(seeded, SINCE, UNTIL) == (
        st.Count("thue_gtgt", 3),
        st.Count("dang_ky", 1),
    )
    assert st.top_entries(seeded, SINCE, UNTIL, "ha_noi") == (
        st.Count("thue_gtgt", 2),
        st.Count("dang_ky", 1),
    )
    assert st.top_entries(seeded, SINCE, UNTIL, "can_tho") == (st.Count("thue_gtgt", 1),)
    assert st.top_entries(seeded, SINCE, UNTIL, limit=1) == (st.Count("thue_gtgt", 3),)


def test_members_by_field_and_new_members_per_week(seeded: Engine) -> None:
    assert st.members_by(seeded, "province") == (
        st.Count("ha_noi", 2),
        st.Count("can_tho", 1),
        st.Count(None, 1),
    )
    assert st.members_by(seeded, "coop_type") == (
        st.Count("htx_nong_nghiep", 2),
        st.Count("htx_van_tai", 1),
        st.Count(None, 1),
    )
    assert st.members_by(seeded, "channel") == (
        st.Count("telegram", 2),
        st.Count("web", 1),
        st.Count("zalo", 1),
    )
    assert st.members_by(seeded, "channel", "ha_noi") == (
        st.Count("telegram", 1),
        st.Count("zalo", 1),
    )
    with pytest.raises(ValueError, match="field must be one of"):
        st.members_by(seeded, "text")
    weeks = st.new_members_per_week(seeded, SINCE, UNTIL)
    assert weeks == (
        st.WeekCount(dt.date(2026, 10, 26), 1),  # m4, Sunday 01/11
        st.WeekCount(dt.date(2026, 11, 2), 2),  # m2, and m3 at 23:59:59 on 03/11
    )
    assert weeks[1].iso_week == (2026, 45)
    assert st.new_members_per_week(seeded, SINCE, UNTIL, "can_tho") == (
        st.WeekCount(dt.date(2026, 11, 2), 1),
    )


def test_broadcast_and_reminder_deliveries(seeded: Engine) -> None:
    found = st.broadcast_deliveries(seeded, SINCE, UNTIL)
    assert [(b.id, b.recipients, b.counts) for b in found] == [
        (3, 0, {}),
        (1, 3, {"sent": 1, "blocked": 1, "failed": 1}),
    ]
    assert st.reminder_deliveries(seeded, SINCE, UNTIL) == (
        st.DeliveryCount("deadline", "vat_monthly", "dropped", 1),
        st.DeliveryCount("deadline", "vat_monthly", "sent", 1),
        st.DeliveryCount("deadline", "vat_monthly", "unknown", 1),
        st.DeliveryCount("session", "5", "sent", 1),
    )
    assert st.reminder_deliveries(seeded, SINCE, UNTIL, "can_tho") == (
        st.DeliveryCount("deadline", "vat_monthly", "dropped", 1),
    )


def test_days_window_starts_at_vietnam_midnight() -> None:
    since, until = st.days_window(3, utc(11, 3, 16, 30))
    assert (since, until) == (SINCE, utc(11, 3, 16, 30))
    assert st.days_window(1, utc(11, 3, 17))[0] == utc(11, 3, 17)
    with pytest.raises(ValueError, match="at least 1"):
        st.days_window(0, SINCE)


def test_sparkline_scales_to_the_largest_value() -> None:
    assert sparkline([2, 0, 3]) == "▆▁█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([1, 7, 14]) == "▂▅█"


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A SQLite file the command reads through DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'stats.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    engine = create_db_engine(url)
    upgrade_db(engine)
    return engine


def run_stats(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    app.command()(stats)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_prints_the_overview_with_sparklines(cli_database: Engine) -> None:
    since, _ = st.days_window(3, utcnow())
    with Session(cli_database) as session, session.begin():
        alice = Member(channel="telegram", external_id="1", chat_id="1", province="ha_noi")
        bob = Member(channel="zalo", external_id="2", chat_id="2", province="can_tho")
        session.add_all([alice, bob])
        session.flush()
        rows = [  # (member, kind, days after the window opens, feedback); at midnight: <= now
            (alice, "entry", 0, "up"),
            (alice, "fallback", 0, None),
            (alice, "entry", 2, "down"),
            (alice, "clause", 2, None),
            (alice, "entry", 2, None),
            (bob, "suggested", 1, "up"),
            (bob, "entry", -1, None),  # before the window
        ]
        session.add_all(
            MessageLog(member_id=m.id, channel=m.channel, text="?", kind=kind, feedback=fb,
                       created_at=since + dt.timedelta(days=day))
            for m, kind, day, fb in rows
        )  # fmt: skip
    cli_database.dispose()
    code, out, err = run_stats("--days", "3")
    assert (code, err) == (0, "")
    assert "📊 Thống kê 3 ngày" in out
    assert "Câu hỏi: 6 · Thành viên đã dùng: 2 · 👍 2 · 👎 1" in out
    assert "Trả lời từ mục hỏi đáp" in out and "50.0%" in out
    telegram = next(line for line in out.splitlines() if line.strip().startswith("Telegram"))
    assert "▆▁█" in telegram and "tổng 5" in telegram
    zalo = next(line for line in out.splitlines() if line.strip().startswith("Zalo"))
    assert "▁█▁" in zalo and "tổng 1" in zalo

    code, out, err = run_stats("--days", "3", "--province", "Hà Nội")
    assert code == 0 and "Hà Nội" in out
    assert "Câu hỏi: 5 · Thành viên đã dùng: 1 · 👍 1 · 👎 1" in out
    assert "Zalo" not in out


def test_cli_refuses_an_unknown_province_and_bad_days(cli_database: Engine) -> None:
    code, out, err = run_stats("--province", "Atlantis")
    assert code == 2 and out == ""
    assert "không có tỉnh/thành “Atlantis”" in err
    code, _, err = run_stats("--days", "0")
    assert code == 2 and "--days phải từ 1" in err


def test_settled_days_are_counted_once_and_the_last_two_read_live(seeded: Engine) -> None:
    # The window [01/11, 04/11): 01/11 and 02/11 are settled (read from usage_days), 03/11
    # and what follows are read from the log itself.
    before = st.outcomes(seeded, SINCE, UNTIL)
    with Session(seeded) as session:
        assert session.scalar(select(func.count()).select_from(UsageDaySettled)) == 2
        rolled = session.scalar(
            select(func.sum(UsageDay.messages)).where(UsageDay.kind != "browse")
        )
    assert rolled == 2 + 2 + 1  # 01/11: two questions; 02/11: two and a hand-over (no browse)
    assert st.settle(seeded, NOV[1], NOV[2]) == 0  # already counted: nothing twice
    assert st.outcomes(seeded, SINCE, UNTIL) == before
    with Session(seeded) as session, session.begin():
        member = session.scalars(select(Member).where(Member.external_id == "1")).one()
        for at in (utc(11, 1, 5), utc(11, 3, 5)):  # a settled day, a live one
            session.add(MessageLog(member_id=member.id, channel="telegram", text="?",
                                   kind="fallback", created_at=at))  # fmt: skip
    after = st.outcomes(seeded, SINCE, UNTIL)
    assert after.counts["fallback"] == before.counts["fallback"] + 1  # the live day's only
    # A window that does not start at a Vietnam midnight is read from the log alone.
    live = st.outcomes(seeded, SINCE + dt.timedelta(seconds=1), UNTIL)
    assert live.counts["fallback"] == before.counts["fallback"] + 2


def test_finished_broadcasts_are_tallied_once_running_ones_read_live(seeded: Engine) -> None:
    def counts() -> dict[int, dict[str, int]]:
        return {b.id: b.counts for b in st.broadcast_deliveries(seeded, SINCE, UNTIL)}

    assert counts() == {3: {}, 1: {"sent": 1, "blocked": 1, "failed": 1}}  # 1 is sending
    with Session(seeded) as session, session.begin():
        session.execute(
            update(Broadcast)
            .where(Broadcast.id == 1)
            .values(status="done", finished_at=utcnow() - dt.timedelta(hours=1))
        )
    assert counts()[1] == {"sent": 1, "blocked": 1, "failed": 1}
    with Session(seeded) as session, session.begin():
        assert session.scalar(select(func.sum(BroadcastTally.messages))) == 3
        # A change to the outbox after the tally is not seen: a finished broadcast is final.
        session.execute(
            update(OutboxMessage).where(OutboxMessage.status == "failed").values(status="sent")
        )
    assert counts()[1] == {"sent": 1, "blocked": 1, "failed": 1}
    days = st.delivery_days(st.broadcast_deliveries(seeded, SINCE, UNTIL))
    assert {(d.status, d.count) for d in days} == {("sent", 1), ("blocked", 1), ("failed", 1)}
    assert {d.day for d in days} == {utcnow().astimezone(VIETNAM).date()}  # queued today


def test_a_broadcast_with_messages_on_their_way_is_not_tallied(seeded: Engine) -> None:
    with Session(seeded) as session, session.begin():
        session.execute(
            update(Broadcast)
            .where(Broadcast.id == 1)
            .values(status="cancelled", finished_at=utcnow() - dt.timedelta(hours=1))
        )
        session.execute(
            update(OutboxMessage).where(OutboxMessage.status == "failed").values(status="sending")
        )
    assert {b.id: b.counts for b in st.broadcast_deliveries(seeded, SINCE, UNTIL)}[1] == {
        "sent": 1, "blocked": 1, "sending": 1,
    }  # fmt: skip
    with Session(seeded) as session:
        assert session.scalar(select(func.count()).select_from(BroadcastTally)) == 0


def test_the_running_assistant_settles_the_longest_window_ahead(seeded: Engine) -> None:
    # UNTIL is 04/11 00:00 in Vietnam: the 7 days from 29/10, less today and yesterday.
    assert st.settle_window(seeded, 7, UNTIL) == 5
    assert st.settle_window(seeded, 7, UNTIL) == 0
    assert st.settle_window(seeded, 90, UNTIL) == 90 - 2 - 5
    assert st.settle_window(seeded, 1, UNTIL) == 0  # only today: nothing settled
    assert st.questions_per_day(seeded, SINCE, UNTIL)[0] == st.ChannelDay(NOV[1], "telegram", 2)
