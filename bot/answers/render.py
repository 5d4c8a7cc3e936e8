"""An entry as members see it: its text with basis and date, its citations, its quote button."""

from __future__ import annotations

import datetime as dt

from bot.clock import format_date
from bot.replies import Button, Citation
from knowledge.base import Entry
from knowledge.law.corpus import LegalCorpus

__all__ = ["citations", "quote_button", "render_entry", "stale_warnings"]


def quote_button(entry: Entry) -> Button:
    """The choice that shows the entry's basis verbatim."""
    return Button("📜 Nguyên văn", f"law:{entry.id}")


def render_entry(entry: Entry, corpus: LegalCorpus, today: dt.date | None = None) -> str:
    """Renders an entry as plain text: title, answer, legal basis and last-checked date.

    The basis is generated from the entry's references. A cited document that is
    not in force on ``today`` (replaced after the entry was written, or not yet in
    force) is named with a warning, so an outdated answer is never shown as current.
    """
    day = today or dt.date.today()
    parts = [entry.title, "", entry.answer, "", f"📘 Căn cứ: {corpus.cite(entry.basis)}"]
    parts.append(f"🗓 Cập nhật: {format_date(entry.checked)}")
    parts += stale_warnings(entry, corpus, day)
    return "\n".join(parts)


def stale_warnings(entry: Entry, corpus: LegalCorpus, day: dt.date) -> list[str]:
    """One warning per cited document not in force on ``day`` (replaced, or not yet in force)."""
    warnings = []
    for doc in corpus.current(entry.basis, day):
        status = doc.status_on(day)
        successor = corpus.register.get(doc.replaced_by) if doc.replaced_by else None
        instead = f", thay bằng {successor.name}" if successor else ""
        warnings.append(
            f"⚠️ Lưu ý: {doc.name} {status.label}{instead}. Câu trả lời này đang chờ cập "
            "nhật theo văn bản mới; gõ /lienhe để hỏi cán bộ trước khi làm theo."
        )
    return warnings


def citations(entry: Entry, corpus: LegalCorpus) -> tuple[Citation, ...]:
    """The entry's references as citations: document name, article label, id, quotable."""
    result = []
    for ref in entry.basis:
        doc = corpus.register.get(ref.doc)
        quotable = doc is not None and doc.has_text and ref.article is not None
        result.append(Citation(doc.name if doc else ref.doc, ref.label, ref.id, quotable))
    return tuple(result)
