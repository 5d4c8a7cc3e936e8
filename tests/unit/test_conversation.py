"""The conversation core on a real database, answering from lexical search (no NLU)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.answers import AnswerService
from bot.conversation import APOLOGY, Conversation, Incoming, StaffDesk
from bot.profile import load_profile_options
from bot.replies import Reply
from bot.sending import RecipientBlocked, Senders
from bot.store.db import Member, MessageLog
from bot.store.handovers import HandoverStore
from bot.store.members import MemberStore
from bot.store.messages import MessageLogStore
from bot.store.subscriptions import SubscriptionStore
from knowledge.base import load_knowledge_base
from knowledge.search import KnowledgeSearch
from nlu.build import TRAIN_DIR, load_examples
from scheduler.deadlines import load_rules

KB = load_knowledge_base()
SEARCH = KnowledgeSearch(KB, load_examples(TRAIN_DIR))
STAFF_CHAT = "-100777"


class RecordingSender:
    """A channel sender that keeps what it was asked to send (the channel-neutral interface)."""

    def __init__(self, blocked: frozenset[str] = frozenset()) -> None:
        self.sent: list[tuple[str, Reply]] = []
        self.copies: list[tuple[str, str, str]] = []
        self.blocked = blocked

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        if chat_id in self.blocked:
            raise RecipientBlocked("bot was blocked by the user")
        self.sent.append((chat_id, reply))
        return str(len(self.sent))

    async def copy(self, chat_id: str, from_chat_id: str, message_id: str) -> str | None:
        self.copies.append((chat_id, from_chat_id, message_id))
        return str(len(self.copies))


@pytest.fixture
def senders():
    senders = Senders()
    senders.register("telegram", RecordingSender(blocked=frozenset({"666"})))
    senders.register("web", RecordingSender())
    return senders


@pytest.fixture
def core(sqlite_engine, senders):
    return Conversation(
        answers=AnswerService(KB, SEARCH, None),
        kb=KB,
        members=MemberStore(sqlite_engine),
        messages=MessageLogStore(sqlite_engine),
        handovers=HandoverStore(sqlite_engine),
        profile_options=load_profile_options(),
        senders=senders,
        staff=StaffDesk("telegram", STAFF_CHAT),
        deadline_rules=load_rules(),
        subscriptions=SubscriptionStore(sqlite_engine),
        clock=lambda: dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC),  # 08:00 in Hà Nội
    )


def say(core: Conversation, text: str = "", *, user: str = "42", payload: str | None = None,
        channel: str = "telegram", chat: str | None = None, reply_to: str | None = None,
        name: str | None = "Lan", message_id: str | None = None,
        attachment: bool = False) -> list[Reply]:  # fmt: skip
    incoming = Incoming(
        channel=channel,
        chat_id=chat or user,
        user_id=user,
        text=text,
        display_name=name,
        payload=payload,
        reply_to_message_id=reply_to,
        message_id=message_id,
        attachment=attachment,
    )
    return asyncio.run(core.handle(incoming))


def payloads(reply: Reply) -> list[str]:
    return [b.payload for b in reply.buttons]


def test_start_greets_by_name_and_shows_the_menu(core):
    (reply,) = say(core, "/start", name="Chị Lan <3")
    assert "Xin chào, Chị Lan <3" in reply.text
    menu = ["cmd:faq", "cmd:hoso", "cmd:lienhe", "cmd:help"]
    assert payloads(reply) == ["nh:yes", "nh:no", *menu]  # the first time: asks about reminders
    (again,) = say(core, "/start", name="Chị Lan <3")
    assert payloads(again) == menu


@pytest.mark.parametrize(
    "payload",
    ["faq-khong_ton_tai", "FAQ-", "faq-" + "a" * 60, "xyz", "faq-<script>", "faq_so_thanh_vien"],
)
def test_unknown_or_malformed_deep_links_show_the_menu(core, payload):
    (reply,) = say(core, f"/start {payload}")
    assert reply.text.startswith("Xin chào")
    assert "cmd:faq" in payloads(reply)


def test_deep_link_opens_the_entry(core):
    entry = KB.get("so_thanh_vien_toi_thieu")
    first, second = say(core, "/start faq-so_thanh_vien_toi_thieu")
    assert first.text.startswith(entry.title) and "📘 Căn cứ:" in first.text
    assert first.citations and "cmd:faq" in payloads(second)
    reply, _menu = say(core, "/start@tro_ly_htx_bot FAQ-so_thanh_vien_toi_thieu")
    assert reply.text.startswith(entry.title)


def test_question_is_answered_logged_and_takes_feedback(core, sqlite_engine):
    (reply,) = say(core, "von gop toi da cua mot thanh vien la bao nhieu")
    assert "📘 Căn cứ:" in reply.text and "🗓 Cập nhật:" in reply.text
    up = next(p for p in payloads(reply) if p.startswith("fb:up:"))
    with Session(sqlite_engine) as session:
        logged = session.scalars(select(MessageLog)).one()
    assert logged.entry_id and logged.feedback is None and not logged.fallback
    (ack,) = say(core, payload=up)
    assert ack.notice and "Cảm ơn" in ack.text
    (forged,) = say(core, payload=up, user="43")  # someone else's message
    assert forged.notice and "không còn hiệu lực" in forged.text
    with Session(sqlite_engine) as session:
        assert session.scalars(select(MessageLog.feedback)).one() == "up"


def test_faq_browsing_pages_and_opens_entries(core):
    (cats,) = say(core, "/faq")
    first_cat = payloads(cats)[0]
    assert first_cat.startswith("cat:")
    biggest = max(KB.categories, key=lambda c: len(KB.in_category(c.key)))
    (page0,) = say(core, payload=f"cat:{biggest.key}:0")
    assert page0.edit and "trang 1/" in page0.text
    assert f"cat:{biggest.key}:1" in payloads(page0)
    (page1,) = say(core, payload=f"cat:{biggest.key}:1")
    assert "trang 2/" in page1.text and f"cat:{biggest.key}:0" in payloads(page1)
    (clamped,) = say(core, payload=f"cat:{biggest.key}:999")
    assert "Sau ▶" not in [b.label for b in clamped.buttons]
    entry_payload = next(p for p in payloads(page0) if p.startswith("faq:"))
    (entry,) = say(core, payload=entry_payload)
    assert not entry.edit and "📘 Căn cứ:" in entry.text
    (back,) = say(core, payload="cats:")
    assert back.edit and payloads(back) == payloads(cats)


@pytest.mark.parametrize("payload", ["cat:khong_co:0", "faq:nope", "hs:x:y", "fb:up:abc", "zzz",
                                     "cmd:rm -rf", "del:maybe", "more:nope", ""])  # fmt: skip
def test_forged_or_stale_button_payloads_get_a_notice(core, payload):
    replies = say(core, payload=payload)
    assert replies and all(r.text and r.text != APOLOGY for r in replies)


def test_profile_flow_stores_each_answer(core, sqlite_engine):
    (summary,) = say(core, "/hoso")
    assert "chưa khai báo" in summary.text and payloads(summary) == ["hs:start"]
    (step1,) = say(core, payload="hs:start")
    assert step1.edit and len(step1.buttons) == 34 + 1  # provinces and "skip"
    (step2,) = say(core, payload="hs:p:can_tho")
    assert "hs:t:htx_nong_nghiep" in payloads(step2)
    (_step3,) = say(core, payload="hs:t:-")  # skipped
    (_step4,) = say(core, payload="hs:r:giam_doc")
    (done,) = say(core, payload="hs:v:quarterly")
    assert done.edit and "Đã lưu hồ sơ" in done.text and "Cần Thơ" in done.text
    (bad,) = say(core, payload="hs:p:atlantis")
    assert bad.notice
    with Session(sqlite_engine) as session:
        member = session.scalars(select(Member)).one()
    assert (member.province, member.coop_type, member.coop_role, member.vat_period) == (
        "can_tho",
        None,
        "giam_doc",
        "quarterly",
    )


def test_handover_round_trip(core, senders):
    staff = senders._senders["telegram"]
    say(core, "htx toi muon vay von quy ho tro thi can gi", user="42")
    (told,) = say(core, "/lienhe", user="42")
    assert "đã chuyển câu hỏi" in told.text
    chat_id, post = staff.sent[-1]
    assert chat_id == STAFF_CHAT and "vay von quy ho tro" in post.text and "Lan" in post.text
    post_id = str(len(staff.sent))
    (ack,) = say(core, "Anh chị mang hồ sơ <đầy đủ> & đến UBND xã", user="9", chat=STAFF_CHAT,
                 reply_to=post_id)  # fmt: skip
    assert ack.text.startswith("✅")
    member_chat, answer = staff.sent[-1]
    assert member_chat == "42" and "Anh chị mang hồ sơ <đầy đủ> & đến UBND xã" in answer.text
    assert say(core, "chuyện riêng của cán bộ", user="9", chat=STAFF_CHAT) == []


def test_handover_needs_a_question_and_reports_blocked_members(core, senders):
    (hint,) = say(core, "/lienhe", user="50")
    assert "/lienhe kèm câu hỏi" in hint.text
    staff = senders._senders["telegram"]
    say(core, "/lienhe tôi cần hỏi về thuế", user="666")
    post_id = str(len(staff.sent))
    (ack,) = say(core, "trả lời", user="9", chat=STAFF_CHAT, reply_to=post_id)
    assert "chặn bot" in ack.text


def test_staff_file_is_copied_to_a_telegram_member_and_refused_for_the_web(core, senders):
    staff = senders._senders["telegram"]
    say(core, "/lienhe xin mẫu điều lệ HTX", user="43")
    post_id = str(len(staff.sent))
    (ack,) = say(core, "", user="9", chat=STAFF_CHAT, reply_to=post_id, message_id="77",
                 attachment=True)  # fmt: skip
    assert ack.text.startswith("✅")
    assert staff.copies == [("43", STAFF_CHAT, "77")]
    member_chat, header = staff.sent[-1]
    assert member_chat == "43" and "#" in header.text and "tệp bên dưới" in header.text

    say(core, "/lienhe xin mẫu điều lệ", user="w" * 20, channel="web")
    post_id = str(len(staff.sent))
    (refused,) = say(core, "", user="9", chat=STAFF_CHAT, reply_to=post_id, message_id="78",
                     attachment=True)  # fmt: skip
    assert "chỉ nhận được tin nhắn chữ" in refused.text
    assert len(staff.copies) == 1 and senders._senders["web"].sent == []


def test_web_member_gets_staff_answers_through_the_web_sender(core, senders):
    session_id = "w" * 20
    say(core, "/lienhe hỏi về quỹ", user=session_id, channel="web")
    post_id = str(len(senders._senders["telegram"].sent))
    say(core, "đây là câu trả lời", user="9", chat=STAFF_CHAT, reply_to=post_id)
    ((chat, reply),) = senders._senders["web"].sent
    assert chat == session_id and "đây là câu trả lời" in reply.text


def test_toi_and_xoadulieu(core, sqlite_engine):
    say(core, "htx can bao nhieu thanh vien")
    (shown,) = say(core, "/toi")
    assert "Số câu hỏi đã lưu: 1" in shown.text and "Tên hiển thị: Lan" in shown.text
    (confirm,) = say(core, "/xoadulieu")
    assert payloads(confirm) == ["del:yes", "del:no"]
    (kept,) = say(core, payload="del:no")
    assert "giữ nguyên" in kept.text
    (deleted,) = say(core, payload="del:yes")
    assert "Đã xoá" in deleted.text
    with Session(sqlite_engine) as session:
        assert session.scalars(select(Member)).all() == []
        assert session.scalars(select(MessageLog)).all() == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "🌾🌾🌾",
        "<script>alert(1)</script>",
        "a" * 100_000,
        "\x00\x01\ud800x",
        "/",
        "/@@",
    ],
)
def test_odd_texts_never_crash(core, text):
    replies = say(core, text)
    assert replies and all(r.text != APOLOGY for r in replies)


def test_internal_fault_gives_an_apology_and_logs(core, caplog):
    core.services = replace(core.services, members=None)  # any fault inside the core
    (reply,) = say(core, "xin chào")
    assert reply.text == APOLOGY
    assert "conversation fault" in caplog.text and "Traceback" in caplog.text


def test_unknown_command(core):
    (reply,) = say(core, "/khongco")
    assert "/khongco" in reply.text and "/help" in reply.text


def test_lichnop_lists_the_next_deadlines_for_the_profile(core):
    (shown,) = say(core, "/lichnop", user="77")
    lines = shown.text.splitlines()
    assert lines[0] == "🗓 Các hạn nộp sắp tới của HTX bạn:"
    assert "• 15/12/2026 (còn 21 ngày): Cập nhật thông tin hoạt động HTX — năm 2026" in lines
    assert "• 21/12/2026 (còn 27 ngày): Nộp tờ khai thuế GTGT tháng — tháng 11/2026" in lines
    assert "  (hạn gốc 20/12/2026 là ngày nghỉ nên dời sang ngày làm việc kế tiếp)" in lines
    assert "/hoso" in shown.text and payloads(shown) == ["hs:start"]  # profile not set
    say(core, payload="hs:start", user="77")
    say(core, payload="hs:p:-", user="77")
    say(core, payload="hs:t:htx_nong_nghiep", user="77")
    say(core, payload="hs:r:-", user="77")
    say(core, payload="hs:v:quarterly", user="77")
    (quarterly,) = say(core, "/lichnop", user="77")
    assert "GTGT tháng" not in quarterly.text and quarterly.buttons == ()
    assert "• 01/02/2027 (còn 69 ngày): Nộp tờ khai thuế GTGT quý — quý IV/2026" in quarterly.text
    assert "cần kiểm tra lại với cơ quan thuế" in quarterly.text


def test_start_asks_about_reminders_once_and_nhacnho_toggles_them(core, sqlite_engine):
    (greeting,) = say(core, "/start", user="88")
    assert "Bạn có muốn mình nhắc" in greeting.text
    assert payloads(greeting)[:2] == ["nh:yes", "nh:no"] and "cmd:faq" in payloads(greeting)
    (again,) = say(core, "/start", user="88")  # asked once only
    assert "Bạn có muốn mình nhắc" not in again.text and "nh:yes" not in payloads(again)
    (menu,) = say(core, payload="nh:yes", user="88")
    assert menu.edit and menu.text.startswith("Đã bật nhắc hạn.")
    assert "✅ Nộp tờ khai thuế GTGT tháng" in menu.text and "⬜" not in menu.text
    store = SubscriptionStore(sqlite_engine)
    member_id = MemberStore(sqlite_engine).find("telegram", "88").id
    assert "gtgt_quy" in store.rules(member_id)
    (menu,) = say(core, payload="nh:t:gtgt_quy", user="88")
    assert "⬜ Nộp tờ khai thuế GTGT quý" in menu.text
    assert "gtgt_quy" not in store.rules(member_id) and "gtgt_thang" in store.rules(member_id)
    (shown,) = say(core, "/nhacnho", user="88")
    assert not shown.edit and "🔔 Bật: Nộp tờ khai thuế GTGT quý" in [
        b.label for b in shown.buttons
    ]
    say(core, payload="nh:none", user="88")
    assert store.rules(member_id) == frozenset()
    (stale,) = say(core, payload="nh:t:khong_co", user="88")
    assert stale.notice
    (toi,) = say(core, "/toi", user="88")
    assert "Nhận nhắc hạn: không" in toi.text


def test_declining_reminders_keeps_them_off(core, sqlite_engine):
    (greeting,) = say(core, "/start", user="89")
    assert payloads(greeting)[:2] == ["nh:yes", "nh:no"]
    (answer,) = say(core, payload="nh:no", user="89")
    assert answer.text.startswith("Đã hiểu") and answer.edit
    member_id = MemberStore(sqlite_engine).find("telegram", "89").id
    assert SubscriptionStore(sqlite_engine).rules(member_id) == frozenset()


def test_invisible_controls_are_removed_and_personal_numbers_masked_in_the_log(core, sqlite_engine):
    rlo, zwsp, zwj, bom = "\u202e", "\u200b", "\u200d", "\ufeff"
    name = f"{rlo}naL ị{zwsp}hC"
    say(core, "/start", user="88", name=name)
    question = f"{bom}htx can{zwsp} bao nhieu{zwj} thanh vien, sdt 0912345678, ho chieu C1234567"
    say(core, question + rlo, user="88", name=name)
    with Session(sqlite_engine) as session:
        member = session.scalars(select(Member).where(Member.external_id == "88")).one()
        logged = session.scalars(select(MessageLog.text)).all()
    assert member.display_name == "naL ịhC"
    assert logged == ["htx can bao nhieu thanh vien, sdt [SĐT], ho chieu [SỐ HỘ CHIẾU]"]


def test_handovers_are_limited_per_member_and_overall(sqlite_engine, senders, core):
    staff = senders._senders["telegram"]
    posted = len(staff.sent)
    replies = [say(core, f"/lienhe câu hỏi số {i} về thuế", user="71")[0] for i in range(5)]
    assert ["đã chuyển câu hỏi" in r.text for r in replies] == [True, True, True, False, False]
    assert "một giờ qua bạn đã gửi 3 câu hỏi" in replies[3].text
    assert len(staff.sent) == posted + 3  # the staff chat got three posts, not five
    core.services = replace(
        core.services, staff=StaffDesk("telegram", STAFF_CHAT, per_member_hour=3, per_hour=5)
    )
    others = [say(core, "/lienhe hỏi về vốn góp", user=str(800 + i))[0] for i in range(3)]
    assert ["đã chuyển câu hỏi" in r.text for r in others] == [True, True, False]
    assert "nhiều câu hỏi đang chờ cán bộ" in others[2].text
