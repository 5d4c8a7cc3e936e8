"""The channel-neutral conversation core: an ``Incoming`` message in, a list of ``Reply`` out.

Channels only parse and render. Everything a member can do is decided here:
commands (``/start``, ``/help``, ``/faq``, ``/hoso``, ``/lienhe``, ``/toi``,
``/xoadulieu``), button presses (payloads such as ``faq:<id>``), questions
(answered by the answer service and logged), and staff replies to hand-overs.

The core never raises to a channel: an internal fault is logged with its
traceback and the member gets a short apology.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from bot.answers import (
    Answer,
    AnswerKind,
    AnswerService,
    citations,
    quote_button,
    render_entry,
)
from bot.clock import format_date, local, utcnow
from bot.handlers.broadcast import BroadcastChat
from bot.handlers.law import LawChat
from bot.handlers.review import ReviewChat
from bot.handlers.training import TrainingChat
from bot.profile import PROFILE_STEPS, ProfileOptions, ProfileStep
from bot.replies import Button, Reply, shorten
from bot.sending import RecipientBlocked, SendError, Senders
from bot.store.broadcasts import BroadcastStore
from bot.store.handovers import HandoverStore
from bot.store.members import LastAdminError, MemberInfo, MemberStore
from bot.store.messages import MessageLogStore
from bot.store.roles import ROLE_LABELS, STAFF_ROLES, parse_person, parse_role
from bot.store.subscriptions import SubscriptionStore
from knowledge.base import Entry, KnowledgeBase
from nlu.textnorm import strip_invisible
from scheduler.deadlines import Rule, due_dates
from scheduler.training import TrainingStore

__all__ = ["APOLOGY", "UNSUPPORTED", "Conversation", "Incoming", "StaffDesk"]

log = logging.getLogger(__name__)

APOLOGY: Final = (
    "Xin lỗi, hệ thống đang gặp sự cố nên mình chưa trả lời được. Bạn thử lại sau ít phút, "
    "hoặc gõ /lienhe để hỏi cán bộ Liên minh HTX."
)
GREETING: Final = (
    "Xin chào{name}! Mình là Trợ lý HTX, trợ lý hỏi đáp về Luật Hợp tác xã 2023, chính sách "
    "hỗ trợ, thủ tục đăng ký và thuế dành cho thành viên hợp tác xã.\n\n"
    "Bạn cứ gõ câu hỏi, có dấu hay không dấu đều được, ví dụ: "
    '"htx can bao nhieu thanh vien". Hoặc chọn một mục bên dưới.'
)
HELP: Final = (
    "Cách dùng Trợ lý HTX:\n"
    "• Gõ câu hỏi bằng tiếng Việt (có dấu hoặc không dấu).\n"
    "• /faq: tra cứu câu hỏi theo chủ đề\n"
    "• /dieu 33: đọc nguyên văn Điều 33 Luật HTX 2023 (/dieu 48 295/2026: điều của nghị định)\n"
    "• /hoso: khai báo tỉnh, loại hình HTX, vai trò, kỳ khai thuế\n"
    "• /lichnop: các hạn nộp thuế, báo cáo sắp tới của HTX bạn\n"
    "• /nhacnho: chọn các hạn nộp muốn được nhắc\n"
    "• /taphuan: lịch tập huấn, đăng ký tham gia\n"
    "• /tatthongbao, /batthongbao: tắt hoặc bật thông báo của Liên minh HTX\n"
    "• /lienhe: chuyển câu hỏi cho cán bộ Liên minh HTX\n"
    "• /toi: xem dữ liệu mình đang lưu về bạn\n"
    "• /xoadulieu: xoá dữ liệu của bạn\n\n"
    "Câu trả lời kèm căn cứ pháp lý và ngày cập nhật; khi cần quyết định quan trọng, "
    "bạn nên hỏi thêm cán bộ hoặc cơ quan đăng ký."
)
MENU_BUTTONS: Final = (
    Button("📚 Tra cứu theo chủ đề", "cmd:faq"),
    Button("👤 Hồ sơ HTX của tôi", "cmd:hoso"),
    Button("🙋 Hỏi cán bộ", "cmd:lienhe"),
    Button("ℹ️ Hướng dẫn", "cmd:help"),
)
UNSUPPORTED: Final = (
    "Mình mới đọc được tin nhắn chữ. Bạn gõ câu hỏi giúp mình nhé, hoặc gõ /help để xem hướng dẫn."
)
REMINDER_QUESTION: Final = (
    "Bạn có muốn mình nhắc các hạn nộp thuế, báo cáo và đại hội của HTX (trước 7 ngày, "
    "trước 2 ngày và sáng ngày đến hạn) không? Bạn có thể đổi bất cứ lúc nào bằng /nhacnho."
)
REMINDER_QUESTION_BUTTONS: Final = (
    Button("🔔 Có, nhắc tôi", "nh:yes"),
    Button("Không, cảm ơn", "nh:no"),
)
STALE_CHOICE: Final = "Lựa chọn này không còn hiệu lực. Gõ /help để xem các lệnh."
FAQ_PAGE_SIZE: Final = 6
MAX_QUESTION_CHARS: Final = 2000  # longer texts are answered from their beginning
MAX_OPEN_HANDOVERS: Final = 5
HANDOVER_RECENT: Final = dt.timedelta(minutes=60)
DEADLINE_HORIZON: Final = dt.timedelta(days=122)
DEADLINES_SHOWN: Final = 6

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]{1,64})?(?:\s+(.*))?$", re.S)
_DEEP_LINK_FAQ = re.compile(r"^faq-([a-z0-9_-]{1,40})$")


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message or button press from a channel, already parsed.

    ``payload`` is set for a button press (its ``text`` is then the button's
    label, when the channel knows it); ``reply_to_message_id`` is the message
    this one replies to (used by staff answering a hand-over); ``attachment``
    marks a photo, document or other file (its caption, if any, is the text).
    """

    channel: str
    chat_id: str
    user_id: str
    text: str
    display_name: str | None = None
    message_id: str | None = None
    received_at: dt.datetime = field(default_factory=utcnow)
    payload: str | None = None
    reply_to_message_id: str | None = None
    attachment: bool = False
    bot_id: str | None = None  # the bot account that received it (the web chat: "web")


