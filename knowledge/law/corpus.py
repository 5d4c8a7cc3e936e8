"""The legal corpus: the register plus the parsed texts, resolving, citing, quoting and searching.

Built once at start-up (:meth:`LegalCorpus.load`, well under a second for the
four texts); a source file whose hash differs from the register is refused, so
the assistant never quotes a text nobody checked.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.law.parser import Article, Clause, ParsedText, Point, parse_text
from knowledge.law.references import Reference
from knowledge.law.register import (
    DEFAULT_REGISTER,
    SOURCES_DIR,
    Document,
    Register,
    RegisterError,
    load_register,
)

if TYPE_CHECKING:
    from knowledge.law.retrieval import ClauseRetriever, Retrieved

__all__ = [
    "LegalCorpus",
    "Quote",
    "UnresolvedReference",
    "default_corpus",
]


class UnresolvedReference(LookupError):
    """A reference names a document, article, clause or point that does not exist."""


@dataclass(frozen=True, slots=True)
class Quote:
    """The verbatim text a reference points to, with where it comes from."""

    ref: Reference
    document: Document
    article: Article
    text: str  # the unit's text, verbatim: the whole article, a clause or a point

    @property
    def heading(self) -> str:
        """``Luật HTX 2023 (17/2023/QH15), Điều 33. Chấm dứt tư cách ...``."""
        return f"{self.document.name}, {self.article.heading}"


class LegalCorpus:
    """The register and the texts we hold, parsed."""

    def __init__(self, register: Register, texts: dict[str, ParsedText]) -> None:
        """Wraps a register and its parsed texts; see :meth:`load`."""
        self.register = register
        self.texts = texts

    @classmethod
    def load(
        cls, register_path: Path = DEFAULT_REGISTER, sources: Path = SOURCES_DIR
    ) -> LegalCorpus:
        """Loads the register and parses every source text it names, checking hashes and counts."""
        register = load_register(register_path)
        texts: dict[str, ParsedText] = {}
        for doc in register:
            if doc.source is None:
                continue
            path = sources / doc.source
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise RegisterError(f"{doc.number}: cannot read {path}: {exc}") from exc
            digest = hashlib.sha256(raw).hexdigest()
            if digest != doc.sha256:
                raise RegisterError(
                    f"{doc.number}: {path.name} has sha256 {digest}, the register says "
                    f"{doc.sha256}; check the new text and update documents.yml"
                )
            parsed = parse_text(raw.decode("utf-8"), doc.number)
            if len(parsed.articles) != doc.articles:
                raise RegisterError(
                    f"{doc.number}: parsed {len(parsed.articles)} articles, the register "
                    f"says {doc.articles}"
                )
            texts[doc.number] = parsed
        return cls(register, texts)

    # -- looking things up --------------------------------------------------------------

    def document(self, number: str) -> Document | None:
        """Returns the registered document, or None."""
        return self.register.get(number)

    def article(self, number: str, article: int) -> Article | None:
        """Returns an article of a document we hold, or None."""
        parsed = self.texts.get(number)
        return parsed.articles.get(article) if parsed else None

    def resolve(self, ref: Reference) -> Quote | None:
        """Checks that ``ref`` exists; returns its quote, or None for a document without text.

        Raises :class:`UnresolvedReference` saying what is missing.
        """
        doc = self.register.get(ref.doc)
        if doc is None:
            raise UnresolvedReference(f"{ref.id}: document {ref.doc} is not in the register")
        if ref.article is None or not doc.has_text:
            return None
        article = self.article(doc.number, ref.article)
        if article is None:
            raise UnresolvedReference(f"{ref.id}: {doc.number} has no Điều {ref.article}")
        text = article.text
        clause: Clause | None = None
        if ref.clause is not None:
            clause = article.clause(ref.clause)
            if clause is None:
                raise UnresolvedReference(f"{ref.id}: Điều {ref.article} has no khoản {ref.clause}")
            text = clause.text
        if ref.point is not None:
            point: Point | None = clause.point(ref.point) if clause else article.point(ref.point)
            if point is None:
                where = f"khoản {ref.clause}" if clause else f"Điều {ref.article}"
                raise UnresolvedReference(f"{ref.id}: {where} has no điểm {ref.point}")
            text = point.text
        return Quote(ref, doc, article, text)

    def unresolved(self, refs: Iterable[Reference]) -> list[str]:
        """The reasons why some of ``refs`` do not resolve (empty: all resolve)."""
        problems = []
        for ref in refs:
            try:
                self.resolve(ref)
            except UnresolvedReference as exc:
                problems.append(str(exc))
        return problems

    def quotes(self, refs: Iterable[Reference]) -> list[Quote]:
        """The verbatim texts of ``refs`` that we hold, in order, without repeats.

        A clause already quoted whole is not quoted again for one of its points.
        """
        quotes: list[Quote] = []
        seen: set[str] = set()
        for ref in refs:
            try:
                quote = self.resolve(ref)
            except UnresolvedReference:
                continue
            if quote is None:
                continue
            if any(ref.id == done or ref.id.startswith(done + ":") for done in seen):
                continue
            seen.add(ref.id)
            quotes.append(quote)
        return quotes

    # -- citing ----------------------------------------------------------------------------

    def cite(self, refs: Sequence[Reference]) -> str:
        """The basis line: ``Luật HTX 2023 (17/2023/QH15), Điều 4 khoản 7, khoản 21; ...``."""
        return self.register.cite(refs)

    def current(self, refs: Iterable[Reference], day: dt.date) -> list[Document]:
        """The cited documents that are NOT in force on ``day`` (empty: all current)."""
        stale: dict[str, Document] = {}
        for ref in refs:
            doc = self.register.get(ref.doc)
            if doc is not None and not doc.in_force_on(day):
                stale[doc.number] = doc
        return list(stale.values())

    # -- searching -------------------------------------------------------------------------

    def units(self) -> Iterator[tuple[Reference, Article, str]]:
        """Every clause of every text (an article without clauses counts as one unit)."""
        for number, parsed in self.texts.items():
            for article in parsed.articles.values():
                if not article.clauses:
                    yield Reference(doc=number, article=article.number), article, article.text
                    continue
                for clause in article.clauses:
                    ref = Reference(doc=number, article=article.number, clause=clause.number)
                    yield ref, article, clause.text

    @functools.cached_property
    def retriever(self) -> ClauseRetriever:
        """The clause index (bm25s), built on first use; see :mod:`knowledge.law.retrieval`."""
        from knowledge.law.retrieval import ClauseRetriever

        return ClauseRetriever(self)

    def search(self, text: str, limit: int = 5) -> list[Retrieved]:
        """The clauses in force that best match ``text`` (diacritic-insensitive), best first."""
        return self.retriever.search(text, limit)


@functools.cache
def default_corpus() -> LegalCorpus:
    """The corpus shipped with the project, loaded once per process."""
    return LegalCorpus.load()
