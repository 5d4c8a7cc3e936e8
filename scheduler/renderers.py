"""What each outbox row says, per kind: the renderers the delivery worker is given.

A renderer reads what the row refers to as it is now (the member, the rule,
the session, the broadcast) and returns the message, or None and why the row is
no longer wanted (the member turned it off, the session moved or was cancelled,
the broadcast was cancelled, ...); such a row is dropped instead of sent.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from sqlalchemy import exists, select
from sqlalchemy.engine import Engine

from bot.clock import VIETNAM, aware, format_date
from bot.profile import ProfileOptions
from bot.replies import Button, Reply, shorten
from bot.store.broadcasts import BROADCAST, render_broadcast
from bot.store.db import Broadcast, Member, ReminderSubscription, TrainingRegistration
from bot.store.members import PROFILE_FIELDS
from bot.store.outbox import DEADLINE, SESSION, SESSION_AFTER, SESSION_CHANGE, OutboxItem
from bot.store.training import TrainingStore
from bot.store.training_sessions import SessionInfo
from knowledge.base import Entry, KnowledgeBase, load_knowledge_base
from scheduler.deadlines import Rule, due_dates
from scheduler.delivery import Renderer
from scheduler.training import describe, format_moment

if TYPE_CHECKING:
    from bot.answers.links import EntryLinks

__all__ = ["EntryLinksFn", "OutboxRenderers", "render_after_session", "render_deadline"]

# The links to a knowledge entry (web page, Telegram deep link): ``bot.answers.links``.
EntryLinksFn = Callable[[str], "EntryLinks"]

_DEADLINE_BUTTONS: Final = (
    Button("🗓 Xem lịch nộp", "cmd:lichnop"),
    Button("🔔 Đổi nhắc hạn", "cmd:nhacnho"),
)


def render_deadline(rule: Rule, period: str, due: dt.date, nominal: dt.date, today: dt.date) -> str:
    """A deadline reminder's text."""
    left = (due - today).days
    when = "hôm nay là hạn cuối" if left <= 0 else f"còn {left} ngày"
    lines = [
        f"⏰ Nhắc hạn: {rule.title}",
        f"Kỳ: {period}",
        f"Hạn cuối: {format_date(due)} ({when})",
        f"Căn cứ: {rule.basis_text(due)}",
    ]
    if due != nominal:
        lines.append(
            f"(Hạn gốc {format_date(nominal)} là ngày nghỉ nên được tính sang ngày làm việc "
            "liền kề sau đó.)"
        )
    if rule.unconfirmed:
        lines.append("Hạn này chưa được xác nhận chắc chắn cho HTX; gõ /lienhe để hỏi cán bộ.")
    lines.append("\nĐổi hoặc tắt nhắc hạn: /nhacnho")
    return "\n".join(lines)


def render_after_session(
    session: SessionInfo, entries: Sequence[Entry], links: EntryLinksFn | None
) -> Reply:
    """The entries of a session for its members: titles, links, and a button to each."""
    lines = [
        f"📚 Cảm ơn bạn đã tham gia buổi tập huấn “{session.title}”. Các mục hỏi đáp của "
        "buổi học để bạn xem lại:"
    ]
    for number, entry in enumerate(entries, start=1):
        lines.append(f"\n{number}. {entry.title}")
        try:
            found = links(entry.id) if links is not None else None
        except ValueError:  # no link can carry this id: the button below still opens it
            found = None
        if found is not None:
            lines.append(f"🌐 {found.web}")
            if found.telegram is not None:
                lines.append(f"✈️ Telegram: {found.telegram}")
    lines.append("\nBấm một mục bên dưới để đọc ngay tại đây, hoặc gõ câu hỏi nếu còn thắc mắc.")
    buttons = tuple(Button(shorten(e.title, 60), f"faq:{e.id}") for e in entries)
    return Reply("\n".join(lines), buttons)


