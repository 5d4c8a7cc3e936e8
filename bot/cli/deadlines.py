"""``coopbot deadlines``: the filing deadlines of a year, from the rules alone (no database)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from scheduler.deadlines import RuleError, due_dates, format_date, load_rules

__all__ = ["deadlines"]


def deadlines(
    year: Annotated[
        int | None, typer.Option(help="Calendar year (default: this year).", min=2000, max=2100)
    ] = None,
    profile: Annotated[
        list[str] | None,
        typer.Option(
            "--profile",
            help="KEY=VALUE of a member profile, e.g. vat_period=quarterly (repeatable).",
        ),
    ] = None,
) -> None:
    """Print every filing deadline that falls in a year, with its rule, period and basis."""
    fields = ("province", "coop_type", "coop_role", "vat_period")
    values: dict[str, str | None] = {}
    for item in profile or []:
        key, sep, value = item.partition("=")
        if not sep or key not in fields or not value:
            typer.echo(f"error: --profile takes KEY=VALUE with KEY one of {', '.join(fields)}",
                       err=True)  # fmt: skip
            raise typer.Exit(2)
        values[key] = value
    try:
        rules = load_rules()
    except RuleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    year = year or dt.date.today().year
    found = due_dates(
        rules, dt.date(year, 1, 1), dt.date(year, 12, 31), values if profile else None
    )
    for due in found:
        moved = f" (dời từ {format_date(due.nominal)})" if due.moved else ""
        caveat = " [cần kiểm tra lại]" if due.rule.unconfirmed else ""
        typer.echo(
            f"{format_date(due.date)}  {due.rule.title} — {due.period}{moved} — "
            f"{due.rule.basis_text(due.date)}{caveat}"
        )
