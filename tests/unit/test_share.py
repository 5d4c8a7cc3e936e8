"""Trainers' share links: /chiase and /chiase_thongke (roles), QR codes, counted opens, stats."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
from dataclasses import replace
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import inspect, select, update
from sqlalchemy.engine import Engine

from bot.answers import AnswerService
from bot.answers.links import TRAINER_CODE
from bot.conversation import Conversation, Incoming
from bot.handlers.base import STALE_CHOICE
from bot.nlu_model.client import NLUClient
from bot.settings import Settings
from bot.store.db import MessageLog, ShareOpen, current_revision, downgrade_db, upgrade_db
from bot.store.members import MemberStore
from bot.store.shares import ShareStat, ShareStore, format_stats
from tests.unit.test_conversation import KB, SEARCH, payloads, say
from tests.unit.test_training_chat import make_core, member_id, set_role

NOW = dt.datetime(2027, 1, 5, 1, 0, tzinfo=dt.UTC)
BASE = "https://hoc.lienminhhtx.vn"
BOT = "HtxTroLyBot"
ENTRY = "so_thanh_vien_toi_thieu"
OTHER = "von_gop_toi_da"


class Clock:
    """A clock the test sets."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def shares(sqlite_engine: Engine, clock: Clock) -> ShareStore:
    return ShareStore(sqlite_engine, KB.entries, clock)


def with_shares(core: Conversation, shares: ShareStore, username: str | None = BOT) -> Conversation:
    core.services = replace(
        core.services, shares=shares, public_url=BASE, telegram_username=username
    )
    return core


@pytest.fixture
def core(sqlite_engine: Engine, shares: ShareStore) -> Conversation:
    return with_shares(make_core(sqlite_engine), shares)


def build(engine: Engine, clock: Clock) -> tuple[Conversation, ShareStore]:
    """The core and the share store on ``engine`` (the counting tests run on both databases)."""
    shares = ShareStore(engine, KB.entries, clock)
    return with_shares(make_core(engine), shares), shares


def trainer(core: Conversation, engine: Engine, user: str = "t1", role: str = "trainer") -> str:
    """A member with ``role``; returns their trainer code."""
    say(core, "/start", user=user)
    set_role(engine, user, role)
    assert core.services.shares is not None
    return core.services.shares.trainer_code(member_id(engine, user))


def decode(png: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def opens(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(ShareOpen).order_by(ShareOpen.id)))


# -- who may share ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["/chiase", f"/chiase {ENTRY}", "/chiase_thongke"])
def test_members_get_the_unknown_command_reply(core, command):
    (reply,) = say(core, command, user="m1")
    name = command.split()[0]
    assert reply.text.startswith(f"Mình chưa hiểu lệnh {name}.")
    assert reply.image is None
    for payload in (f"sh:{ENTRY}", "sht:", "sht:von:0"):
        (pressed,) = say(core, payload=payload, user="m1")
        assert pressed.text == STALE_CHOICE and pressed.image is None


def test_a_member_gets_no_trainer_code(core, sqlite_engine, shares):
    say(core, "/start", user="m1")
    with pytest.raises(PermissionError):
        shares.trainer_code(member_id(sqlite_engine, "m1"))
    with pytest.raises(LookupError):
        shares.trainer_code(999_999)


@pytest.mark.parametrize("role", ["trainer", "staff", "admin"])
def test_trainers_staff_and_admins_share_an_entry_by_id(core, sqlite_engine, role):
    code = trainer(core, sqlite_engine, role=role)
    assert TRAINER_CODE.fullmatch(code)
    (reply,) = say(core, f"/chiase {ENTRY.upper()}", user="t1")
    web = f"{BASE}/faq/{ENTRY}?t={code}"
    telegram = f"https://t.me/{BOT}?start=faq-{ENTRY}-t{code}"
    assert reply.text.startswith(f"🔗 Chia sẻ: {KB.get(ENTRY).title}")
    assert web in reply.text and telegram in reply.text and code in reply.text
    assert reply.image is not None
    assert reply.image.url == f"/faq/{ENTRY}/qr.png?kind=web&t={code}"
    assert KB.get(ENTRY).title in reply.image.alt
    assert decode(reply.image.png) == [web]
    # The code is stable: the same one in every later share.
    (again,) = say(core, f"/chiase {OTHER}", user="t1")
    assert f"{BASE}/faq/{OTHER}?t={code}" in again.text
    assert decode(again.image.png) == [f"{BASE}/faq/{OTHER}?t={code}"]


def test_without_a_bot_username_the_links_are_the_web_page(sqlite_engine, shares):
    core = with_shares(make_core(sqlite_engine), shares, username=None)
    code = trainer(core, sqlite_engine)
    (reply,) = say(core, f"/chiase {ENTRY}", user="t1")
    assert f"{BASE}/faq/{ENTRY}?t={code}" in reply.text and "t.me" not in reply.text