@dataclass(frozen=True, slots=True)
class StaffDesk:
    """Where hand-overs are posted: one staff chat on one channel (None: not configured).

    At most ``per_member_hour`` hand-overs per member and ``per_hour`` from all
    members together are opened in any hour, so nobody can flood the staff chat.
    """

    channel: str = "telegram"
    chat_id: str | None = None
    per_member_hour: int = 3
    per_hour: int = 120


class Conversation:
    """Turns incoming messages into replies; never raises."""

    def __init__(
        self,
        *,
        answers: AnswerService,
        kb: KnowledgeBase,
        members: MemberStore,
        messages: MessageLogStore,
        handovers: HandoverStore,
        profile_options: ProfileOptions,
        senders: Senders,
        staff: StaffDesk | None = None,
        deadline_rules: Sequence[Rule] = (),
        subscriptions: SubscriptionStore | None = None,
        training: TrainingStore | None = None,
        broadcasts: BroadcastStore | None = None,
        review: ReviewChat | None = None,
        on_reminders_changed: Callable[[int], Awaitable[object]] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """Wires the core to its services.

        ``on_reminders_changed(member_id)`` is awaited after a member's reminder
        choices or profile changed (the reminder service plans what is now due);
        ``clock`` gives the current time (tests).
        """
        self.answers = answers
        self.kb = kb
        self.members = members
        self.messages = messages
        self.handovers = handovers
        self.options = profile_options
        self.senders = senders
        self.staff = staff or StaffDesk()
        self.deadline_rules = tuple(deadline_rules)
        self.subscriptions = subscriptions
        self.training = TrainingChat(training, profile_options) if training is not None else None
        self.broadcasts = (
            BroadcastChat(broadcasts, profile_options) if broadcasts is not None else None
        )
        self.review = review
        self.law = LawChat(answers.corpus, kb)
        self.on_reminders_changed = on_reminders_changed
        self.clock = clock or utcnow

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """Answers one incoming message; on an internal fault, apologises and logs."""
        try:
            return await self._dispatch(incoming)
        except Exception:
            log.exception(
                "conversation fault (channel=%s chat=%s)", incoming.channel, incoming.chat_id
            )
            return [Reply(APOLOGY)]

    def is_staff_chat(self, channel: str, chat_id: str) -> bool:
        """True for the configured staff chat."""
        return self.staff.chat_id is not None and (channel, chat_id) == (
            self.staff.channel,
            self.staff.chat_id,
        )

    # -- dispatch ---------------------------------------------------------------

    async def _dispatch(self, incoming: Incoming) -> list[Reply]:
        incoming = replace(
            incoming,
            text=_storable(incoming.text),
            display_name=_storable(incoming.display_name) if incoming.display_name else None,
        )
        if self.is_staff_chat(incoming.channel, incoming.chat_id):
            return await self._staff_message(incoming)
        member = await asyncio.to_thread(
            self.members.touch,
            incoming.channel,
            incoming.user_id,
            incoming.chat_id,
            incoming.display_name,
            incoming.bot_id,
        )
        if incoming.payload is not None:
            return await self._button(member, incoming.payload)
        text = incoming.text.strip()
        match = _COMMAND.match(text)
        if match:
            return await self._command(
                member, match.group(1).lower(), (match.group(2) or "").strip()
            )
        return await self._question(member, incoming.text)

    async def _command(self, member: MemberInfo, name: str, args: str) -> list[Reply]:
        match name:
            case "start":
                return await self._start(member, args)
            case "help" | "huongdan":
                return [Reply(HELP, MENU_BUTTONS)]
            case "faq" | "tracuu":
                return [self._categories()]
            case "dieu" | "luat":
                return [self.law.command(args)]
            case "hoso":
                return [self._profile_summary(member)]
            case "lienhe":
                return await self._handover(member, args)
            case "toi":
                return [await self._stored_data(member)]
            case "lichnop":
                return [self._deadlines(member)]
            case "nhacnho":
                return [replace(await self._reminders_menu(member), edit=False)]
            case "xoadulieu":
                return [self._confirm_delete()]
            case "taphuan":
                if self.training is None:
                    return [Reply("Tính năng tập huấn chưa được bật trên hệ thống này.")]
                return [await self.training.upcoming(member, _profile(member))]
            case "taphuan_tao" if self.training is not None and member.role in STAFF_ROLES:
                return [await self.training.create(member, args)]
            case "thongbao" if self.broadcasts is not None and member.role in STAFF_ROLES:
                return [await self.broadcasts.compose(member, args)]
            case "thongbao_trangthai" if self.broadcasts is not None and member.role in STAFF_ROLES:
                return [await self.broadcasts.status(args)]
            case "xemxet" if self.review is not None and member.role == "admin":
                return [await self.review.command(member, args)]
            case "huanluyen" if self.review is not None and member.role == "admin":
                return [await self.review.retrain(member)]
            case "capquyen" if member.role == "admin":
                return [await self._grant(args)]
            case "tatthongbao" | "batthongbao":
                wanted = name == "batthongbao"
                await asyncio.to_thread(self.members.set_broadcasts, member.id, wanted)
                if wanted:
                    return [Reply("🔔 Đã bật lại thông báo của Liên minh HTX.")]
                return [
                    Reply(
                        "🔕 Đã tắt thông báo của Liên minh HTX. Nhắc hạn và lịch tập huấn bạn "
                        "đã chọn vẫn được gửi. Gõ /batthongbao để bật lại."
                    )
                ]
            case _:
                return [Reply(f"Mình chưa hiểu lệnh /{name}. Gõ /help để xem các lệnh.")]

    async def _button(self, member: MemberInfo, payload: str) -> list[Reply]:
        kind, _, rest = payload.partition(":")
        match kind:
            case "cmd" if rest in (
                "start",
                "help",
                "faq",
                "hoso",
                "lienhe",
                "toi",
                "xoadulieu",
                "lichnop",
                "nhacnho",
                "taphuan",
            ):
                return await self._command(member, rest, "")
            case "faq":
                entry = self.kb.get(rest)
                if entry is None:
                    return [Reply(STALE_CHOICE, notice=True)]
                return [await self._entry_reply(member, entry)]
            case "law":
                return [self.law.quotes(rest)]
            case "dieu":
                return [self.law.page(rest)]
            case "more":
                entry = self.kb.get(rest)
                if entry is None or not entry.detail:
                    return [Reply(STALE_CHOICE, notice=True)]
                return [Reply(f"{entry.title}\n\n{entry.detail}", _related_buttons(self.kb, entry))]
            case "cats":
                return [replace(self._categories(), edit=True)]
            case "cat":
                return [self._category_page(rest)]
            case "fb":
                return [await self._feedback(member, rest)]
            case "hs":
                return [await self._profile_step(member, rest)]
            case "del":
                return [await self._delete(member, rest)]
            case "nh":
                return [await self._reminder_choice(member, rest)]
            case "tb" if self.broadcasts is not None and member.role in STAFF_ROLES:
                return [await self.broadcasts.button(rest)]
            case "xx" if self.review is not None and member.role == "admin":
                return [await self.review.button(member, rest)]
            case "th" if self.training is not None:
                return [await self.training.button(member, rest, _profile(member))]
        return [Reply(STALE_CHOICE, notice=True)]

    # -- start, menu, FAQ browsing -------------------------------------------------

    async def _start(self, member: MemberInfo, payload: str) -> list[Reply]:
        match = _DEEP_LINK_FAQ.match(payload.strip().lower())
        if match and (entry := self.kb.get(match.group(1))) is not None:
            # A trainer's link opens the entry directly; the menu follows.
            return [self._entry_reply_unlogged(entry), Reply("Bạn có thể hỏi tiếp.", MENU_BUTTONS)]
        if payload:
            log.info("unknown /start payload (%d chars); showing the menu", len(payload))
        name = f", {member.display_name}" if member.display_name else ""
        greeting = Reply(GREETING.format(name=name), MENU_BUTTONS)
        if (
            self.subscriptions is not None
            and self.deadline_rules
            and await asyncio.to_thread(self.subscriptions.ask_once, member.id)
        ):
            # Asked once, inside the greeting: the answer buttons come before the menu.
            greeting = Reply(
                f"{greeting.text}\n\n{REMINDER_QUESTION}",
                (*REMINDER_QUESTION_BUTTONS, *MENU_BUTTONS),
            )
        return [greeting]

    def _categories(self) -> Reply:
        buttons = tuple(
            Button(f"{c.title} ({len(self.kb.in_category(c.key))})", f"cat:{c.key}:0")
            for c in self.kb.categories
            if self.kb.in_category(c.key)
        )
        return Reply("📚 Chọn một chủ đề:", buttons)

    def _category_page(self, rest: str) -> Reply:
        key, _, page_text = rest.partition(":")
        entries = self.kb.in_category(key)
        if not entries:
            return Reply(STALE_CHOICE, notice=True)
        pages = (len(entries) + FAQ_PAGE_SIZE - 1) // FAQ_PAGE_SIZE
        page = min(max(int(page_text) if page_text.isdigit() else 0, 0), pages - 1)
        shown = entries[page * FAQ_PAGE_SIZE : (page + 1) * FAQ_PAGE_SIZE]
        buttons = [Button(e.title, f"faq:{e.id}") for e in shown]
        if page > 0:
            buttons.append(Button("◀ Trước", f"cat:{key}:{page - 1}"))
        if page < pages - 1:
            buttons.append(Button("Sau ▶", f"cat:{key}:{page + 1}"))
        buttons.append(Button("↩ Chủ đề", "cats:"))
        title = self.kb.category_title(key)
        text = f"📚 {title} (trang {page + 1}/{pages})\nChọn câu hỏi:"
        return Reply(text, tuple(buttons), edit=True)

    # -- questions and entries -------------------------------------------------------

    async def _question(self, member: MemberInfo, text: str) -> list[Reply]:
        answer = await self.answers.answer(
            text[:MAX_QUESTION_CHARS], channel=member.channel, member_id=member.id
        )
        message_id = await asyncio.to_thread(
            self.messages.record,
            member_id=member.id,
            channel=member.channel,
            text=text,
            kind=answer.kind.value,
            intent=answer.intent,
            confidence=answer.confidence,
            entry_id=answer.entry.id if answer.entry else None,
            fallback=answer.fallback,
            latency_ms=answer.latency_ms,
        )
        return _answer_replies(answer, message_id)

    async def _entry_reply(self, member: MemberInfo, entry: Entry) -> Reply:
        message_id = await asyncio.to_thread(
            self.messages.record,
            member_id=member.id,
            channel=member.channel,
            text=entry.title,
            kind="browse",
            intent=None,
            confidence=None,
            entry_id=entry.id,
            fallback=False,
            latency_ms=0.0,
        )
        reply = self._entry_reply_unlogged(entry)
        return Reply(reply.text, (*_feedback_buttons(message_id), *reply.buttons), reply.citations)

    def _entry_reply_unlogged(self, entry: Entry) -> Reply:
        buttons = _related_buttons(self.kb, entry)
        cited = citations(entry, self.answers.corpus)
        if any(c.quotable for c in cited):
            buttons = (quote_button(entry), *buttons)
        if entry.detail:
            buttons = (Button("📖 Xem chi tiết", f"more:{entry.id}"), *buttons)
        return Reply(render_entry(entry, self.answers.corpus), buttons, cited)

    async def _feedback(self, member: MemberInfo, rest: str) -> Reply:
        value, _, id_text = rest.partition(":")
        if value not in ("up", "down") or not id_text.isdigit():
            return Reply(STALE_CHOICE, notice=True)
        stored = await asyncio.to_thread(self.messages.set_feedback, int(id_text), member.id, value)
        if not stored:
            return Reply(STALE_CHOICE, notice=True)
        await self._feedback_review(member, int(id_text), value)
        if value == "up":
            return Reply("Cảm ơn bạn đã góp ý! 👍", notice=True)
        return Reply(
            "Cảm ơn bạn! Câu trả lời này sẽ được cán bộ xem lại. "
            "Gõ /lienhe để hỏi cán bộ trực tiếp.",
            notice=True,
        )

    async def _feedback_review(self, member: MemberInfo, message_id: int, value: str) -> None:
        """A 👎 on an answered question puts it in the review queue; a 👍 takes it back out."""
        review_log = self.answers.review_log
        if review_log is None:
            return
        try:
            if value == "up":
                await asyncio.to_thread(review_log.withdraw_feedback, message_id)
                return
            message = await asyncio.to_thread(self.messages.get, message_id)
            if message is None or message.kind == "browse" or message.fallback:
                # An entry opened from the menu: its text is at fault, not the NLU; a
                # fallback answer is in the queue already.
                return
            await asyncio.to_thread(review_log.withdraw_feedback, message_id)
            await asyncio.to_thread(
                review_log.record,
                channel=member.channel,
                text=message.text,
                reason="thumbs_down",
                intent=message.intent,
                confidence=message.confidence,
                member_id=member.id,
                message_id=message_id,
                candidates=[(message.intent, message.confidence or 0.0)] if message.intent else (),
            )
        except Exception:  # the member's feedback is stored; the queue can miss one
            log.exception("could not queue a 👎 for review")

    # -- profile (/hoso) -------------------------------------------------------------

    def _profile_summary(self, member: MemberInfo) -> Reply:
        lines = ["👤 Hồ sơ HTX của bạn:"]
        for step in PROFILE_STEPS:
            value = self.options.label(step.field, getattr(member, step.field))
            lines.append(f"• {step.summary}: {value or 'chưa khai báo'}")
        lines.append("")
        lines.append("Hồ sơ giúp mình nhắc đúng hạn nộp và gửi thông báo phù hợp với HTX của bạn.")
        return Reply("\n".join(lines), (Button("✏️ Cập nhật hồ sơ", "hs:start"),))

    def _profile_question(self, step: ProfileStep) -> Reply:
        buttons = [
            Button(c.label, f"hs:{step.key}:{c.code}") for c in self.options.choices(step.field)
        ]
        buttons.append(Button("Bỏ qua", f"hs:{step.key}:-"))
        return Reply(step.question, tuple(buttons), edit=True)

    async def _profile_step(self, member: MemberInfo, rest: str) -> Reply:
        if rest == "start":
            return self._profile_question(PROFILE_STEPS[0])
        key, _, code = rest.partition(":")
        index = next((i for i, s in enumerate(PROFILE_STEPS) if s.key == key), None)
        if index is None:
            return Reply(STALE_CHOICE, notice=True)
        step = PROFILE_STEPS[index]
        if code != "-":
            if not self.options.is_valid(step.field, code):
                return Reply(STALE_CHOICE, notice=True)
            member = await asyncio.to_thread(
                self.members.update_profile, member.id, **{step.field: code}
            )
            await self._reminders_changed(member.id)
        if index + 1 < len(PROFILE_STEPS):
            return self._profile_question(PROFILE_STEPS[index + 1])
        summary = self._profile_summary(member)
        return Reply("✅ Đã lưu hồ sơ.\n\n" + summary.text, summary.buttons, edit=True)

    # -- hand-over to staff (/lienhe) -----------------------------------------------------

    async def _handover(self, member: MemberInfo, args: str) -> list[Reply]:
        question = args
        if not question:
            since = utcnow() - HANDOVER_RECENT
            latest = await asyncio.to_thread(self.messages.latest, member.id, since)
            question = latest.text if latest is not None else ""
        if not question:
            return [
                Reply(
                    "Bạn hãy gõ /lienhe kèm câu hỏi cần cán bộ hỗ trợ, ví dụ:\n"
                    "/lienhe HTX tôi muốn vay vốn Quỹ hỗ trợ phát triển HTX thì cần hồ sơ gì?"
                )
            ]
        waiting = await asyncio.to_thread(self.handovers.open_count, member.id)
        if waiting >= MAX_OPEN_HANDOVERS:
            return [
                Reply(
                    f"Bạn đang có {waiting} câu hỏi chờ cán bộ trả lời. "
                    "Mình sẽ báo ngay khi cán bộ trả lời; bạn vui lòng chờ thêm nhé."
                )
            ]
        refused = await self._handover_limit(member)
        if refused is not None:
            return [refused]
        handover = await asyncio.to_thread(self.handovers.open, member.id, question)
        if not await self._post_to_staff(member, handover.id, question):
            return [
                Reply(
                    f"Mình đã lưu câu hỏi của bạn (mã #{handover.id}), nhưng hiện chưa kết nối "
                    "được với cán bộ qua kênh này. Bạn có thể liên hệ Liên minh HTX tỉnh, thành "
                    "phố nơi HTX đăng ký để được hỗ trợ sớm."
                )
            ]
        return [
            Reply(
                f"Mình đã chuyển câu hỏi của bạn tới cán bộ Liên minh HTX (mã #{handover.id}):\n"
                f"«{shorten(question, 300)}»\n\n"
                "Một cán bộ sẽ trả lời bạn ngay tại đây, thường trong giờ hành chính."
            )
        ]

    async def _handover_limit(self, member: MemberInfo) -> Reply | None:
        hour_ago = utcnow() - dt.timedelta(hours=1)
        mine = await asyncio.to_thread(self.handovers.opened_since, hour_ago, member.id)
        if mine >= self.staff.per_member_hour:
            return Reply(
                f"Trong một giờ qua bạn đã gửi {mine} câu hỏi cho cán bộ. Bạn vui lòng chờ cán "
                "bộ trả lời, hoặc gửi thêm sau ít phút nhé."
            )
        everyone = await asyncio.to_thread(self.handovers.opened_since, hour_ago)
        if everyone >= self.staff.per_hour:
            log.warning("hand-over refused: %d opened in the last hour", everyone)
            return Reply(
                "Hiện có nhiều câu hỏi đang chờ cán bộ. Bạn vui lòng gửi lại sau ít phút, hoặc "
                "liên hệ Liên minh HTX tỉnh, thành phố nơi HTX đăng ký."
            )
        return None

    async def _post_to_staff(self, member: MemberInfo, handover_id: int, question: str) -> bool:
        if self.staff.chat_id is None or not self.senders.has(self.staff.channel):
            return False
        profile = ", ".join(
            label
            for step in PROFILE_STEPS[:2]
            if (label := self.options.label(step.field, getattr(member, step.field)))
        )
        text = (
            f"🙋 Câu hỏi chuyển cán bộ #{handover_id}\n"
            f"Từ: {member.display_name or 'thành viên'} (kênh {member.channel})\n"
            + (f"Hồ sơ: {profile}\n" if profile else "")
            + f"\n{question}\n\n"
            "↩ Trả lời (reply) tin nhắn này để gửi câu trả lời cho thành viên."
        )
        try:
            posted = await self.senders.send(self.staff.channel, self.staff.chat_id, Reply(text))
        except SendError:
            log.exception("could not post hand-over #%d to the staff chat", handover_id)
            return False
        if posted is not None:
            await asyncio.to_thread(
                self.handovers.attach_staff_post, handover_id, self.staff.chat_id, posted
            )
        return True

    async def _staff_message(self, incoming: Incoming) -> list[Reply]:
        if incoming.reply_to_message_id is None:
            return []  # staff talking among themselves
        if not (incoming.text.strip() or incoming.attachment):
            return []
        assert self.staff.chat_id is not None  # checked by is_staff_chat
        handover = await asyncio.to_thread(
            self.handovers.find_by_staff_post, self.staff.chat_id, incoming.reply_to_message_id
        )
        if handover is None:
            return []
        member = await asyncio.to_thread(self.members.get, handover.member_id)
        if member is None:
            return [Reply(f"Thành viên của câu hỏi #{handover.id} đã xoá dữ liệu; không gửi được.")]
        header = f"💬 Cán bộ Liên minh HTX trả lời câu hỏi #{handover.id} của bạn"
        footer = "Gõ /lienhe kèm câu hỏi nếu bạn cần hỏi thêm."
        try:
            if incoming.attachment:
                # A form or a photo: copied as it is (caption included) after a short header.
                if member.channel != self.staff.channel or incoming.message_id is None:
                    return [
                        Reply(
                            f"Thành viên của câu hỏi #{handover.id} dùng kênh {member.channel}, "
                            "chỉ nhận được tin nhắn chữ. Vui lòng trả lời bằng chữ."
                        )
                    ]
                await self.senders.send(
                    member.channel, member.chat_id, Reply(f"{header} (tệp bên dưới).\n\n{footer}")
                )
                await self.senders.copy(
                    member.channel, member.chat_id, self.staff.chat_id, incoming.message_id
                )
            else:
                reply = Reply(f"{header}:\n\n{incoming.text.strip()}\n\n{footer}")
                await self.senders.send(member.channel, member.chat_id, reply)
        except RecipientBlocked:
            await asyncio.to_thread(self.members.set_active, member.id, False)
            return [Reply(f"Không gửi được câu trả lời #{handover.id}: thành viên đã chặn bot.")]
        except SendError as exc:
            log.warning("staff answer to hand-over #%d not delivered: %s", handover.id, exc)
            return [Reply(f"Chưa gửi được câu trả lời #{handover.id}; vui lòng thử lại sau.")]
        await asyncio.to_thread(self.handovers.mark_answered, handover.id)
        return [Reply(f"✅ Đã gửi câu trả lời #{handover.id} tới thành viên.")]

    # -- deadlines (/lichnop) ------------------------------------------------------------

    def _deadlines(self, member: MemberInfo) -> Reply:
        today = local(self.clock()).date()
        profile = _profile(member)
        upcoming = due_dates(self.deadline_rules, today, today + DEADLINE_HORIZON, profile)[
            :DEADLINES_SHOWN
        ]
        if not upcoming:
            return Reply("Mình chưa thấy hạn nộp nào trong 4 tháng tới với hồ sơ của bạn.")
        lines = ["🗓 Các hạn nộp sắp tới của HTX bạn:"]
        for due in upcoming:
            left = (due.date - today).days
            when = "hôm nay" if left == 0 else f"còn {left} ngày"
            lines.append(f"\n• {format_date(due.date)} ({when}): {due.rule.title} — {due.period}")
            lines.append(f"  Căn cứ: {due.rule.basis_text(due.date)}")
            if due.moved:
                lines.append(f"  (hạn gốc {format_date(due.nominal)} là ngày nghỉ nên dời sang "
                             "ngày làm việc kế tiếp)")  # fmt: skip
            if due.rule.unconfirmed:
                lines.append(
                    "  Hạn này cần kiểm tra lại với cơ quan thuế; gõ /lienhe để hỏi cán bộ."
                )
        lines.append(
            "\nHạn nộp hồ sơ khai thuế rơi vào ngày nghỉ được tính sang ngày làm việc liền kề "
            "sau đó (Nghị định 252/2026/NĐ-CP, Điều 3 khoản 7)."
        )
        buttons: tuple[Button, ...] = ()
        if member.vat_period is None or member.coop_type is None:
            lines.append(
                "Bạn chưa khai báo đủ hồ sơ (loại hình HTX, kỳ khai thuế GTGT) nên mình liệt kê "
                "mọi hạn có thể áp dụng. Gõ /hoso để khai báo."
            )
            buttons = (Button("✏️ Cập nhật hồ sơ", "hs:start"),)
        return Reply("\n".join(lines), buttons)

    # -- reminder consent (/nhacnho) --------------------------------------------------------

    def _applicable_rules(self, member: MemberInfo) -> list[Rule]:
        profile = _profile(member)
        return [rule for rule in self.deadline_rules if rule.applies(profile)]

    async def _reminders_menu(self, member: MemberInfo, prefix: str = "") -> Reply:
        if self.subscriptions is None or not self.deadline_rules:
            return Reply("Tính năng nhắc hạn chưa được bật trên hệ thống này.")
        chosen = await asyncio.to_thread(self.subscriptions.rules, member.id)
        rules = self._applicable_rules(member)
        lines = [
            prefix + "🔔 Nhắc hạn nộp (trước 7 ngày, trước 2 ngày và 8 giờ sáng ngày đến hạn):"
        ]
        buttons: list[Button] = []
        for rule in rules:
            on = rule.id in chosen
            lines.append(f"{'✅' if on else '⬜'} {rule.title}")
            buttons.append(
                Button(f"{'🔕 Tắt' if on else '🔔 Bật'}: {rule.title}", f"nh:t:{rule.id}")
            )
        lines.append("\nChọn từng mục để bật hoặc tắt. Mặc định không nhắc gì.")
        buttons += [Button("🔔 Bật tất cả", "nh:all"), Button("🔕 Tắt tất cả", "nh:none")]
        return Reply("\n".join(lines), tuple(buttons), edit=True)

    async def _reminder_choice(self, member: MemberInfo, rest: str) -> Reply:
        if self.subscriptions is None or not self.deadline_rules:
            return Reply(STALE_CHOICE, notice=True)
        store = self.subscriptions
        applicable = {rule.id for rule in self._applicable_rules(member)}
        current = await asyncio.to_thread(store.rules, member.id)
        kind, _, rule_id = rest.partition(":")
        match kind:
            case "yes" | "all":
                await asyncio.to_thread(store.replace, member.id, current | applicable)
                await self._reminders_changed(member.id)
                prefix = "Đã bật nhắc hạn. " if kind == "yes" else ""
                return await self._reminders_menu(member, prefix)
            case "no":
                await asyncio.to_thread(store.replace, member.id, current)
                return Reply(
                    "Đã hiểu, mình sẽ không nhắc hạn. Bạn có thể bật lại bất cứ lúc nào bằng "
                    "/nhacnho.",
                    edit=True,
                )
            case "none":
                await asyncio.to_thread(store.replace, member.id, ())
                return await self._reminders_menu(member)
            case "t" if rule_id in applicable:
                await asyncio.to_thread(store.replace, member.id, current ^ {rule_id})
                await self._reminders_changed(member.id)
                return await self._reminders_menu(member)
        return Reply(STALE_CHOICE, notice=True)

    async def _reminders_changed(self, member_id: int) -> None:
        """Lets the reminder service plan what the new choice makes due; never fails the reply."""
        if self.on_reminders_changed is None:
            return
        try:
            await self.on_reminders_changed(member_id)
        except Exception:
            log.exception("planning reminders after a change failed (member %d)", member_id)

    # -- roles (/capquyen, admins only) ------------------------------------------------------

    async def _grant(self, args: str) -> Reply:
        first, _, rest = args.strip().partition(" ")
        person = parse_person(first)
        role = parse_role(rest) if rest.strip() else None
        if person is None or role is None:
            people = await asyncio.to_thread(self.members.with_roles)
            lines = [
                "Cấp quyền: /capquyen <kênh>:<mã người dùng> <vai trò>, ví dụ:",
                "/capquyen telegram:123456789 staff",
                "Vai trò: "
                + ", ".join(f"{code} ({label})" for code, label in ROLE_LABELS.items())
                + ". Đặt về member để bỏ quyền.",
                "",
                "Đang có quyền:",
            ]
            lines += [
                f"• {ROLE_LABELS[m.role]}: {m.display_name or '(chưa nhắn tin)'} "
                f"({m.channel}:{m.external_id})"
                for m in people
            ]
            return Reply("\n".join(lines))
        try:
            changed = await asyncio.to_thread(self.members.set_role, *person, role)
        except LastAdminError:
            return Reply("Không thể bỏ quyền của quản trị viên cuối cùng; hãy cấp quyền quản trị "
                         "cho người khác trước.")  # fmt: skip
        who = changed.display_name or "(chưa nhắn tin với bot)"
        return Reply(f"✅ {who} ({person[0]}:{person[1]}) giờ là {ROLE_LABELS[role]}.")

    # -- personal data (/toi, /xoadulieu) ----------------------------------------------------

    async def _stored_data(self, member: MemberInfo) -> Reply:
        data = await asyncio.to_thread(self.members.stored_data, member.id)
        if data is None:
            return Reply("Mình không lưu dữ liệu nào về bạn.")
        m = data.member
        lines = [
            "🔎 Dữ liệu mình đang lưu về bạn:",
            f"• Kênh: {m.channel}, mã người dùng {m.external_id}",
            f"• Tên hiển thị: {m.display_name or '(không có)'}",
        ]
        for step in PROFILE_STEPS:
            value = self.options.label(step.field, getattr(m, step.field))
            lines.append(f"• {step.summary}: {value or 'chưa khai báo'}")
        lines += [
            f"• Nhận nhắc hạn: {'có' if m.consent_reminders else 'không'}",
            f"• Nhận thông báo: {'có' if m.consent_broadcasts else 'không'}",
            f"• Số câu hỏi đã lưu: {data.questions} (trong đó {data.feedback_given} có góp ý)",
            f"• Số lần chuyển cán bộ: {data.handovers}",
            f"• Bắt đầu trò chuyện: {format_date(local(m.created_at))}",
            "",
            "Câu hỏi chưa trả lời được cũng được lưu ẩn danh để cán bộ bổ sung kiến thức.",
            "Gõ /xoadulieu để xoá toàn bộ dữ liệu trên.",
        ]
        return Reply("\n".join(lines), (Button("🗑 Xoá dữ liệu của tôi", "cmd:xoadulieu"),))

    def _confirm_delete(self) -> Reply:
        return Reply(
            "Bạn có chắc muốn xoá toàn bộ dữ liệu mình lưu về bạn (hồ sơ, câu hỏi, góp ý, "
            "yêu cầu chuyển cán bộ)? Việc này không hoàn tác được.",
            (Button("🗑 Xoá hết", "del:yes"), Button("Huỷ", "del:no")),
        )

    async def _delete(self, member: MemberInfo, answer: str) -> Reply:
        if answer == "yes":
            await asyncio.to_thread(self.members.delete, member.id)
            return Reply(
                "Đã xoá toàn bộ dữ liệu của bạn. Nếu bạn nhắn tiếp, mình sẽ coi như lần đầu "
                "trò chuyện.",
                edit=True,
            )
        return Reply("Đã huỷ, dữ liệu của bạn vẫn được giữ nguyên.", edit=True)


def _profile(member: MemberInfo) -> dict[str, str | None]:
    """The member's /hoso answers, as the deadline rules read them."""
    return {step.field: getattr(member, step.field) for step in PROFILE_STEPS}


def _feedback_buttons(message_id: int) -> tuple[Button, ...]:
    return (
        Button("👍 Hữu ích", f"fb:up:{message_id}"),
        Button("👎 Chưa đúng", f"fb:down:{message_id}"),
    )


def _related_buttons(kb: KnowledgeBase, entry: Entry) -> tuple[Button, ...]:
    return tuple(Button(e.title, f"faq:{e.id}") for r in entry.related if (e := kb.get(r)))


def _answer_replies(answer: Answer, message_id: int) -> list[Reply]:
    """One reply per question answered; answers from the knowledge base or the law ask for 👍/👎."""
    replies = []
    for part, reply in zip(answer.answered, answer.to_replies(), strict=True):
        if part.kind in (AnswerKind.ENTRY, AnswerKind.SUGGESTED, AnswerKind.CLAUSE):
            reply = Reply(
                reply.text, (*_feedback_buttons(message_id), *reply.buttons), reply.citations
            )
        replies.append(reply)
    return replies


def _storable(text: str) -> str:
    """Text every database accepts and every screen shows as typed.

    No lone surrogates (from broken JSON), no NUL or other control characters, no
    bidirectional overrides or zero-width characters (``strip_invisible``).
    """
    return strip_invisible(text.encode("utf-8", "replace").decode("utf-8"))
