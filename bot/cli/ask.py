"""``coopbot ask``: answer a question, or a file of questions, as a member would see it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from bot.answers import Answer
from bot.cli.context import answer_service, cli_settings
from bot.settings import Settings
from nlu.build import NLUBuildError

__all__ = ["MAX_BATCH_LINE_BYTES", "BatchError", "ask", "read_batch", "render_terminal"]

# A batch line longer than this is refused (a question is at most 2,000 characters;
# Vietnamese takes up to three bytes a character).
MAX_BATCH_LINE_BYTES = 8192


class BatchError(ValueError):
    """A batch file that cannot be read as questions: the message names the line."""


def read_batch(path: Path, limit: int = MAX_BATCH_LINE_BYTES) -> list[str]:
    """The questions of ``path``, one a line (blank lines kept), read line by line.

    A line over ``limit`` bytes or not valid UTF-8 stops the batch with a
    ``BatchError`` naming the file and the line number; a leading BOM is dropped.
    """
    questions: list[str] = []
    with path.open("rb") as handle:
        number = 0
        while raw := handle.readline(limit + 1):
            number += 1
            if len(raw) > limit and not raw.endswith(b"\n"):
                raise BatchError(f"{path}:{number}: line longer than {limit} bytes")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BatchError(
                    f"{path}:{number}: not UTF-8 text (byte {exc.start + 1} of the line)"
                ) from exc
            if number == 1:
                line = line.removeprefix("\ufeff")
            questions.append(line.rstrip("\r\n"))
    return questions


def render_terminal(answer: Answer) -> str:
    """The answer as terminal text: its text, then its choices numbered from 1."""
    lines = [answer.text]
    buttons = answer.buttons()
    if buttons:
        lines.append("")
        lines += [f"  [{i}] {b.label}" for i, b in enumerate(buttons, start=1)]
    return "\n".join(lines)


def _dump(answer: Answer) -> str:
    return json.dumps(answer.to_json(), ensure_ascii=False)


async def _ask(
    settings: Settings, questions: list[str], as_json: bool, use_nlu: bool, review: bool
) -> None:
    async with answer_service(settings, use_nlu=use_nlu) as service:
        for question in questions:
            answer = await service.answer(question, channel="cli", review=review)
            typer.echo(_dump(answer) if as_json else render_terminal(answer))
            if not as_json and len(questions) > 1:
                typer.echo("-" * 40)


def ask(
    question: Annotated[str | None, typer.Argument(help="The question, in Vietnamese.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    batch: Annotated[
        Path | None, typer.Option("--batch", help="File with one question per line (UTF-8).")
    ] = None,
    no_nlu: Annotated[
        bool, typer.Option("--no-nlu", help="Answer from lexical search only.")
    ] = False,
    review: Annotated[
        bool,
        typer.Option(
            "--review", help="Keep unanswered questions for review, as members' questions are."
        ),
    ] = False,
) -> None:
    """Answer a question (or a file of questions) as a member would see it.

    Questions asked here do not enter the review queue unless ``--review`` is given.
    """
    settings = cli_settings()
    if batch is not None:
        try:
            # One answer per line, blank lines included, so output line N answers input line N.
            questions = read_batch(batch)
        except OSError as exc:
            typer.echo(f"error: cannot read {batch}: {exc.strerror}", err=True)
            raise typer.Exit(2) from exc
        except BatchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    elif question is not None:
        questions = [question]
    else:
        typer.echo("error: give a question or --batch FILE", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(_ask(settings, questions, as_json, not no_nlu, review))
    except NLUBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