def test_codes_differ_between_trainers(core, sqlite_engine):
    codes = {trainer(core, sqlite_engine, user=f"t{n}") for n in range(6)}
    assert len(codes) == 6


# -- finding the entry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "words",
    ["Hợp tác xã cần tối thiểu bao nhiêu thành viên?", "htx can toi thieu bao nhieu thanh vien"],
)
def test_words_list_candidates_when_the_answer_is_not_sure(core, sqlite_engine, words):
    trainer(core, sqlite_engine)
    (reply,) = say(core, f"/chiase {words}", user="t1")  # no NLU: search only, never sure
    assert reply.image is None and "mục nào" in reply.text
    choices = [p for p in payloads(reply) if p.startswith("sh:")]
    assert f"sh:{ENTRY}" in choices and 1 <= len(choices) <= 5
    assert payloads(reply)[-1] == "sht:"
    (shared,) = say(core, payload=f"sh:{ENTRY}", user="t1")
    assert shared.image is not None and f"/faq/{ENTRY}?t=" in shared.text


def test_words_that_match_nothing_say_so(core, sqlite_engine):
    trainer(core, sqlite_engine)
    (reply,) = say(core, "/chiase qxzjv wqpfk", user="t1")
    assert reply.text.startswith("Không tìm thấy mục hỏi đáp nào") and payloads(reply) == ["sht:"]


@pytest.mark.parametrize(
    "words",
    ["Hợp tác xã cần tối thiểu bao nhiêu thành viên?", "htx can toi thieu bao nhieu thanh vien"],
)
def test_words_the_answer_service_is_sure_of_share_the_entry(nlu_url, sqlite_engine, words):
    async def scenario() -> list[Any]:
        client = NLUClient(nlu_url, timeout=5.0, token=os.environ["NLU_TOKEN"])
        try:
            answers = AnswerService(
                KB, SEARCH, client, threshold=Settings().nlu_confidence_threshold
            )
            core = make_core(sqlite_engine, answers=answers)
            with_shares(core, ShareStore(sqlite_engine, KB.entries))
            await core.handle(Incoming("telegram", "t1", "t1", "/start"))
            set_role(sqlite_engine, "t1", "staff")
            return await core.handle(Incoming("telegram", "t1", "t1", f"/chiase {words}"))
        finally:
            await client.aclose()

    (reply,) = asyncio.run(scenario())
    assert reply.text.startswith(f"🔗 Chia sẻ: {KB.get(ENTRY).title}")
    assert reply.image is not None and decode(reply.image.png)[0].startswith(f"{BASE}/faq/{ENTRY}")


def test_topics_then_a_topic_then_an_entry(core, sqlite_engine):
    trainer(core, sqlite_engine)
    (topics,) = say(core, "/chiase", user="t1")
    keys = [c.key for c in KB.categories if KB.in_category(c.key)]
    assert payloads(topics) == [f"sht:{key}:0" for key in keys]
    key = KB.get(OTHER).category
    (page,) = say(core, payload=f"sht:{key}:0", user="t1")
    entries = KB.in_category(key)
    assert page.edit and f"sh:{entries[0].id}" in payloads(page)
    assert payloads(page)[-1] == "sht:"
    pages = [page] + [say(core, payload=f"sht:{key}:{n}", user="t1")[0] for n in range(1, 5)]
    listed = [p for r in pages for p in payloads(r) if p.startswith("sh:")]
    assert len(entries) > 8 and len(pages[0].buttons) <= 8 + 2  # paged: 8 entries a page
    assert set(listed) == {f"sh:{e.id}" for e in entries}
    (shared,) = say(core, payload=f"sh:{OTHER}", user="t1")
    assert shared.image is not None and KB.get(OTHER).title in shared.text
    (back,) = say(core, payload="sht:", user="t1")
    assert payloads(back) == payloads(topics)
    for stale in ("sht:nope:0", "sh:nope"):
        assert say(core, payload=stale, user="t1")[0].text == STALE_CHOICE


# -- counting opens ---------------------------------------------------------------------------


