"""``coopbot reminders status|plan``: the outbox and the planning of deadline reminders.

The running assistant's reminder worker sends what is planned here (the daily
job plans too); ``status`` shows what waits in the outbox and the scheduled jobs.
"""

from __future__ import annotations

import datetime as dt

import typer
from sqlalchemy import func, select

from bot.cli.context import cli_engine
from bot.clock import format_timestamp
from bot.store.db import APSCHEDULER_JOBS, OutboxMessage
from bot.store.outbox import Outbox
from scheduler.deadlines import RuleError, load_rules
from scheduler.planner import DeadlinePlanner

__all__ = ["reminders_app"]

reminders_app = typer.Typer(no_args_is_help=True, help="Deadline and session reminders.")


@reminders_app.command("status")
def reminders_status() -> None:
    """Outbox counts per kind and state, how far reminders are planned, the jobs."""
    with cli_engine() as engine:
        with engine.connect() as connection:
            rows = connection.execute(
                select(OutboxMessage.kind, OutboxMessage.status, func.count())
                .group_by(OutboxMessage.kind, OutboxMessage.status)
                .order_by(OutboxMessage.kind, OutboxMessage.status)
            ).all()
            jobs = connection.execute(
                select(APSCHEDULER_JOBS.c.id, APSCHEDULER_JOBS.c.next_run_time)
            ).all()
        planner = DeadlinePlanner(engine, Outbox(engine), ())
        until = planner.planned_until()
        next_at = Outbox(engine).next_send_at()
    for kind, status, count in rows:
        typer.echo(f"{kind:<15} {status:<8} {count}")
    if not rows:
        typer.echo("outbox empty")
    typer.echo(f"planned until   {format_timestamp(until, seconds=True)}")
    typer.echo(f"next send       {format_timestamp(next_at, seconds=True)}")
    for job_id, stamp in jobs:
        moment = dt.datetime.fromtimestamp(stamp, dt.UTC) if stamp is not None else None
        typer.echo(f"job {job_id:<22} next run {format_timestamp(moment, seconds=True)}")


@reminders_app.command("plan")
def reminders_plan() -> None:
    """Plan deadline reminders now, up to the end of tomorrow (the daily job does this too)."""
    with cli_engine() as engine:
        try:
            rules = load_rules()
        except RuleError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        result = DeadlinePlanner(engine, Outbox(engine), rules).plan()
    typer.echo(
        f"planned {format_timestamp(result.start, seconds=True)} .. "
        f"{format_timestamp(result.end, seconds=True)}: {result.slots} slots, "
        f"{result.enqueued} reminders, {result.caught_up} caught up, "
        f"{len(result.dropped_slots)} missed slots dropped"
    )
