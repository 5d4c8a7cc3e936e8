"""The member's cooperative profile: ``/hoso`` shows it, ``hs:`` buttons fill it in step by step.

Payloads: ``hs:start`` (the first question) and ``hs:<step key>:<code>``
(``-`` skips the step). Each answer is stored at once, so a member may stop
anywhere; a changed profile may change which reminders are due.
"""

from __future__ import annotations

import asyncio
from typing import Final

from bot.handlers.base import ButtonPrefix, Command, Handler, Services, stale
from bot.profile import PROFILE_STEPS, ProfileOptions, ProfileStep
from bot.replies import Button, Reply
from bot.store.members import MemberInfo

__all__ = ["HANDLER", "profile_lines"]


async def show_profile(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Show the member's profile with an update button (``/hoso``)."""
    return [_summary(services.options, member)]


async def profile_step(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Store one answer and ask the next question (``hs:start``, ``hs:<key>:<code>``)."""
    options = services.options
    if rest == "start":
        return _question(options, PROFILE_STEPS[0])
    key, _, code = rest.partition(":")
    index = next((i for i, s in enumerate(PROFILE_STEPS) if s.key == key), None)
    if index is None:
        return stale()
    step = PROFILE_STEPS[index]
    if code != "-":
        if not options.is_valid(step.field, code):
            return stale()
        member = await asyncio.to_thread(
            services.members.update_profile, member.id, **{step.field: code}
        )
        await services.reminders_changed(member.id)
    if index + 1 < len(PROFILE_STEPS):
        return _question(options, PROFILE_STEPS[index + 1])
    summary = _summary(options, member)
    return Reply("✅ Đã lưu hồ sơ.\n\n" + summary.text, summary.buttons, edit=True)


def profile_lines(options: ProfileOptions, member: MemberInfo) -> list[str]:
    """Return one line per profile answer ("• Tỉnh/thành: Hà Nội")."""
    lines = []
    for step in PROFILE_STEPS:
        value = options.label(step.field, getattr(member, step.field))
        lines.append(f"• {step.summary}: {value or 'chưa khai báo'}")
    return lines


def _summary(options: ProfileOptions, member: MemberInfo) -> Reply:
    lines = ["👤 Hồ sơ HTX của bạn:", *profile_lines(options, member), ""]
    lines.append("Hồ sơ giúp mình nhắc đúng hạn nộp và gửi thông báo phù hợp với HTX của bạn.")
    return Reply("\n".join(lines), (Button("✏️ Cập nhật hồ sơ", "hs:start"),))


def _question(options: ProfileOptions, step: ProfileStep) -> Reply:
    buttons = [Button(c.label, f"hs:{step.key}:{c.code}") for c in options.choices(step.field)]
    buttons.append(Button("Bỏ qua", f"hs:{step.key}:-"))
    return Reply(step.question, tuple(buttons), edit=True)


HANDLER: Final = Handler(
    commands=(Command("hoso", show_profile, menu=True),),
    buttons=(ButtonPrefix("hs", profile_step),),
    help=("• /hoso: khai báo tỉnh, loại hình HTX, vai trò, kỳ khai thuế",),
)