def test_a_deep_link_with_a_trainer_code_opens_the_entry_and_counts_each_open(db_engine, clock):
    core, shares = build(db_engine, clock)
    code = trainer(core, db_engine)
    plain = say(core, f"/start faq-{ENTRY}", user="l1")
    assert opens(db_engine) == []  # no code: nothing to count
    coded = say(core, f"/start faq-{ENTRY}-t{code}", user="l1")
    assert [r.text for r in coded] == [r.text for r in plain]
    say(core, f"/start faq-{ENTRY}-t{code}", user="l1")
    say(core, f"/start faq-{ENTRY}-t{code}", user="l2", channel="zalo")
    rows = opens(db_engine)
    l1, l2 = member_id(db_engine, "l1"), member_id(db_engine, "l2")
    assert [(r.entry_id, r.trainer_code, r.via, r.member_id) for r in rows] == [
        (ENTRY, code, "telegram", l1),
        (ENTRY, code, "telegram", l1),
        (ENTRY, code, "zalo", l2),
    ]
    assert shares.stats() == [ShareStat(code, ENTRY, 0, 2, 1, 0)]


def test_unknown_codes_entries_and_the_trainers_own_opens_are_not_counted(
    core, sqlite_engine, shares
):
    code = trainer(core, sqlite_engine)
    (opened, _menu) = say(core, f"/start faq-{ENTRY}-tzzzz9", user="l1")
    assert opened.text.startswith(KB.get(ENTRY).title)  # the entry opens all the same
    (greeting,) = say(core, f"/start faq-khong_co_muc_nay-t{code}", user="l1")
    assert greeting.text.startswith("Xin chào")
    say(core, f"/start faq-{ENTRY}-t{code}", user="t1")  # the trainer tries their own link
    assert opens(sqlite_engine) == []
    assert not shares.record_open(ENTRY, "zzzz9", "web")
    assert not shares.record_open("khong_co", code, "web")
    assert not shares.record_open(ENTRY, "", "web")
    with pytest.raises(ValueError, match="via"):
        shares.record_open(ENTRY, code, "email")
    assert shares.record_open(ENTRY, code.upper(), "web")  # a web visit: nobody known
    assert [(r.via, r.member_id) for r in opens(sqlite_engine)] == [("web", None)]


