"""The ``coopbot`` command line: ask, chat, and the NLU model's train/test/serve."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
import uvloop
from telegram.error import TelegramError

from bot.answers import Answer, AnswerService, render_entry
from bot.app import serve
from bot.channels.zalo.client import ZaloError
from bot.cli.broadcast import broadcast_app
from bot.cli.context import answer_service, cli_settings
from bot.cli.law import law_app
from bot.cli.review import add_model_commands, review_app
from bot.cli.training import reminders_app, training_app
from bot.cli.users import users_app
from bot.handlers.law import LawChat
from bot.nlu_model.evaluation import predict_split, predict_with_model
from bot.nlu_model.service import NLUService, ensure_nlu_service, pick_model
from bot.settings import Settings
from bot.store.db import create_db_engine, current_revision, upgrade_db
from nlu.build import (
    NLUBuildError,
    current_model,
    fingerprint,
    train_model,
)
from nlu.evaluate import Prediction, Report, evaluate, split_by_spelling
from scheduler.deadlines import RuleError, due_dates, format_date, load_rules

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Trợ lý HTX")
nlu_app = typer.Typer(no_args_is_help=True, help="Train, test and serve the NLU model.")
app.add_typer(nlu_app, name="nlu")
db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
app.add_typer(db_app, name="db")
app.add_typer(training_app, name="training")
app.add_typer(reminders_app, name="reminders")
app.add_typer(users_app, name="users")
app.add_typer(broadcast_app, name="broadcast")
app.add_typer(review_app, name="review")
app.add_typer(law_app, name="law")
add_model_commands(nlu_app)


def _settings() -> Settings:
    return cli_settings()


def _render_terminal(answer: Answer) -> str:
    lines = [answer.text]
    buttons = answer.buttons()
    if buttons:
        lines.append("")
        lines += [f"  [{i}] {b.label}" for i, b in enumerate(buttons, start=1)]
    return "\n".join(lines)


def _dump(answer: Answer) -> str:
    return json.dumps(answer.to_json(), ensure_ascii=False)


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


async def _ask(
    settings: Settings, questions: list[str], as_json: bool, use_nlu: bool, review: bool
) -> None:
    async with answer_service(settings, use_nlu=use_nlu) as service:
        for question in questions:
            answer = await service.answer(question, channel="cli", review=review)
            typer.echo(_dump(answer) if as_json else _render_terminal(answer))
            if not as_json and len(questions) > 1:
                typer.echo("-" * 40)


@app.command()
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
    settings = _settings()
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


async def _chat(settings: Settings) -> None:
    async with answer_service(settings) as service:
        typer.echo("Trợ lý HTX — gõ câu hỏi; số để chọn gợi ý; /thoat để kết thúc.\n")
        last: Answer | None = None
        while True:
            try:
                line = await asyncio.to_thread(input, "Bạn: ")
            except (EOFError, KeyboardInterrupt):
                typer.echo("")
                return
            line = line.strip()
            if line in ("/thoat", "/quit", "/exit"):
                return
            reply = _chat_turn(service, last, line)
            if isinstance(reply, str):
                typer.echo(f"\nTrợ lý: {reply}\n")
                continue
            last = await service.answer(line, channel="cli", review=False)
            typer.echo(f"\nTrợ lý: {_render_terminal(last)}\n")


def _chat_turn(service: AnswerService, last: Answer | None, line: str) -> str | None:
    """Handles a number picking a button or a command; None means: answer ``line``."""
    if line == "/lienhe":
        return (
            "Trên Telegram và Zalo, lệnh /lienhe chuyển câu hỏi của bạn tới cán bộ "
            "Liên minh HTX. Trong cửa sổ dòng lệnh này chưa có cán bộ trực."
        )
    if last is None or not line.isdigit():
        return None
    buttons = last.buttons()
    index = int(line) - 1
    if not 0 <= index < len(buttons):
        return f"Hãy chọn một số từ 1 đến {len(buttons)}."
    payload = buttons[index].payload
    if payload.startswith("faq:") and (entry := service.kb.get(payload[4:])):
        return render_entry(entry, service.corpus)
    if payload.startswith("law:"):
        return LawChat(service.corpus, service.kb).quotes(payload[4:]).text
    return _chat_turn(service, None, "/lienhe")


@app.command()
def chat() -> None:
    """Talk to the assistant in the terminal."""
    settings = _settings()
    try:
        asyncio.run(_chat(settings))
    except NLUBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def run() -> None:
    """Run the assistant: NLU service, database, web chat and the configured chat apps."""
    settings = _settings()

    def ready(url: str) -> None:
        channels = ["web chat" if settings.web_chat_enabled else None]
        if settings.telegram_bot_token is not None:
            mode = "webhook" if settings.telegram_webhook_url else "polling"
            channels.append(f"Telegram ({mode})")
        if settings.zalo_bot_token is not None:
            mode = "webhook" if settings.zalo_webhook_url else "polling"
            channels.append(f"Zalo ({mode})")
        typer.echo(f"Trợ lý HTX is running: {', '.join(c for c in channels if c)}")
        if settings.web_chat_enabled:
            typer.echo(f"Web chat: {url}")
        typer.echo("Stop with Ctrl+C.")

    try:
        # uvloop: the same asyncio API with a faster event loop (about a tenth less CPU per
        # message in `make bench-chat`).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(settings, on_ready=ready))
    except (NLUBuildError, OSError, ZaloError, TelegramError) as exc:
        prefix = {ZaloError: "Zalo: ", TelegramError: "Telegram: "}
        where = next((p for kind, p in prefix.items() if isinstance(exc, kind)), "")
        message = exc.message if isinstance(exc, TelegramError) else str(exc)
        typer.echo(f"error: {where}{message}", err=True)
        raise typer.Exit(1) from exc


@app.command()
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


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the database migrations (also done at start-up)."""
    settings = _settings()
    engine = create_db_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade_db(engine, revision)
        typer.echo(f"database at revision {current_revision(engine)} (was {before or 'empty'})")
    finally:
        engine.dispose()


