"""``coopbot users grant|revoke|list|logout-all``: roles and admin sessions from the console."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.context import cli_engine
from bot.store.admin_sessions import AdminSessionStore
from bot.store.members import ROLES, LastAdminError, MemberStore
from bot.store.roles import ROLE_LABELS, parse_person, parse_role

__all__ = ["users_app"]

users_app = typer.Typer(no_args_is_help=True, help="Roles: member, trainer, staff, admin.")

Person = Annotated[str, typer.Argument(help="CHANNEL:USER_ID, e.g. telegram:123456789.")]


def _person(text: str) -> tuple[str, str]:
    found = parse_person(text)
    if found is None:
        typer.echo(f"Không hiểu {text!r}: viết kênh:mã, ví dụ telegram:123456789.", err=True)
        raise typer.Exit(2)
    return found


def _set(person: str, role: str) -> None:
    channel, user = _person(person)
    with cli_engine() as engine:
        try:
            member = MemberStore(engine).set_role(channel, user, role)
        except LastAdminError as exc:
            typer.echo("Không thể bỏ quyền của quản trị viên cuối cùng.", err=True)
            raise typer.Exit(1) from exc
    name = member.display_name or "(chưa nhắn tin với bot)"
    typer.echo(f"{channel}:{user} {name}: {ROLE_LABELS[member.role]} ({member.role})")


@users_app.command("grant")
def users_grant(
    person: Person,
    role: Annotated[str, typer.Argument(help=f"One of: {', '.join(ROLES)}.")],
) -> None:
    """Give a person a role (they need not have written to the bot yet)."""
    code = parse_role(role)
    if code is None:
        typer.echo(f"Vai trò không hợp lệ: {role!r}. Chọn: {', '.join(ROLES)}.", err=True)
        raise typer.Exit(2)
    _set(person, code)


@users_app.command("revoke")
def users_revoke(person: Person) -> None:
    """Take a person's role away (back to member)."""
    _set(person, "member")


@users_app.command("list")
def users_list() -> None:
    """Everyone with a role other than member."""
    with cli_engine() as engine:
        people = MemberStore(engine).with_roles()
    if not people:
        typer.echo("Chưa ai có vai trò ngoài thành viên.")
    for m in people:
        name = m.display_name or "(chưa nhắn tin với bot)"
        typer.echo(f"{m.role:<8} {m.channel}:{m.external_id}  {name}")


@users_app.command("logout-all")
def users_logout_all() -> None:
    """End every admin page session and cancel every unused /quantri link."""
    with cli_engine() as engine:
        sessions, tokens = AdminSessionStore(engine).logout_all()
    typer.echo(
        f"Đã đăng xuất {sessions} phiên trang quản trị và huỷ {tokens} liên kết đăng nhập "
        "chưa dùng. Muốn vào lại: gõ /quantri trong khung chat."
    )
