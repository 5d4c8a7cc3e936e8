"""``coopbot law check|show|search|documents``: the legal corpus from the command line.

``check`` is what CI and maintainers run after a change of law: it exits 1 when
any knowledge entry or deadline rule cites a reference that does not resolve, a
document not in force, or was checked before a document it cites was issued.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import typer

from knowledge.base import KnowledgeBaseError, load_knowledge_base
from knowledge.check import check_all
from knowledge.law.corpus import LegalCorpus, UnresolvedReference
from knowledge.law.references import Reference
from knowledge.law.register import RegisterError
from scheduler.deadlines import RuleError, load_rules

__all__ = ["law_app"]

law_app = typer.Typer(no_args_is_help=True, help="The legal corpus: check citations, show texts.")


def _corpus() -> LegalCorpus:
    try:
        return LegalCorpus.load()
    except RegisterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _date(text: str | None) -> dt.date:
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        typer.echo(f"error: --on takes a date YYYY-MM-DD, not {text!r}", err=True)
        raise typer.Exit(2) from exc


@law_app.command("check")
def law_check(
    on: Annotated[
        str | None, typer.Option("--on", help="Check as of this day (YYYY-MM-DD); default today.")
    ] = None,
) -> None:
    """Check every citation of the knowledge base and the deadline rules; exit 1 on any problem."""
    day = _date(on)
    started = time.perf_counter()
    corpus = _corpus()
    parse_seconds = time.perf_counter() - started
    try:
        kb = load_knowledge_base()
        rules = load_rules()
    except (KnowledgeBaseError, RuleError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = check_all(kb, rules, corpus, day)
    held = [d for d in corpus.register if d.has_text]
    typer.echo(
        f"corpus: {len(corpus.register)} documents registered, {len(held)} with text "
        f"({', '.join(f'{d.number} {len(corpus.texts[d.number].articles)} điều' for d in held)}); "
        f"parsed in {parse_seconds:.2f} s"
    )
    typer.echo(
        f"checked on {day.isoformat()}: {report.entries} entries, {report.rules} deadline rules, "
        f"{report.references} references: {report.resolved} resolve "
        f"({report.to_clause} to an article, clause or point; {report.to_document} to a "
        f"registered document without text)"
    )
    kinds = {"unresolved": 0, "not_current": 0, "stale": 0}
    for finding in report.findings:
        kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
    typer.echo(
        f"unresolved: {kinds['unresolved']}; citing a document not in force: "
        f"{kinds['not_current']}; checked before a cited document: {kinds['stale']}"
    )
    typer.echo(f"unconfirmed entries: {len(report.unconfirmed)}")
    for entry_id, missing in report.unconfirmed:
        typer.echo(f"  {entry_id}: {missing}")
    for finding in report.findings:
        typer.echo(f"{finding.kind}: {finding}")
    if not report.ok:
        typer.echo(f"FAILED: {len(report.findings)} problems")
        raise typer.Exit(1)
    typer.echo("OK")


@law_app.command("show")
def law_show(
    document: Annotated[
        str, typer.Argument(help="Document number, e.g. 17/2023/QH15 or 295/2026.")
    ],
    article: Annotated[int, typer.Argument(help="Article number (Điều).", min=1)],
    clause: Annotated[
        int | None, typer.Option("--clause", "-k", help="Clause (khoản).", min=1)
    ] = None,
    point: Annotated[
        str | None, typer.Option("--point", "-p", help="Point (điểm), e.g. e or a.1.")
    ] = None,
) -> None:
    """Print an article (or one clause or point) verbatim, with its id and the document's status."""
    corpus = _corpus()
    doc = corpus.register.get(document) or corpus.register.find(document)
    if doc is None:
        typer.echo(f"error: không có văn bản {document!r} trong danh mục", err=True)
        raise typer.Exit(1)
    if not doc.has_text:
        status = doc.status_on(dt.date.today()).label
        typer.echo(f"error: chưa có toàn văn {doc.name} ({status})", err=True)
        raise typer.Exit(1)
    found = corpus.article(doc.number, article)
    if found is None:
        count = len(corpus.texts[doc.number].articles)
        typer.echo(f"error: {doc.name} có {count} điều; không có Điều {article}", err=True)
        raise typer.Exit(1)
    try:
        ref = Reference(doc=doc.number, article=article, clause=clause, point=point)
        quote = corpus.resolve(ref)
    except (UnresolvedReference, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    assert quote is not None
    status = doc.status_on(dt.date.today()).label
    typer.echo(f"{doc.name}: {doc.title} ({status})")
    for where in (found.chapter, found.section):
        if where:
            typer.echo(where)
    typer.echo(found.heading)
    typer.echo(f"[{ref.id}]")
    typer.echo("")
    typer.echo(quote.text)


@law_app.command("search")
def law_search(
    query: Annotated[str, typer.Argument(help="Words to look for, with or without diacritics.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=50)] = 5,
) -> None:
    """Find the clauses that best match the words (BM25 over the texts in force)."""
    corpus = _corpus()
    hits = corpus.search(query, limit)
    if not hits:
        typer.echo("Không tìm thấy khoản nào phù hợp.")
        raise typer.Exit(1)
    for hit in hits:
        text = " ".join(hit.text.split())
        typer.echo(f"{hit.ref.id}  ({hit.score:.1f})  {hit.document.name}, {hit.article.heading}")
        typer.echo(f"    {text[:300]}{'…' if len(text) > 300 else ''}")


@law_app.command("documents")
def law_documents() -> None:
    """List the registered documents with their status today."""
    corpus = _corpus()
    today = dt.date.today()
    for doc in corpus.register:
        text = (
            f"{len(corpus.texts[doc.number].articles)} điều"
            if doc.has_text
            else "không có toàn văn"
        )
        after = f" → {doc.replaced_by}" if doc.replaced_by else ""
        typer.echo(f"{doc.number:22} {doc.status_on(today).label}{after}; {text}; {doc.short}")