@nlu_app.command("train")
def nlu_train(
    if_stale: Annotated[
        bool, typer.Option("--if-stale", help="Skip when a model of the current data exists.")
    ] = False,
    no_augment: Annotated[
        bool, typer.Option("--no-augment", help="Train without diacritic-free copies.")
    ] = False,
    epochs: Annotated[int | None, typer.Option(help="Override the DIET epochs.")] = None,
) -> None:
    """Train the NLU model from nlu/data/train (and config.yml)."""
    settings = _settings()
    if if_stale and not no_augment and epochs is None:
        existing = current_model(settings.model_dir, reviewed=settings.reviewed_data)
        if existing is not None:
            typer.echo(f"model is current: {existing}")
            return
    typer.echo(
        f"training NLU model {fingerprint(augment=not no_augment, reviewed=settings.reviewed_data)}"
        " ..."
    )
    try:
        result = train_model(
            settings.model_dir,
            settings.nlu_venv,
            augment=not no_augment,
            epochs=epochs,
            name=None if epochs is None and not no_augment else f"nlu-exp-{int(time.time())}",
            echo=lambda line: typer.echo(f"  {line}"),
            reviewed=settings.reviewed_data,
        )
    except NLUBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"trained {result.model} on {result.examples} examples in {result.seconds:.1f} s")


def _print_report(title: str, report: Report) -> None:
    typer.echo(
        f"{title:<11} n={report.count:<4} accuracy={report.accuracy:.1%}  "
        f"macro-F1={report.macro_f1:.3f}"
    )


@nlu_app.command("test")
def nlu_test(
    model: Annotated[Path | None, typer.Option(help="Model file (default: current).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    show_errors: Annotated[
        bool, typer.Option("--errors", help="List every misclassified question.")
    ] = False,
) -> None:
    """Evaluate the model on the held-out split: accuracy, macro-F1, confused pairs."""
    settings = _settings()

    async def run() -> list[Prediction]:
        if model is not None:
            return await predict_with_model(settings, model)
        async with ensure_nlu_service(settings) as endpoint:
            return await predict_split(endpoint)

    try:
        predictions = asyncio.run(run())
    except NLUBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    accented, unaccented = split_by_spelling(predictions)
    reports = {
        "all": evaluate(predictions),
        "accented": evaluate(accented),
        "unaccented": evaluate(unaccented),
    }
    if as_json:
        typer.echo(json.dumps({
            k: {"n": r.count, "accuracy": r.accuracy, "macro_f1": r.macro_f1,
                "confused": [list(c) for c in r.confused]}
            for k, r in reports.items()
        }, ensure_ascii=False))  # fmt: skip
        return
    for name, report in reports.items():
        _print_report(name, report)
    typer.echo("\nmost confused (expected -> predicted: count):")
    for expected, predicted, count in reports["all"].confused:
        typer.echo(f"  {expected} -> {predicted}: {count}")
    if show_errors:
        typer.echo("\nmisclassified (expected -> predicted, confidence):")
        for p in reports["all"].errors:
            typer.echo(f"  {p.expected} -> {p.predicted} ({p.confidence:.2f}): {p.text}")


@nlu_app.command("serve")
def nlu_serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5005,
    model: Annotated[Path | None, typer.Option(help="Model file (default: current).")] = None,
) -> None:
    """Run the NLU service in the foreground (Rasa's HTTP API on 127.0.0.1)."""
    settings = _settings()
    if settings.nlu_token is None:
        typer.echo(
            "error: set NLU_TOKEN to the token clients must send (e.g. "
            "NLU_TOKEN=$(openssl rand -hex 32)); the service never runs without one",
            err=True,
        )
        raise typer.Exit(2)
    try:
        chosen = model or pick_model(settings.model_dir, settings.reviewed_data)
        service = NLUService(settings, chosen, port=port)
        command = service.command()
    except NLUBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    from nlu.build import PROJECT_ROOT, nlu_env

    typer.echo(f"serving {service.model.name} on {service.url}", err=True)
    os.chdir(PROJECT_ROOT)
    os.execve(command[0], command, nlu_env())


def main() -> None:
    """Entry point of the ``coopbot`` console script."""
    app(prog_name="coopbot")


if __name__ == "__main__":
    main()