class OutboxRenderers:
    """The renderers of deadline reminders, training session messages and broadcasts."""

    def __init__(
        self,
        engine: Engine,
        rules: Sequence[Rule],
        training: TrainingStore,
        options: ProfileOptions | None,
        clock: Callable[[], dt.datetime],
        *,
        kb: KnowledgeBase | None = None,
        links: EntryLinksFn | None = None,
    ) -> None:
        """Reads members from ``engine``, rules from ``rules``, sessions from ``training``.

        ``kb``: the entries a session's members get after it (None: loaded when first
        needed); ``links``: their links (None: titles and buttons only).
        """
        self._engine = engine
        self.rules = {rule.id: rule for rule in rules}
        self.training = training
        self.options = options
        self.clock = clock
        self._kb = kb
        self.links = links

    @functools.cached_property
    def kb(self) -> KnowledgeBase:
        """The knowledge base (the one given, or the repository's)."""
        return self._kb if self._kb is not None else load_knowledge_base()

    def by_kind(self) -> Mapping[str, Renderer]:
        """The renderer of each outbox kind."""
        return {
            DEADLINE: self.deadline,
            SESSION: self.session,
            SESSION_CHANGE: self.session,
            SESSION_AFTER: self.after_session,
            BROADCAST: self.broadcast,
        }

    def broadcast(self, item: OutboxItem) -> tuple[Reply | None, str]:
        """A staff announcement, unless cancelled or the member opted out."""
        with self._engine.connect() as connection:
            found = connection.execute(
                select(Broadcast.status, Broadcast.text).where(Broadcast.id == int(item.ref))
            ).one_or_none()
            member = connection.execute(
                select(Member.active, Member.consent_broadcasts).where(Member.id == item.member_id)
            ).one_or_none()
        if found is None or found.status == "cancelled":
            return None, "the broadcast was cancelled"
        if member is None or not member.active:
            return None, "member inactive or gone"
        if not member.consent_broadcasts:
            return None, "the member turned announcements off"
        return Reply(render_broadcast(found.text)), ""

    def deadline(self, item: OutboxItem) -> tuple[Reply | None, str]:
        """A deadline reminder, while the member wants it and the rule applies."""
        rule = self.rules.get(item.ref)
        if rule is None:
            return None, "the rule no longer exists"
        with self._engine.connect() as connection:
            member = connection.execute(
                select(
                    Member.active,
                    Member.consent_reminders,
                    *(getattr(Member, name) for name in PROFILE_FIELDS),
                    exists().where(
                        ReminderSubscription.member_id == Member.id,
                        ReminderSubscription.rule_id == rule.id,
                    ),
                ).where(Member.id == item.member_id)
            ).one_or_none()
        if member is None or not member[0]:
            return None, "member inactive or gone"
        if not member[1] or not member[-1]:
            return None, "the member no longer wants this reminder"
        profile = dict(zip(PROFILE_FIELDS, member[2:-1], strict=True))
        if not rule.applies(profile):
            return None, "the rule no longer applies to the member's profile"
        due_day = dt.date.fromisoformat(item.occurrence)
        found = [d for d in due_dates([rule], due_day, due_day) if d.rule.id == rule.id]
        if not found:
            return None, "the due date moved (rule file changed)"
        due = found[0]
        today = self.clock().astimezone(VIETNAM).date()
        text = render_deadline(rule, due.period, due.date, due.nominal, today)
        return Reply(text, _DEADLINE_BUTTONS), ""

    def session(self, item: OutboxItem) -> tuple[Reply | None, str]:
        """A session reminder, change or cancellation, while the member holds the seat."""
        session = self.training.get(int(item.ref))
        if session is None:
            return None, "the session no longer exists"
        active, seat = self._seat(session.id, item.member_id)
        if not active:
            return None, "member inactive or gone"
        if item.kind == SESSION:
            if not seat:
                return None, "the member gave the seat back"
            if session.status != "scheduled":
                return None, "the session was cancelled"
            if aware(session.starts_at).isoformat() != item.occurrence:
                return None, "the session moved"
            return self._session_reminder(session, item.slot), ""
        if item.slot == "cancelled":
            text = (
                f"❌ Buổi tập huấn bạn đã đăng ký đã bị huỷ:\n{session.title}, "
                f"{format_moment(session.starts_at)}.\n\n"
                "Xin lỗi vì sự bất tiện. Xem các buổi khác: /taphuan"
            )
            return Reply(text, (Button("📅 Các buổi tập huấn", "cmd:taphuan"),)), ""
        if not seat:
            return None, "the member gave the seat back"
        text = "📢 Buổi tập huấn bạn đã đăng ký có thay đổi. Thông tin mới:\n\n" + describe(
            session, self._province_label
        )
        return Reply(text, _session_buttons(session)), ""

    def after_session(self, item: OutboxItem) -> tuple[Reply | None, str]:
        """A session's entries, an hour after it ended, to the members who held a seat."""
        session = self.training.get(int(item.ref))
        if session is None:
            return None, "the session no longer exists"
        if session.status != "scheduled":
            return None, "the session was cancelled"
        active, seat = self._seat(session.id, item.member_id)
        if not active:
            return None, "member inactive or gone"
        if not seat:
            return None, "the member gave the seat back"
        entries = [entry for i in session.entries if (entry := self.kb.get(i)) is not None]
        if not entries:
            return None, "no entries attached to the session"
        return render_after_session(session, entries, self.links), ""

    def _seat(self, session_id: int, member_id: int) -> tuple[bool, bool]:
        """Whether the member is active, and holds a seat in the session."""
        with self._engine.connect() as connection:
            active = connection.scalar(select(Member.active).where(Member.id == member_id))
            seat = connection.scalar(
                select(
                    exists().where(
                        TrainingRegistration.session_id == session_id,
                        TrainingRegistration.member_id == member_id,
                    )
                )
            )
        return bool(active), bool(seat)

    def _session_reminder(self, session: SessionInfo, slot: str) -> Reply:
        when = "ngày mai" if slot == "1d" else "sau khoảng 1 giờ nữa"
        head = f"⏰ Nhắc lịch tập huấn: buổi học bắt đầu {when}."
        return Reply(
            f"{head}\n\n{describe(session, self._province_label)}", _session_buttons(session)
        )

    def _province_label(self, code: str) -> str | None:
        return self.options.label("province", code) if self.options is not None else None


def _session_buttons(session: SessionInfo) -> tuple[Button, ...]:
    return (
        Button("❌ Huỷ đăng ký", f"th:u:{session.id}"),
        Button("📅 Các buổi tập huấn", "cmd:taphuan"),
    )
