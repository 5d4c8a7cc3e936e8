"""``coopbot stats [--days N] [--province P]``: the dashboard's overview as text, sparklines too."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Annotated, Final

import typer

from bot.cli.context import cli_engine, fail
from bot.clock import format_date, local, utcnow
from bot.profile import load_profile_options
from bot.store import stats as store
from bot.web.dashboard import CHANNEL_LABELS, OUTCOME_LABELS

__all__ = ["render_overview", "sparkline", "stats"]

SPARKS: Final = "▁▂▃▄▅▆▇█"
MAX_DAYS: Final = 3650


def sparkline(values: Sequence[int]) -> str:
    """One bar per value, scaled to the largest: ``▁`` for 0, ``█`` for the largest."""
    top = max(values, default=0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[math.ceil(v * (len(SPARKS) - 1) / top)] for v in values)


def render_overview(
    *,
    days: list[dt.date],
    per_day: Sequence[store.ChannelDay],
    outcomes: store.Outcomes,
    active: int,
    province: str | None,
) -> str:
    """The overview's text: window, totals, outcome shares, 👍/👎 and a sparkline per channel."""
    place = f", {province}" if province else ", tất cả tỉnh/thành"
    lines = [
        f"📊 Thống kê {len(days)} ngày ({format_date(days[0])} – {format_date(days[-1])}){place}",
        f"Câu hỏi: {outcomes.questions:,} · Thành viên đã dùng: {active:,} · "
        f"👍 {outcomes.thumbs_up:,} · 👎 {outcomes.thumbs_down:,}",
        "",
        "Kết quả trả lời:",
    ]
    width = max(len(label) for label in OUTCOME_LABELS.values())
    for kind in store.OUTCOMES:
        count = outcomes.counts.get(kind, 0)
        share = f"{outcomes.share(kind):6.1%}"
        lines.append(f"  {OUTCOME_LABELS[kind]:<{width}} {count:>7,} {share}")
    lines += ["", f"Câu hỏi mỗi ngày theo kênh ({format_date(days[0])} → {format_date(days[-1])}):"]
    series: dict[str, dict[dt.date, int]] = {}
    for row in per_day:
        series.setdefault(row.channel, {})[row.day] = row.count
    if not series:
        lines.append("  (chưa có câu hỏi nào)")
    for channel in sorted(series):
        values = [series[channel].get(day, 0) for day in days]
        label = CHANNEL_LABELS.get(channel, channel)
        lines.append(
            f"  {label:<9} {sparkline(values)}  tổng {sum(values):,}, cao nhất {max(values):,}/ngày"
        )
    return "\n".join(lines)


def stats(
    days: Annotated[int, typer.Option("--days", help="Số ngày gần nhất (mặc định 30).")] = 30,
    province: Annotated[
        str | None, typer.Option("--province", help="Mã hoặc tên tỉnh/thành, ví dụ: ha_noi.")
    ] = None,
) -> None:
    """Print the overview of the last N days: questions, outcomes, 👍/👎, active members."""
    if not 1 <= days <= MAX_DAYS:
        raise fail(f"Lỗi: --days phải từ 1 đến {MAX_DAYS}, nhận được {days}.", 2)
    code: str | None = None
    label: str | None = None
    if province is not None:
        options = load_profile_options()
        code = options.find("province", province)
        if code is None:
            raise fail(
                f"Lỗi: không có tỉnh/thành “{province}”. Dùng mã hoặc tên trong danh sách "
                "34 tỉnh/thành, ví dụ: ha_noi hoặc “Hà Nội”.",
                2,
            )
        label = options.label("province", code)
    since, until = store.days_window(days, utcnow())
    first = local(since).date()
    window = [first + dt.timedelta(days=i) for i in range(days)]
    with cli_engine() as engine:
        per_day = store.questions_per_day(engine, since, until, code)
        outcomes = store.outcomes(engine, since, until, code)
        active = store.active_members(engine, since, until, code)
    typer.echo(
        render_overview(
            days=window, per_day=per_day, outcomes=outcomes, active=active, province=label
        )
    )
