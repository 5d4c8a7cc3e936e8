"""What every feature handler shares: the message types, the services and the registration.

A feature is a :class:`Handler`: the commands it answers (with aliases, the
roles allowed and the feature switch they need), the button payload prefixes
it answers (the text before the first ``:``) and its lines in ``/help``. The
router (:class:`bot.conversation.Conversation`) checks roles and switches
before it calls a handler, so handlers only do the work. Every handler
function gets the :class:`Services` of the turn, the member and the rest of
the text (command arguments, or the payload after the prefix).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from bot.answers import AnswerService
from bot.clock import utcnow
from bot.profile import PROFILE_STEPS, ProfileOptions
from bot.replies import Button, Reply
from bot.sending import Senders
from bot.store.admin_sessions import AdminSessionStore
from bot.store.broadcasts import BroadcastStore
from bot.store.handovers import HandoverStore
from bot.store.members import MemberInfo, MemberStore
from bot.store.messages import MessageLogStore
from bot.store.shares import ShareStore
from bot.store.subscriptions import SubscriptionStore
from bot.store.training import TrainingStore
from knowledge.base import KnowledgeBase
from scheduler.deadlines import Rule

if TYPE_CHECKING:
    from bot.handlers.review import ReviewChat

__all__ = [
    "ADMIN_ONLY",
    "STALE_CHOICE",
    "ButtonFn",
    "ButtonPrefix",
    "Command",
    "CommandFn",
    "Handler",
    "Incoming",
    "Services",
    "StaffDesk",
    "StaffFn",
    "entry_page",
    "profile_of",
    "stale",
]

log = logging.getLogger(__name__)

STALE_CHOICE: Final = "Lựa chọn này không còn hiệu lực. Gõ /help để xem các lệnh."
ADMIN_ONLY: Final = frozenset({"admin"})


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


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a handler may use; a feature whose store is None is switched off.

    ``on_reminders_changed(member_id)`` is awaited after a member's reminder
    choices or profile changed; ``clock`` gives the current time (tests);
    ``help_lines`` are the ``/help`` lines of the registered handlers, in order;
    ``public_url`` (``PUBLIC_BASE_URL``, no trailing slash) and ``telegram_username``
    (``TELEGRAM_BOT_USERNAME``) make share links; ``shares`` counts their opens.
    """

    answers: AnswerService
    kb: KnowledgeBase
    members: MemberStore
    messages: MessageLogStore
    handovers: HandoverStore
    options: ProfileOptions
    senders: Senders
    staff: StaffDesk = StaffDesk()
    deadline_rules: tuple[Rule, ...] = ()
    subscriptions: SubscriptionStore | None = None
    training: TrainingStore | None = None
    broadcasts: BroadcastStore | None = None
    review: ReviewChat | None = None
    on_reminders_changed: Callable[[int], Awaitable[object]] | None = None
    clock: Callable[[], dt.datetime] = utcnow
    help_lines: tuple[str, ...] = ()
    shares: ShareStore | None = None
    public_url: str = "http://127.0.0.1:8080"
    telegram_username: str | None = None
    admin_sessions: AdminSessionStore | None = None

    async def reminders_changed(self, member_id: int) -> None:
        """Let the reminder service plan what the new choice makes due; never fail the reply."""
        if self.on_reminders_changed is None:
            return
        try:
            await self.on_reminders_changed(member_id)
        except Exception:
            log.exception("planning reminders after a change failed (member %d)", member_id)


CommandFn = Callable[[Services, MemberInfo, str], Awaitable[list[Reply]]]
ButtonFn = Callable[[Services, MemberInfo, str], Awaitable[Reply]]
StaffFn = Callable[[Services, Incoming], Awaitable[list[Reply]]]


@dataclass(frozen=True, slots=True)
class Command:
    """A chat command ``/<name> [args]``; ``run`` gets the arguments.

    ``roles`` (None: everyone) and ``needs`` (the feature switch, None: always
    on) decide who may use it; to anyone else it is an unknown command.
    ``menu`` lets a ``cmd:<name>`` button run it (the name only, not aliases).
    """

    name: str
    run: CommandFn
    aliases: tuple[str, ...] = ()
    roles: frozenset[str] | None = None
    needs: Callable[[Services], bool] | None = None
    menu: bool = False

    def allows(self, services: Services, member: MemberInfo) -> bool:
        """Tell whether ``member`` may run the command now."""
        return _allowed(self.roles, self.needs, services, member)


@dataclass(frozen=True, slots=True)
class ButtonPrefix:
    """The button payloads ``<prefix>:<rest>``; ``run`` gets ``rest``.

    ``roles`` and ``needs`` as for :class:`Command`; a press nobody may make is
    answered as a stale choice.
    """

    prefix: str
    run: ButtonFn
    roles: frozenset[str] | None = None
    needs: Callable[[Services], bool] | None = None

    def allows(self, services: Services, member: MemberInfo) -> bool:
        """Tell whether ``member`` may press the button now."""
        return _allowed(self.roles, self.needs, services, member)


@dataclass(frozen=True, slots=True)
class Handler:
    """One feature family as the router sees it.

    ``on_text`` answers free text that is no command (one handler: questions);
    ``on_staff_chat`` answers messages in the staff chat (one handler: hand-over).
    """

    commands: tuple[Command, ...] = ()
    buttons: tuple[ButtonPrefix, ...] = ()
    help: tuple[str, ...] = ()
    on_text: CommandFn | None = None
    on_staff_chat: StaffFn | None = None


def stale() -> Reply:
    """Answer a button that no longer means anything."""
    return Reply(STALE_CHOICE, notice=True)


def profile_of(member: MemberInfo) -> dict[str, str | None]:
    """Return the member's /hoso answers, as the deadline rules and sessions read them."""
    return {step.field: getattr(member, step.field) for step in PROFILE_STEPS}


def _allowed(
    roles: frozenset[str] | None,
    needs: Callable[[Services], bool] | None,
    services: Services,
    member: MemberInfo,
) -> bool:
    return (roles is None or member.role in roles) and (needs is None or needs(services))


def entry_page(
    kb: KnowledgeBase, rest: str, *, size: int, open_prefix: str, page_prefix: str, back: Button
) -> tuple[str, tuple[Button, ...]] | None:
    """One page of a category's entries, for ``rest`` = ``<category key>:<page>``.

    Returns the header line (``<title> (trang 2/3)``) and the buttons: one per entry
    (``<open_prefix>:<id>``), previous and next (``<page_prefix>:<key>:<page>``), then
    ``back``; None for a category that is gone or empty.
    """
    key, _, page_text = rest.partition(":")
    entries = kb.in_category(key)
    if not entries:
        return None
    pages = (len(entries) + size - 1) // size
    page = min(int(page_text) if page_text.isdigit() else 0, pages - 1)
    shown = entries[page * size : (page + 1) * size]
    buttons = [Button(e.title, f"{open_prefix}:{e.id}") for e in shown]
    if page > 0:
        buttons.append(Button("◀ Trước", f"{page_prefix}:{key}:{page - 1}"))
    if page < pages - 1:
        buttons.append(Button("Sau ▶", f"{page_prefix}:{key}:{page + 1}"))
    buttons.append(back)
    return f"{kb.category_title(key)} (trang {page + 1}/{pages})", tuple(buttons)
