"""``/lichnop``: the tax and reporting deadlines ahead that the member's profile makes due."""

from __future__ import annotations

import datetime as dt
from typing import Final

from bot.clock import format_date, local
from bot.handlers.base import Command, Handler, Services, profile_of
from bot.replies import Button, Reply
from bot.store.members import MemberInfo
from scheduler.deadlines import due_dates

__all__ = ["HANDLER"]

DEADLINE_HORIZON: Final = dt.timedelta(days=122)
DEADLINES_SHOWN: Final = 6


async def show_deadlines(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """List the next deadlines with their legal basis (``/lichnop``)."""
    today = local(services.clock()).date()
    upcoming = due_dates(
        services.deadline_rules, today, today + DEADLINE_HORIZON, profile_of(member)
    )[:DEADLINES_SHOWN]
    if not upcoming:
        return [Reply("Mình chưa thấy hạn nộp nào trong 4 tháng tới với hồ sơ của bạn.")]
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
            lines.append("  Hạn này cần kiểm tra lại với cơ quan thuế; gõ /lienhe để hỏi cán bộ.")
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
    return [Reply("\n".join(lines), buttons)]


HANDLER: Final = Handler(
    commands=(Command("lichnop", show_deadlines, menu=True),),
    help=("• /lichnop: các hạn nộp thuế, báo cáo sắp tới của HTX bạn",),
)
