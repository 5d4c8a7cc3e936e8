"""The ``coopbot`` command line: one typer app assembled from one module per command group.

The commands ``ask``, ``chat``, ``run``, ``deadlines`` and ``stats`` and the groups ``nlu``, ``db``,
``training``, ``reminders``, ``users``, ``broadcast``, ``review``, ``law`` and ``faq`` each live in
the module of that name; they build what they need through bot/cli/context.py.
"""

from __future__ import annotations

import typer

from bot.cli.ask import ask
from bot.cli.broadcast import broadcast_app
from bot.cli.chat import chat
from bot.cli.db import db_app
from bot.cli.deadlines import deadlines
from bot.cli.faq import faq_app
from bot.cli.law import law_app
from bot.cli.nlu import nlu_app
from bot.cli.reminders import reminders_app
from bot.cli.review import review_app
from bot.cli.run import run
from bot.cli.stats import stats
from bot.cli.training import training_app
from bot.cli.users import users_app

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Trợ lý HTX")
# `coopbot --help` lists the commands, then the groups, in the order they are added here.
for command in (ask, chat, run, deadlines, stats):
    app.command()(command)
for name, group in (
    ("nlu", nlu_app),
    ("db", db_app),
    ("training", training_app),
    ("reminders", reminders_app),
    ("users", users_app),
    ("broadcast", broadcast_app),
    ("review", review_app),
    ("law", law_app),
    ("faq", faq_app),
):
    app.add_typer(group, name=name)


def main() -> None:
    """Entry point of the ``coopbot`` console script."""
    app(prog_name="coopbot")
