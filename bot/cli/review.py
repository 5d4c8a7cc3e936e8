"""``coopbot review list|show|label|skip``: the questions the bot answered badly.

The admin's loop on the command line: look at what members asked that the
bot could not answer well, label it, then retrain, and deploy or roll back
with ``coopbot nlu retrain|models|rollback`` (bot/cli/nlu.py).
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from bot.cli.context import cli_engine, cli_settings
from bot.clock import format_timestamp
from bot.nlu_model.review_queue import ReviewGroup, ReviewQueue
from bot.replies import shorten
from bot.settings import Settings
from nlu.build import TRAIN_DIR, load_examples

__all__ = ["By", "operator_name", "review_app"]

review_app = typer.Typer(
    no_args_is_help=True, help="Review questions the bot answered badly and label them."
)
_DECIDED = {
    "new_entry": "Cần thêm mục mới vào cơ sở tri thức",
    "irrelevant": "Không liên quan",
    "labelled": "Đã gán nhãn",
}

GroupId = Annotated[int, typer.Argument(help="The group's number, as `review list` shows it.")]
By = Annotated[
    str | None, typer.Option("--by", help="Who decides (default: the system user name).")
]


def operator_name(value: str | None) -> str:
    """Who decides: ``--by`` (trimmed, at most 100 characters) or ``cli:`` and the user name."""
    if value and value.strip():
        return value.strip()[:100]
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def _queue(settings: Settings, engine: object) -> ReviewQueue:
    return ReviewQueue(engine, settings.reviewed_data, load_examples(TRAIN_DIR).keys())  # type: ignore[arg-type]


def _candidates(group: ReviewGroup) -> str:
    return ", ".join(f"{name} {score:.0%}" for name, score in group.candidates[:3]) or "-"


def _find(queue: ReviewQueue, group_id: int) -> ReviewGroup:
    group = queue.group(group_id)
    if group is None:
        typer.echo(f"Không có nhóm #{group_id} đang chờ xem xét (đã xử lý, hoặc sai số).", err=True)
        raise typer.Exit(1)
    return group


@review_app.command("list")
def review_list(
    show_all: Annotated[
        bool, typer.Option("--all", help="Also the groups skipped before.")
    ] = False,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only questions decided so: new_entry (need an entry), irrelevant, labelled.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many groups.", min=1)] = 20,
) -> None:
    """The groups of questions waiting for review, most asked first."""
    if status is not None and status not in _DECIDED:
        typer.echo(f"--status là một trong: {', '.join(_DECIDED)}.", err=True)
        raise typer.Exit(2)
    settings = cli_settings()
    with cli_engine() as engine:
        statuses = ("open", "skipped") if show_all else ("open",)
        groups = _queue(settings, engine).groups((status,) if status else statuses)
    if not groups:
        typer.echo(_DECIDED[status] + ": không có câu nào." if status else
                   "Không có câu hỏi nào cần xem xét.")  # fmt: skip
        return
    total = sum(g.count for g in groups)
    if status:
        typer.echo(f"{_DECIDED[status]}: {len(groups)} nhóm, {total} câu hỏi:")
    else:
        typer.echo(f"{len(groups)} nhóm, {total} câu hỏi chờ xem xét:")
    for group in groups[:limit]:
        skipped = " [đã bỏ qua]" if group.status == "skipped" else ""
        typer.echo(
            f"#{group.id:<6} ×{group.count:<4} «{shorten(group.text, 70)}»{skipped}\n"
            f"         lý do: {group.reasons_text()}; gợi ý: {_candidates(group)}"
        )
    if len(groups) > limit:
        typer.echo(f"... và {len(groups) - limit} nhóm nữa (--limit).")


@review_app.command("show")
def review_show(group_id: GroupId) -> None:
    """Every question of one group, with the likeliest intents."""
    settings = cli_settings()
    with cli_engine() as engine:
        group = _find(_queue(settings, engine), group_id)
    typer.echo(f"Nhóm #{group.id}: hỏi {group.count} lần, từ {format_timestamp(group.first_at)} "
               f"đến {format_timestamp(group.last_at)}")  # fmt: skip
    typer.echo(f"Lý do: {group.reasons_text()}")
    typer.echo(f"Ý định gợi ý: {_candidates(group)}")
    for text in group.texts:
        typer.echo(f"  • {text}")


@review_app.command("label")
def review_label(
    group_id: GroupId,
    intent: Annotated[
        str | None, typer.Argument(help="The right intent (a knowledge entry id, out_of_scope...).")
    ] = None,
    new_entry: Annotated[
        bool, typer.Option("--new-entry", help="No entry answers it: one should be written.")
    ] = False,
    not_relevant: Annotated[
        bool, typer.Option("--not-relevant", help="Not a real question; drop it.")
    ] = False,
    by: By = None,
) -> None:
    """Label a group with its intent (it becomes training data), or mark it."""
    chosen = [x for x in (intent is not None, new_entry, not_relevant) if x]
    if len(chosen) != 1:
        typer.echo("Cần đúng một trong: INTENT, --new-entry, --not-relevant.", err=True)
        raise typer.Exit(2)
    settings = cli_settings()
    with cli_engine() as engine:
        queue = _queue(settings, engine)
        if intent is not None and intent not in queue.intents:
            near = sorted(i for i in queue.intents if intent.lower() in i)[:8]
            hint = f" Gần giống: {', '.join(near)}." if near else ""
            typer.echo(f"Không có ý định {intent!r}.{hint}", err=True)
            raise typer.Exit(2)
        group = _find(queue, group_id)
        if intent is not None:
            added = queue.label(group, intent, operator_name(by))
            typer.echo(
                f"Đã gán {group.count} câu của nhóm #{group.id} vào {intent} "
                f"({added} câu mẫu mới trong {settings.reviewed_data})."
            )
            typer.echo("Chạy `coopbot nlu retrain` để huấn luyện lại mô hình.")
            return
        status = "new_entry" if new_entry else "irrelevant"
        count = queue.decide(group, status, operator_name(by))
        what = "cần mục mới" if new_entry else "không liên quan"
        typer.echo(f"Đã đánh dấu {count} câu của nhóm #{group.id}: {what}.")


@review_app.command("skip")
def review_skip(group_id: GroupId, by: By = None) -> None:
    """Put a group aside (`review list --all` shows it again)."""
    settings = cli_settings()
    with cli_engine() as engine:
        queue = _queue(settings, engine)
        count = queue.decide(_find(queue, group_id), "skipped", operator_name(by))
    typer.echo(f"Đã bỏ qua {count} câu của nhóm #{group_id}.")
