"""``coopbot training add|edit|list|cancel|attendees``: training sessions, for staff.

These commands work on the database only; the running assistant's reminder
worker picks up what they put into the outbox (change and cancellation
messages) within ``OUTBOX_POLL_SECONDS``.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.context import cli_engine, fail
from bot.clock import VIETNAM, aware
from bot.profile import load_profile_options
from bot.store.outbox import Outbox
from bot.store.training import TrainingStore
from bot.store.training_sessions import SessionDraft, SessionInfo, TrainingError, entry_ids
from knowledge.base import load_knowledge_base
from scheduler.training import describe, end_moment, format_moment, parse_moment

__all__ = ["training_app"]

CSV_HEADER = (
    "member_id",
    "channel",
    "external_id",
    "display_name",
    "province",
    "coop_type",
    "registered_at",
)
training_app = typer.Typer(no_args_is_help=True, help="Training sessions (staff).")


def _code(field: str, label: str, typed: str | None) -> str | None:
    if typed is None or not typed.strip():
        return None
    code = load_profile_options().find(field, typed)
    if code is None:
        raise fail(f"{label} không có trong danh sách: {typed!r}.", 2)
    return code


def _describe(session: SessionInfo) -> str:
    options = load_profile_options()
    text = describe(session, lambda code: options.label("province", code))
    if session.entries:
        text += f"\nHỏi đáp gửi người đăng ký 1 giờ sau buổi học: {', '.join(session.entries)}"
    return text


def _entries(typed: str | None) -> dict[str, Any]:
    """``{"entries": (...)}`` when ``--entries`` was given (checked in the knowledge base)."""
    return {} if typed is None else {"entries": entry_ids(typed, load_knowledge_base())}


Title = Annotated[str | None, typer.Option("--title", help="Tiêu đề.")]
Start = Annotated[str | None, typer.Option("--start", help='Bắt đầu: "15/01/2027 08:00".')]
End = Annotated[
    str | None, typer.Option("--end", help='Kết thúc: "15/01/2027 11:00" hoặc "11:00".')
]
Place = Annotated[str | None, typer.Option("--place", help="Địa điểm.")]
Link = Annotated[str | None, typer.Option("--link", help="Đường dẫn học trực tuyến.")]
Province = Annotated[str | None, typer.Option("--province", help="Tỉnh (tên hoặc mã).")]
CoopType = Annotated[str | None, typer.Option("--coop-type", help="Loại hình HTX (tên hoặc mã).")]
Capacity = Annotated[int | None, typer.Option("--capacity", help="Số chỗ.", min=1, max=100_000)]
Description = Annotated[str | None, typer.Option("--description", help="Mô tả.")]
Entries = Annotated[
    str | None,
    typer.Option(
        "--entries",
        help="Mã các mục hỏi đáp, cách nhau bằng dấu phẩy: gửi người đăng ký 1 giờ sau buổi học "
        '(--entries "" bỏ hết).',
    ),
]
DescriptionFile = Annotated[
    Path | None,
    typer.Option("--description-file", help="Mô tả lấy từ tệp (UTF-8).", exists=True),
]


def _description(text: str | None, path: Path | None) -> str | None:
    if path is not None and text is not None:
        typer.echo("Chỉ dùng một trong --description và --description-file.", err=True)
        raise typer.Exit(2)
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError as exc:
            typer.echo(f"Tệp {path} không phải văn bản UTF-8; hãy lưu lại dạng UTF-8.", err=True)
            raise typer.Exit(2) from exc
        except OSError as exc:
            typer.echo(f"Không đọc được tệp {path}: {exc.strerror}.", err=True)
            raise typer.Exit(2) from exc
    return text


def _fields(
    title: str | None,
    start: str | None,
    end: str | None,
    capacity: int | None,
    place: str | None,
    link: str | None,
    province: str | None,
    coop_type: str | None,
    description: str | None,
    description_file: Path | None,
    current: SessionInfo | None,
) -> dict[str, Any]:
    """The session fields given on the command line (None: not given)."""
    values = {
        "title": title,
        "description": _description(description, description_file),
        "place": place,
        "online_url": link,
        "province": _code("province", "Tỉnh", province),
        "coop_type": _code("coop_type", "Loại hình", coop_type),
        "capacity": capacity,
        **_moments(start, end, current),
    }
    return {k: v for k, v in values.items() if v is not None}


def _moments(start: str | None, end: str | None, current: SessionInfo | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if start is not None:
        values["starts_at"] = parse_moment(start)
    if end is not None:
        base = values.get("starts_at") or (current.starts_at if current else None)
        if base is None:
            raise TrainingError("Cần --start trước khi dùng --end dạng giờ.")
        values["ends_at"] = end_moment(end, base)
    return values


SessionId = Annotated[int, typer.Argument(help="Mã buổi tập huấn.")]


@contextmanager
def _sessions() -> Iterator[TrainingStore]:
    """The training store on the configured database, for one command."""
    with cli_engine() as engine:
        yield TrainingStore(engine, Outbox(engine))


def _existing(store: TrainingStore, session_id: int) -> SessionInfo:
    """The session ``session_id``; exits with an error when there is none."""
    session = store.get(session_id)
    if session is None:
        raise fail(f"Không có buổi tập huấn #{session_id}.")
    return session


@training_app.command("add")
def training_add(
    title: Title = None,
    start: Start = None,
    end: End = None,
    capacity: Capacity = None,
    place: Place = None,
    link: Link = None,
    province: Province = None,
    coop_type: CoopType = None,
    description: Description = None,
    description_file: DescriptionFile = None,
    entries: Entries = None,
    by: Annotated[str | None, typer.Option("--by", help="Người tạo.")] = None,
) -> None:
    """Create a training session."""
    with _sessions() as store:
        try:
            values = _fields(
                title, start, end, capacity, place, link, province, coop_type,
                description, description_file, None,
            )  # fmt: skip
            draft = SessionDraft.build(**{"description": "", **values, **_entries(entries)})
            session = store.create(draft, created_by=by or "cli")
        except TrainingError as exc:
            raise fail(str(exc)) from exc
        typer.echo(f"Đã tạo buổi tập huấn #{session.id}\n{_describe(session)}")


@training_app.command("edit")
def training_edit(
    session_id: SessionId,
    title: Title = None,
    start: Start = None,
    end: End = None,
    capacity: Capacity = None,
    place: Place = None,
    link: Link = None,
    province: Province = None,
    coop_type: CoopType = None,
    description: Description = None,
    description_file: DescriptionFile = None,
    entries: Entries = None,
) -> None:
    """Change a session; registered members are told about time, place and title changes."""
    with _sessions() as store:
        current = _existing(store, session_id)
        try:
            changes = _fields(
                title, start, end, capacity, place, link, province, coop_type,
                description, description_file, current,
            )  # fmt: skip
            updated = store.update(session_id, **changes, **_entries(entries))
        except TrainingError as exc:
            raise fail(str(exc)) from exc
        if updated.version == current.version and updated == current:
            typer.echo("Không có gì thay đổi.")
            return
        typer.echo(f"Đã cập nhật buổi #{session_id}\n{_describe(updated)}")
        if updated.version != current.version:
            typer.echo(f"{updated.registered} người đã đăng ký sẽ nhận thông báo thay đổi.")


@training_app.command("list")
def training_list(
    show_all: Annotated[bool, typer.Option("--all", help="Cả buổi đã qua và đã huỷ.")] = False,
) -> None:
    """List upcoming sessions (with --all: every session)."""
    with _sessions() as store:
        sessions = store.all() if show_all else store.upcoming()
    if not sessions:
        typer.echo("Chưa có buổi tập huấn nào.")
        return
    for s in sessions:
        start = aware(s.starts_at).astimezone(VIETNAM)
        end = aware(s.ends_at).astimezone(VIETNAM)
        status = "đã huỷ" if s.status == "cancelled" else "sắp tới"
        if s.status != "cancelled" and end <= dt.datetime.now(VIETNAM):
            status = "đã qua"
        where = s.place or s.online_url or ""
        typer.echo(
            f"#{s.id:<4} {start:%d/%m/%Y %H:%M}–{end:%H:%M}  {s.registered}/{s.capacity}  "
            f"{status:<7}  {s.title}  ({where})"
        )


@training_app.command("cancel")
def training_cancel(
    session_id: SessionId,
    yes: Annotated[bool, typer.Option("--yes", help="Không hỏi lại.")] = False,
) -> None:
    """Cancel a session; registered members are told."""
    with _sessions() as store:
        current = _existing(store, session_id)
        if not yes and not typer.confirm(
            f"Huỷ buổi #{session_id} “{current.title}” "
            f"({format_moment(current.starts_at)}), {current.registered} người đã đăng ký?"
        ):
            typer.echo("Không huỷ gì.")
            raise typer.Exit(1)
        try:
            cancelled = store.cancel(session_id)
        except TrainingError as exc:
            raise fail(str(exc)) from exc
        typer.echo(
            f"Đã huỷ buổi #{session_id}; {cancelled.registered} người đã đăng ký sẽ nhận thông báo."
        )


@training_app.command("attendees")
def training_attendees(
    session_id: SessionId,
    as_csv: Annotated[bool, typer.Option("--csv", help="Xuất CSV (UTF-8) ra stdout.")] = False,
) -> None:
    """List the members registered for a session."""
    with _sessions() as store:
        session = _existing(store, session_id)
        people = store.attendees(session_id)
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for a in people:
            registered = f"{a.registered_at.astimezone(VIETNAM):%d/%m/%Y %H:%M}"
            row = (a.member_id, a.channel, a.external_id, a.display_name, a.province, a.coop_type)
            writer.writerow([*("" if v is None else v for v in row), registered])
        return
    typer.echo(f"#{session.id} {session.title}: {len(people)}/{session.capacity} người đăng ký")
    for number, a in enumerate(people, start=1):
        name = " ".join((a.display_name or "(không tên)").split())
        typer.echo(f"{number:>3}. {name}  ({a.channel}, {a.external_id})")
