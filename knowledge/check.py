"""``coopbot law check``: every citation resolves, is current, and was checked after its source.

Findings, each naming the entry or rule at fault:

- ``unresolved``: a reference to a document, article, clause or point that does not exist;
- ``not_current``: an entry cites a document replaced, repealed or not yet in force today;
  a deadline rule cites, for one of its periods, a document not in force in that period;
- ``stale``: an entry's ``checked`` date is older than the newest document it cites.

Unconfirmed entries are listed with the source they lack; they are not findings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from knowledge.base import Entry, KnowledgeBase
from knowledge.law.corpus import LegalCorpus
from knowledge.law.references import Reference

__all__ = ["CheckReport", "Finding", "check_all", "check_entries", "check_rules"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: what kind, where (``entry <id>`` / ``rule <id>``) and why."""

    kind: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class CheckReport:
    """The outcome of a check over the knowledge base and the deadline rules."""

    day: dt.date
    entries: int = 0
    references: int = 0
    to_clause: int = 0  # resolved to an article, clause or point of a text we hold
    to_document: int = 0  # resolved to a registered document without text
    rules: int = 0
    findings: list[Finding] = field(default_factory=list)
    unconfirmed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing needs fixing."""
        return not self.findings

    @property
    def resolved(self) -> int:
        """References that resolve (to a clause or to a registered document)."""
        return self.to_clause + self.to_document


def _resolve(corpus: LegalCorpus, ref: Reference, where: str, report: CheckReport) -> bool:
    report.references += 1
    problems = corpus.unresolved([ref])
    if problems:
        report.findings.append(Finding("unresolved", where, problems[0]))
        return False
    doc = corpus.register.documents[ref.doc]
    if doc.has_text and ref.article is not None:
        report.to_clause += 1
    else:
        report.to_document += 1
    return True


def check_entries(
    kb: KnowledgeBase | Iterable[Entry], corpus: LegalCorpus, day: dt.date, report: CheckReport
) -> None:
    """Adds the findings of the knowledge entries to ``report``."""
    for entry in kb:
        report.entries += 1
        where = f"entry {entry.id}"
        if entry.unconfirmed:
            report.unconfirmed.append((entry.id, entry.missing_source or ""))
        newest: tuple[dt.date, str] | None = None
        for ref in entry.basis:
            if not _resolve(corpus, ref, where, report):
                continue
            doc = corpus.register.documents[ref.doc]
            status = doc.status_on(day)
            if not status.current:
                successor = f", replaced by {doc.replaced_by}" if doc.replaced_by else ""
                report.findings.append(
                    Finding("not_current", where, f"cites {doc.number} ({status.value}{successor})")
                )
            if doc.newest_date is not None and (newest is None or doc.newest_date > newest[0]):
                newest = (doc.newest_date, doc.number)
        if newest is not None and entry.checked < newest[0]:
            report.findings.append(
                Finding(
                    "stale",
                    where,
                    f"checked {entry.checked.isoformat()}, before {newest[1]} "
                    f"({newest[0].isoformat()}) that it cites",
                )
            )


class BasisPeriod(Protocol):
    """What the check reads of ``scheduler.deadlines.BasisPeriod`` (knowledge never imports it)."""

    @property
    def start(self) -> dt.date | None: ...
    @property
    def until(self) -> dt.date | None: ...
    @property
    def refs(self) -> Sequence[Reference]: ...


class RuleBasis(Protocol):
    """What the check reads of a deadline rule: its id and its basis per period."""

    @property
    def id(self) -> str: ...
    @property
    def basis(self) -> Sequence[BasisPeriod]: ...


def check_rules(
    rules: Iterable[RuleBasis], corpus: LegalCorpus, day: dt.date, report: CheckReport
) -> None:
    """Adds the findings of the deadline rules (``scheduler.deadlines.Rule``) to ``report``.

    Each basis period must cite documents in force during the whole period; the
    period that covers ``day`` and later must cite documents in force today.
    """
    for rule in rules:
        report.rules += 1
        where = f"rule {rule.id}"
        for period in rule.basis:
            start, until = period.start, period.until
            for ref in period.refs:
                if not _resolve(corpus, ref, where, report):
                    continue
                doc = corpus.register.documents[ref.doc]
                checks = [d for d in (start, until) if d is not None]
                if until is None or until >= day:
                    checks.append(max(day, start) if start else day)
                for moment in checks:
                    status = doc.status_on(moment)
                    if not status.current:
                        span = f"{start or '…'} to {until or '…'}"
                        report.findings.append(
                            Finding(
                                "not_current",
                                where,
                                f"period {span} cites {doc.number}, {status.value} on {moment}",
                            )
                        )
                        break


def check_all(
    kb: KnowledgeBase | Iterable[Entry],
    rules: Iterable[RuleBasis],
    corpus: LegalCorpus,
    day: dt.date | None = None,
) -> CheckReport:
    """Checks the knowledge base and the deadline rules against the corpus on ``day``."""
    report = CheckReport(day=day or dt.date.today())
    check_entries(kb, corpus, report.day, report)
    check_rules(rules, corpus, report.day, report)
    return report
