"""Reviewing questions and retraining in chat (admins only; the router checks the role).

``/xemxet`` shows the most asked group of questions waiting for review, with
the likeliest intents as buttons plus "new entry", "not relevant" and "skip";
each decision shows the next group. ``/xemxet <nhóm> <ý định>`` labels a group
with any intent. ``/huanluyen`` starts a retrain (:mod:`bot.nlu_model.retrain`) and
reports its result when done.

Payloads ``xx:<action>:<group id>[:<intent>]``::

    xx:l:<id>:<intent>   label     xx:n:<id>   needs a new entry
    xx:x:<id>            not relevant          xx:s:<id>   skip for now
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from bot.handlers.base import ADMIN_ONLY, ButtonPrefix, Command, Handler, Services
from bot.nlu_model.review_queue import ReviewGroup, ReviewQueue, person
from bot.replies import Button, Reply, shorten
from bot.store.members import MemberInfo
from knowledge.base import OUT_OF_SCOPE_INTENT, KnowledgeBase

__all__ = ["HANDLER", "ReviewChat"]

log = logging.getLogger(__name__)

STALE: Final = "Nhóm câu hỏi này đã được xử lý. Gõ /xemxet để xem nhóm tiếp theo."
CHOICES: Final = 3
_OTHER_NAMES: Final = {
    OUT_OF_SCOPE_INTENT: "Ngoài phạm vi (không thuộc lĩnh vực HTX)",
    "greet": "Chào hỏi",
    "thank": "Cảm ơn",
    "goodbye": "Tạm biệt",
    "bot_challenge": "Hỏi bot là ai",
    "help": "Cần hướng dẫn",
}
_DECISIONS: Final = {
    "n": ("new_entry", "📝 Đã ghi nhận: cần thêm mục mới vào cơ sở tri thức ({n} câu)."),
    "x": ("irrelevant", "🚫 Đã đánh dấu không liên quan ({n} câu)."),
    "s": ("skipped", "⏭ Đã bỏ qua nhóm này ({n} câu)."),
}


class ReviewChat:
    """The admin side of the review queue and of retraining, in chat."""

    def __init__(
        self,
        queue: ReviewQueue,
        kb: KnowledgeBase,
        retrain: Callable[[MemberInfo], Awaitable[Reply]] | None = None,
    ) -> None:
        """``retrain(member)`` starts a retrain and returns the acknowledgement."""
        self.queue = queue
        self.kb = kb
        self._retrain = retrain

    def intent_name(self, intent: str) -> str:
        """An intent as admins know it: its entry's title."""
        entry = self.kb.get(intent)
        if entry is not None:
            return entry.title
        return _OTHER_NAMES.get(intent, intent)

    async def command(self, member: MemberInfo, args: str) -> Reply:
        """``/xemxet`` (next group) or ``/xemxet <group> <intent>`` (label with any intent)."""
        parts = args.split()
        if not parts:
            return await self._next(prefix="")
        if len(parts) != 2 or not parts[0].lstrip("#").isdigit():
            return Reply(
                "Cách dùng: /xemxet để xem nhóm câu hỏi tiếp theo, hoặc "
                "/xemxet <số nhóm> <tên ý định> để gán nhãn bằng một ý định bất kỳ."
            )
        group = await asyncio.to_thread(self.queue.group, int(parts[0].lstrip("#")))
        if group is None:
            return Reply(STALE)
        if parts[1] not in self.queue.intents:
            return Reply(
                f"Không có ý định «{parts[1]}». Tên ý định là mã của mục trong cơ sở tri "
                "thức (ví dụ so_thanh_vien_toi_thieu) hoặc out_of_scope."
            )
        done = await self._label(member, group, parts[1])
        return await self._next(prefix=done + "\n\n", edit=False)

    async def button(self, member: MemberInfo, rest: str) -> Reply:
        """A decision button."""
        action, _, tail = rest.partition(":")
        id_text, _, intent = tail.partition(":")
        if not id_text.isdigit() or action not in ("l", *_DECISIONS):
            return Reply(STALE, notice=True)
        group = await asyncio.to_thread(self.queue.group, int(id_text))
        if group is None:
            return Reply(STALE, notice=True)
        if action == "l":
            if intent not in self.queue.intents:
                return Reply(STALE, notice=True)
            done = await self._label(member, group, intent)
        else:
            status, message = _DECISIONS[action]
            count = await asyncio.to_thread(self.queue.decide, group, status, person(member))
            done = message.format(n=count)
        return await self._next(prefix=done + "\n\n", edit=True)

    async def retrain(self, member: MemberInfo) -> Reply:
        """``/huanluyen``."""
        if self._retrain is None:
            return Reply("Huấn luyện lại chưa được bật trên hệ thống này.")
        return await self._retrain(member)

    async def _label(self, member: MemberInfo, group: ReviewGroup, intent: str) -> str:
        added = await asyncio.to_thread(self.queue.label, group, intent, person(member))
        return (
            f"✅ Đã gán {group.count} câu vào «{self.intent_name(intent)}» "
            f"({added} câu mẫu mới). Gõ /huanluyen để huấn luyện lại mô hình."
        )

    async def _next(self, *, prefix: str, edit: bool = False) -> Reply:
        groups = await asyncio.to_thread(self.queue.groups)
        if not groups:
            return Reply(prefix + "🎉 Không còn câu hỏi nào cần xem xét.", edit=edit)
        group = groups[0]
        questions = sum(g.count for g in groups)
        lines = [
            f"{prefix}🔎 Nhóm #{group.id}: hỏi {group.count} lần "
            f"(còn {len(groups)} nhóm, {questions} câu chờ xem xét)",
            f"«{shorten(group.text, 300)}»",
            f"Lý do: {group.reasons_text()}",
        ]
        others = [t for t in group.texts if t != group.text][:3]
        if others:
            lines.append("Cách hỏi khác:")
            lines += [f"• {shorten(t, 120)}" for t in others]
        lines.append(f"\nChọn ý định đúng. Ý định khác: gõ /xemxet {group.id} <tên ý định>.")
        buttons = [
            Button(f"{self.intent_name(name)} ({score:.0%})", f"xx:l:{group.id}:{name}")
            for name, score in group.candidates[:CHOICES]
            if name in self.queue.intents
        ]
        buttons += [
            Button("📝 Cần mục mới", f"xx:n:{group.id}"),
            Button("🚫 Không liên quan", f"xx:x:{group.id}"),
            Button("⏭ Bỏ qua", f"xx:s:{group.id}"),
        ]
        return Reply("\n".join(lines), tuple(buttons), edit=edit)


async def next_group(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Show the next group to review, or label one (``/xemxet [nhóm ý định]``)."""
    return [await _review(services).command(member, args)]


async def retrain(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Start a retrain of the NLU model (``/huanluyen``)."""
    return [await _review(services).retrain(member)]


async def decision_button(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Label, skip or set aside a group (``xx:<action>:<id>[:<intent>]``)."""
    return await _review(services).button(member, rest)


def _review(services: Services) -> ReviewChat:
    assert services.review is not None  # checked by the router (``needs``)
    return services.review


def _switched_on(services: Services) -> bool:
    return services.review is not None


HANDLER: Final = Handler(
    commands=(
        Command("xemxet", next_group, roles=ADMIN_ONLY, needs=_switched_on),
        Command("huanluyen", retrain, roles=ADMIN_ONLY, needs=_switched_on),
    ),
    buttons=(ButtonPrefix("xx", decision_button, roles=ADMIN_ONLY, needs=_switched_on),),
)
