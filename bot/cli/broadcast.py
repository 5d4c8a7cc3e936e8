"""``coopbot broadcast send|status|cancel|list``: staff announcements from the console.

The running assistant's outbox worker sends what ``send`` enqueues (within
``OUTBOX_POLL_SECONDS``), paced per channel.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.context import cli_engine, fail
from bot.clock import format_timestamp
from bot.profile import load_profile_options
from bot.store.broadcasts import BroadcastError, BroadcastStore, Segment, progress_line
from bot.store.outbox import Outbox

__all__ = ["broadcast_app"]

broadcast_app = typer.Typer(no_args_is_help=True, help="Staff announcements to members.")


@broadcast_app.command("send")
def broadcast_send(
    text_file: Annotated[
        Path, typer.Option("--text-file", help="Nội dung (UTF-8).", exists=True, dir_okay=False)
    ],
    segment: Annotated[
        list[str] | None,
        typer.Option(
            "--segment",
            help="KEY=VALUE[,VALUE] with KEY province, coop_type, role, channel or "
            "subscribed=yes|no (repeatable; none: everyone).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Chỉ đếm người nhận, không gửi.")
    ] = False,
    by: Annotated[str | None, typer.Option("--by", help="Người gửi.")] = None,
) -> None:
    """Send an announcement to a segment (or count its recipients with --dry-run)."""
    options = load_profile_options()
    try:
        chosen = Segment.parse(segment or [], options)
    except BroadcastError as exc:
        raise fail(str(exc), 2) from exc
    text = text_file.read_text(encoding="utf-8")
    with cli_engine() as engine:
        store = BroadcastStore(engine, Outbox(engine))
        if dry_run:
            count = store.count(chosen)
            typer.echo(f"Nhóm nhận: {chosen.describe(options)}")
            typer.echo(f"Sẽ gửi tới {count:,} thành viên (chạy thử, chưa gửi gì).")
            return
        try:
            created = store.create(text, chosen, created_by=by or "cli")
        except BroadcastError as exc:
            raise fail(str(exc)) from exc
    typer.echo(
        f"Đã tạo thông báo #{created.id} tới {created.recipients:,} thành viên "
        f"({chosen.describe(options)}). Xem tiến độ: coopbot broadcast status {created.id}"
    )


@broadcast_app.command("status")
def broadcast_status(
    broadcast_id: Annotated[
        int | None, typer.Argument(help="Mã thông báo (mặc định: mới nhất).")
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Cập nhật mỗi giây đến khi xong.")] = False,
) -> None:
    """Show a broadcast's progress (sent, failed, blocked, pending, rate, time left)."""
    with cli_engine() as engine:
        store = BroadcastStore(engine, Outbox(engine))
        if broadcast_id is None:
            newest = store.latest(1)
            if not newest:
                raise fail("Chưa có thông báo nào.")
            broadcast_id = newest[0].id
        while True:
            progress = store.progress(broadcast_id)
            if progress is None:
                raise fail(f"Không có thông báo #{broadcast_id}.")
            line = f"#{broadcast_id} {progress_line(progress)}"
            if not watch or progress.broadcast.status != "sending":
                typer.echo(line)
                return
            typer.echo("\r" + line, nl=False)
            time.sleep(1.0)


@broadcast_app.command("cancel")
def broadcast_cancel(broadcast_id: Annotated[int, typer.Argument(help="Mã thông báo.")]) -> None:
    """Stop a running broadcast: messages not yet sent are dropped."""
    with cli_engine() as engine:
        try:
            dropped = BroadcastStore(engine, Outbox(engine)).cancel(broadcast_id)
        except BroadcastError as exc:
            raise fail(str(exc)) from exc
    typer.echo(f"Đã dừng thông báo #{broadcast_id}; {dropped:,} tin chưa gửi sẽ không được gửi.")


@broadcast_app.command("list")
def broadcast_list() -> None:
    """The latest broadcasts."""
    options = load_profile_options()
    with cli_engine() as engine:
        latest = BroadcastStore(engine, Outbox(engine)).latest(20)
    if not latest:
        typer.echo("Chưa có thông báo nào.")
    for b in latest:
        first_line = " ".join(b.text.split())[:50]
        typer.echo(
            f"#{b.id:<4} {format_timestamp(b.created_at)}  {b.status:<9} "
            f"{b.recipients:>7,}  {b.segment.describe(options)}  «{first_line}»"
        )
