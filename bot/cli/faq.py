"""``coopbot faq handout``: the FAQ for trainers, printed.

``handout`` writes an A4 PDF of knowledge-base entries (see :mod:`bot.web.handout`):
whole topics (``--topic``, a category key, repeatable), single entries
(``--entries id,id``), both (the topics' entries in topic order, then the listed
ones, each entry once), or, with neither, every entry. The QR codes open the FAQ
pages at ``PUBLIC_BASE_URL``; the cover names the Telegram bot when
``TELEGRAM_BOT_USERNAME`` is set.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from bot.app import Knowledge
from bot.cli.context import cli_engine, cli_settings, fail
from bot.clock import VIETNAM, local, utcnow
from bot.store.shares import ShareStore, format_stats
from bot.web.handout import HandoutFontError, build_handout
from knowledge.base import Entry, KnowledgeBase, KnowledgeBaseError, load_knowledge_base
from knowledge.law.register import RegisterError

__all__ = ["default_title", "faq_app", "select_entries"]

faq_app = typer.Typer(no_args_is_help=True, help="The FAQ for trainers: printable handouts.")

ALL_TITLE = "Hỏi đáp về hợp tác xã"


@faq_app.callback()
def faq() -> None:
    """The FAQ for trainers: printable handouts."""


def select_entries(
    kb: KnowledgeBase, topics: Sequence[str], entry_ids: Sequence[str]
) -> list[Entry]:
    """The entries of ``topics`` (in topic order), then ``entry_ids``, each once; all if none.

    Raises:
        typer.Exit: (code 2) a topic or an entry id is unknown; the message names them.
    """
    known = {c.key for c in kb.categories}
    bad_topics = [t for t in topics if t not in known]
    if bad_topics:
        raise fail(
            f"Không có chủ đề {', '.join(map(repr, bad_topics))}. Các chủ đề: "
            f"{', '.join(c.key for c in kb.categories)}.",
            2,
        )
    bad_ids = [i for i in entry_ids if kb.get(i) is None]
    if bad_ids:
        raise fail(f"Không có câu hỏi mã {', '.join(map(repr, bad_ids))} trong cơ sở tri thức.", 2)
    if not topics and not entry_ids:
        return list(kb)
    chosen = [e for t in topics for e in kb.in_category(t)]
    chosen += [e for i in entry_ids if (e := kb.get(i)) is not None]
    return list({e.id: e for e in chosen}.values())


def default_title(kb: KnowledgeBase, topics: Sequence[str], entry_ids: Sequence[str]) -> str:
    """The title when none is given: the topic's for a single topic, a general one otherwise."""
    if len(set(topics)) == 1 and not entry_ids:
        return f"Hỏi đáp: {kb.category_title(topics[0])}"
    return ALL_TITLE


def _write(out: Path, data: bytes) -> None:
    """Writes ``data`` to ``out`` through a temporary file, so a failure leaves no file."""
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@faq_app.command("handout")
def faq_handout(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The PDF file to write.", dir_okay=False)
    ],
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="A topic (category key, e.g. von); repeatable."),
    ] = None,
    entries: Annotated[
        str | None,
        typer.Option("--entries", "-e", help="Entry ids, comma-separated: ten_htx,von_gop_toi_da."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="The cover's title.")] = None,
) -> None:
    """Write a printable A4 handout (PDF) of FAQ entries with a QR code to each full answer."""
    settings = cli_settings()
    topics = [t.strip() for t in topic or [] if t.strip()]
    entry_ids = [i.strip() for i in (entries or "").split(",") if i.strip()]
    if not out.parent.is_dir():
        raise fail(f"Không có thư mục {out.parent} để ghi {out.name}.", 2)
    try:
        knowledge = Knowledge.load()
    except (KnowledgeBaseError, RegisterError) as exc:
        raise fail(f"error: {exc}", 2) from exc
    chosen = select_entries(knowledge.kb, topics, entry_ids)
    try:
        pdf = build_handout(
            chosen,
            kb=knowledge.kb,
            corpus=knowledge.corpus,
            base_url=settings.public_url,
            telegram_username=settings.telegram_bot_username,
            title=(title or "").strip() or default_title(knowledge.kb, topics, entry_ids),
            today=local(utcnow()).date(),
        )
    except HandoutFontError as exc:
        raise fail(f"error: {exc}", 1) from exc
    try:
        _write(out, pdf)
    except OSError as exc:
        raise fail(f"Không ghi được {out}: {exc}", 1) from exc
    typer.echo(f"Đã ghi {out}: {len(chosen)} câu hỏi, {len(pdf) // 1024} KB.")


@faq_app.command("stats")
def faq_stats(
    trainer: Annotated[
        str | None, typer.Option("--trainer", help="Chỉ các liên kết của mã giảng viên này.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Từ ngày (YYYY-MM-DD, giờ Việt Nam).")
    ] = None,
) -> None:
    """Opens of trainers' share links and the follow-up questions, per trainer and entry."""
    start = None
    if since is not None:
        try:
            start = dt.datetime.combine(dt.date.fromisoformat(since), dt.time(), VIETNAM)
        except ValueError:
            raise fail(f"--since phải là ngày dạng YYYY-MM-DD, không phải {since!r}.", 2) from None
    kb = load_knowledge_base()
    with cli_engine() as engine:
        rows = ShareStore(engine, kb.entries).stats(trainer, start)
    typer.echo(format_stats(rows, kb, since=start))