def test_a_failure_to_count_never_breaks_the_deep_link(core, sqlite_engine, caplog):
    code = trainer(core, sqlite_engine)

    class Broken(ShareStore):
        def record_open(self, *args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("database down")

    core.services = replace(core.services, shares=Broken(sqlite_engine, KB.entries))
    (opened, _menu) = say(core, f"/start faq-{ENTRY}-t{code}", user="l1")
    assert opened.text.startswith(KB.get(ENTRY).title)
    assert "could not count an open" in caplog.text


def _set_times(engine: Engine, user: str, *moments: dt.datetime) -> None:
    """Sets the times of the user's logged messages, in order."""
    with engine.begin() as connection:
        ids = connection.scalars(
            select(MessageLog.id)
            .where(MessageLog.member_id == member_id(engine, user))
            .order_by(MessageLog.id)
        ).all()
        assert len(ids) == len(moments)
        for message_id, moment in zip(ids, moments, strict=True):
            connection.execute(
                update(MessageLog).where(MessageLog.id == message_id).values(created_at=moment)
            )


def test_follow_up_questions_are_typed_within_seven_days_after_the_open(db_engine, clock):
    core, shares = build(db_engine, clock)
    code = trainer(core, db_engine)
    say(core, "htx la gi", user="l1")  # before the open
    say(core, f"/start faq-{ENTRY}-t{code}", user="l1")
    say(core, "von gop toi da bao nhieu", user="l1")
    say(core, payload=f"faq:{OTHER}", user="l1")  # picked from a list: not a question
    say(core, "dai hoi thanh vien hop may lan", user="l1")
    say(core, "thue mon bai bao nhieu", user="l1")  # eight days later
    say(core, "htx can bao nhieu thanh vien", user="l9")  # never opened the link
    hour = dt.timedelta(hours=1)
    _set_times(
        db_engine,
        "l1",
        NOW - hour,
        NOW + hour,
        NOW + 2 * hour,
        NOW + dt.timedelta(days=6, hours=23),
        NOW + dt.timedelta(days=8),
    )
    _set_times(db_engine, "l9", NOW + hour)
    assert shares.stats() == [ShareStat(code, ENTRY, 0, 1, 0, 2)]
    # A second open of the same entry counts its questions once.
    say(core, f"/start faq-{ENTRY}-t{code}", user="l1")
    assert shares.stats() == [ShareStat(code, ENTRY, 0, 2, 0, 2)]

    # The learner deletes their data: the opens stay, nobody is linked to them any more.
    assert MemberStore(db_engine).delete(member_id(db_engine, "l1"))
    assert [r.member_id for r in opens(db_engine)] == [None, None]
    assert shares.stats() == [ShareStat(code, ENTRY, 0, 2, 0, 0)]


def test_stats_by_trainer_and_since(db_engine, clock):
    core, shares = build(db_engine, clock)
    first = trainer(core, db_engine, user="t1")
    second = trainer(core, db_engine, user="t2", role="staff")
    say(core, f"/start faq-{ENTRY}-t{first}", user="l1")
    clock.now = NOW + dt.timedelta(days=3)
    say(core, f"/start faq-{OTHER}-t{second}", user="l2")
    say(core, f"/start faq-{ENTRY}-t{second}", user="l2")
    clock.now = NOW + dt.timedelta(days=5)
    assert shares.record_open(ENTRY, first, "web")
    assert shares.record_open(OTHER, first, "web")
    assert shares.record_open(ENTRY, first, "web")

    everything = shares.stats()
    assert sorted(everything, key=lambda s: (s.trainer_code, s.entry_id)) == sorted(
        [
            ShareStat(first, ENTRY, 2, 1, 0, 0),
            ShareStat(first, OTHER, 1, 0, 0, 0),
            ShareStat(second, ENTRY, 0, 1, 0, 0),
            ShareStat(second, OTHER, 0, 1, 0, 0),
        ],
        key=lambda s: (s.trainer_code, s.entry_id),
    )
    mine = shares.stats(first)
    assert [(s.entry_id, s.opens) for s in mine] == [(ENTRY, 3), (OTHER, 1)]  # most opened first
    later = shares.stats(since=NOW + dt.timedelta(days=4))
    assert {(s.trainer_code, s.entry_id, s.opens) for s in later} == {
        (first, ENTRY, 2),
        (first, OTHER, 1),
    }
    assert shares.stats(second, since=NOW + dt.timedelta(days=1)) == [  # ties: by entry id
        ShareStat(second, ENTRY, 0, 1, 0, 0),
        ShareStat(second, OTHER, 0, 1, 0, 0),
    ]
    assert shares.stats(first, since=NOW + dt.timedelta(days=6)) == []
    assert shares.stats("khong_co") == []

    text = format_stats(mine, KB, since=NOW)
    assert text.startswith("📊 Lượt mở liên kết chia sẻ từ 05/01/2027:")
    assert f"Mã giảng viên {first}: 4 lượt mở (web 3, Telegram 1)" in text
    assert f"• {KB.get(ENTRY).title} ({ENTRY}): 3 lượt mở (web 2, Telegram 1)" in text
    assert "trong 7 ngày sau khi mở" in text
    assert format_stats([], KB) == "📊 Chưa có lượt mở nào qua liên kết chia sẻ."


def test_a_trainer_sees_only_their_own_stats(core, sqlite_engine, clock):
    first = trainer(core, sqlite_engine, user="t1")
    second = trainer(core, sqlite_engine, user="t2")
    clock.now = NOW - dt.timedelta(days=5)
    say(core, f"/start faq-{OTHER}-t{first}", user="l1")
    clock.now = NOW - dt.timedelta(days=1)
    say(core, f"/start faq-{ENTRY}-t{first}", user="l1")
    say(core, "htx can bao nhieu thanh vien", user="l1")
    _set_times(sqlite_engine, "l1", NOW)
    say(core, f"/start faq-{ENTRY}-t{second}", user="l2")

    (own,) = say(core, "/chiase_thongke", user="t1")
    assert f"Mã giảng viên {first}: 2 lượt mở (Telegram 2)" in own.text
    assert KB.get(OTHER).title in own.text and "↳ 1 câu hỏi tiếp theo" in own.text
    assert second not in own.text
    (recent,) = say(core, "/chiase_thongke 2", user="t1")  # the core's clock: NOW
    assert "từ 03/01/2027" in recent.text and "1 lượt mở (Telegram 1)" in recent.text
    assert KB.get(OTHER).title not in recent.text
    (wrong,) = say(core, "/chiase_thongke hôm qua", user="t1")
    assert "/chiase_thongke 30" in wrong.text


# -- the migration ----------------------------------------------------------------------------


def test_the_migration_goes_down_and_up(db_engine):
    head = current_revision(db_engine)  # the newest migration (test_persistence checks which)
    downgrade_db(db_engine, "0007")
    inspector = inspect(db_engine)
    assert "share_opens" not in inspector.get_table_names()
    assert "trainer_code" not in {c["name"] for c in inspector.get_columns("members")}
    assert "entries" not in {c["name"] for c in inspector.get_columns("training_sessions")}
    upgrade_db(db_engine)
    assert current_revision(db_engine) == head
    members = MemberStore(db_engine)
    trainer_id = members.set_role("telegram", "1", "trainer").id
    shares = ShareStore(db_engine, KB.entries)
    code = shares.trainer_code(trainer_id)
    learner = members.touch("telegram", "2", "2", None)
    assert shares.record_open(ENTRY, code, "telegram", learner.id)
    assert members.delete(learner.id)  # the database sets the link to NULL
    assert shares.stats() == [ShareStat(code, ENTRY, 0, 1, 0, 0)]
