"""The channel-neutral conversation core: an ``Incoming`` message in, a list of ``Reply`` out.

Channels only parse and render; the feature handlers (:mod:`bot.handlers`)
decide what to answer. The core is the router: it makes the text storable,
sends messages in the staff chat to the hand-over handler, records the
member, then dispatches a command (``/faq``) to the handler registered for
its name, a button press (``faq:<id>``) to the handler registered for the
payload's prefix (the text before the first ``:``) and anything else to the
question handler. Who may use a command or a button is declared where it is
registered and checked here.

The core never raises to a channel: an internal fault is logged with its
traceback and the member gets a short apology.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final, TypeVar

from bot.answers import AnswerService
from bot.clock import utcnow
from bot.handlers import HANDLERS
from bot.handlers.base import (
    ButtonPrefix,
    Command,
    CommandFn,
    Handler,
    Incoming,
    Services,
    StaffDesk,
    StaffFn,
    stale,
)
from bot.handlers.review import ReviewChat
from bot.profile import ProfileOptions
from bot.replies import Reply
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
from nlu.textnorm import strip_invisible
from scheduler.deadlines import Rule

__all__ = ["APOLOGY", "UNSUPPORTED", "Conversation", "Incoming", "StaffDesk"]

log = logging.getLogger(__name__)

APOLOGY: Final = (
    "Xin lỗi, hệ thống đang gặp sự cố nên mình chưa trả lời được. Bạn thử lại sau ít phút, "
    "hoặc gõ /lienhe để hỏi cán bộ Liên minh HTX."
)
UNSUPPORTED: Final = (
    "Mình mới đọc được tin nhắn chữ. Bạn gõ câu hỏi giúp mình nhé, hoặc gõ /help để xem hướng dẫn."
)

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]{1,64})?(?:\s+(.*))?$", re.S)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Routes:
    """The tables the router reads, built once from the registered handlers."""

    commands: dict[str, Command]
    menu: frozenset[str]  # the commands a ``cmd:<name>`` button may run
    buttons: dict[str, ButtonPrefix]
    on_text: CommandFn
    on_staff_chat: StaffFn | None

    @classmethod
    def of(cls, handlers: Sequence[Handler]) -> _Routes:
        """Build the tables; raise ``ValueError`` on a clash (a name or prefix taken twice)."""
        commands: dict[str, Command] = {}
        buttons: dict[str, ButtonPrefix] = {}
        for handler in handlers:
            for command in handler.commands:
                for name in (command.name, *command.aliases):
                    _add(commands, name, command)
            for button in handler.buttons:
                _add(buttons, button.prefix, button)
        on_text = [h.on_text for h in handlers if h.on_text is not None]
        on_staff = [h.on_staff_chat for h in handlers if h.on_staff_chat is not None]
        if len(on_text) != 1 or len(on_staff) > 1:
            raise ValueError("one handler answers free text, at most one the staff chat")
        menu = frozenset(c.name for h in handlers for c in h.commands if c.menu)
        return cls(commands, menu, buttons, on_text[0], on_staff[0] if on_staff else None)


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
        shares: ShareStore | None = None,
        public_url: str = "http://127.0.0.1:8080",
        telegram_username: str | None = None,
        admin_sessions: AdminSessionStore | None = None,
        handlers: Sequence[Handler] = HANDLERS,
    ) -> None:
        """Wires the core to its services and serves ``handlers``.

        ``on_reminders_changed(member_id)`` is awaited after a member's reminder
        choices or profile changed (the reminder service plans what is now due);
        ``clock`` gives the current time (tests). A feature whose store is None
        is switched off.
        """
        self._routes = _Routes.of(handlers)
        self.services = Services(
            answers=answers,
            kb=kb,
            members=members,
            messages=messages,
            handovers=handovers,
            options=profile_options,
            senders=senders,
            staff=staff or StaffDesk(),
            deadline_rules=tuple(deadline_rules),
            subscriptions=subscriptions,
            training=training,
            broadcasts=broadcasts,
            review=review,
            on_reminders_changed=on_reminders_changed,
            clock=clock or utcnow,
            help_lines=tuple(line for handler in handlers for line in handler.help),
            shares=shares,
            public_url=public_url,
            telegram_username=telegram_username,
            admin_sessions=admin_sessions,
        )

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
        staff = self.services.staff
        return staff.chat_id is not None and (channel, chat_id) == (staff.channel, staff.chat_id)

    async def _dispatch(self, incoming: Incoming) -> list[Reply]:
        services = self.services
        incoming = replace(
            incoming,
            text=_storable(incoming.text),
            display_name=_storable(incoming.display_name) if incoming.display_name else None,
        )
        if self.is_staff_chat(incoming.channel, incoming.chat_id):
            on_staff_chat = self._routes.on_staff_chat
            return await on_staff_chat(services, incoming) if on_staff_chat else []
        member = await asyncio.to_thread(
            services.members.touch,
            incoming.channel,
            incoming.user_id,
            incoming.chat_id,
            incoming.display_name,
            incoming.bot_id,
        )
        if incoming.payload is not None:
            return await self._button(services, member, incoming.payload)
        match = _COMMAND.match(incoming.text.strip())
        if match:
            name, args = match.group(1).lower(), (match.group(2) or "").strip()
            return await self._command(services, member, name, args)
        return await self._routes.on_text(services, member, incoming.text)

    async def _command(
        self, services: Services, member: MemberInfo, name: str, args: str
    ) -> list[Reply]:
        command = self._routes.commands.get(name)
        if command is None or not command.allows(services, member):
            return [Reply(f"Mình chưa hiểu lệnh /{name}. Gõ /help để xem các lệnh.")]
        return await command.run(services, member, args)

    async def _button(self, services: Services, member: MemberInfo, payload: str) -> list[Reply]:
        prefix, _, rest = payload.partition(":")
        if prefix == "cmd":
            if rest in self._routes.menu:
                return await self._command(services, member, rest, "")
            return [stale()]
        button = self._routes.buttons.get(prefix)
        if button is None or not button.allows(services, member):
            return [stale()]
        return [await button.run(services, member, rest)]


def _add(table: dict[str, T], key: str, value: T) -> None:
    if key in table:
        raise ValueError(f"{key!r} is registered twice")
    table[key] = value


def _storable(text: str) -> str:
    """Text every database accepts and every screen shows as typed.

    No lone surrogates (from broken JSON), no NUL or other control characters, no
    bidirectional overrides or zero-width characters (``strip_invisible``).
    """
    return strip_invisible(text.encode("utf-8", "replace").decode("utf-8"))
