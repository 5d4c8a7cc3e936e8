"""The register of legal documents: every document the assistant may cite, with or without text.

``documents.yml`` beside this module lists each document's number, names, type,
dates and status, what it replaces and what replaced it, and for the texts we
hold, the source file and its hash. Validity on any day is computed from the
dates: a document is cited as current only while it is in force.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from knowledge.law.parser import POINT_LETTERS
from knowledge.law.references import Reference

__all__ = [
    "DEFAULT_REGISTER",
    "SOURCES_DIR",
    "Document",
    "DocumentStatus",
    "Register",
    "RegisterError",
    "load_register",
]

LAW_DIR = Path(__file__).resolve().parent
DEFAULT_REGISTER = LAW_DIR / "documents.yml"
SOURCES_DIR = LAW_DIR / "sources"

TYPE_LABELS = {
    "luat": "Luật",
    "nghi_dinh": "Nghị định",
    "nghi_quyet": "Nghị quyết",
    "quyet_dinh": "Quyết định",
    "chi_thi": "Chỉ thị",
    "thong_tu": "Thông tư",
    "nghi_quyet_tw": "Nghị quyết của Trung ương Đảng",
}


class RegisterError(ValueError):
    """The register is missing, malformed or inconsistent."""


class DocumentStatus(enum.StrEnum):
    """Where a document stands on a given day."""

    IN_FORCE = "in_force"
    PARTLY_REPEALED = "partly_repealed"  # in force, some provisions repealed
    NOT_YET_IN_FORCE = "not_yet_in_force"
    REPLACED = "replaced"
    REPEALED = "repealed"

    @property
    def label(self) -> str:
        """The status in Vietnamese, as members read it."""
        return _STATUS_LABELS[self]

    @property
    def current(self) -> bool:
        """True when the document may be cited as current law."""
        return self in (DocumentStatus.IN_FORCE, DocumentStatus.PARTLY_REPEALED)


_STATUS_LABELS = {
    DocumentStatus.IN_FORCE: "còn hiệu lực",
    DocumentStatus.PARTLY_REPEALED: "còn hiệu lực (một phần bị bãi bỏ)",
    DocumentStatus.NOT_YET_IN_FORCE: "chưa có hiệu lực",
    DocumentStatus.REPLACED: "đã bị thay thế",
    DocumentStatus.REPEALED: "đã hết hiệu lực",
}


class Document(BaseModel):
    """One registered legal document."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: str = Field(min_length=3)
    short: str = Field(min_length=3)
    title: str = Field(min_length=3)
    type: str
    issuer: str
    issued: dt.date | None = None
    in_force: dt.date | None = None
    ended: dt.date | None = None
    status: DocumentStatus
    replaces: tuple[str, ...] = ()
    replaced_by: str | None = None
    source: str | None = None
    sha256: str | None = None
    articles: int | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Document:
        if self.type not in TYPE_LABELS:
            raise ValueError(f"unknown type {self.type!r}; one of {sorted(TYPE_LABELS)}")
        ended_status = self.status in (DocumentStatus.REPLACED, DocumentStatus.REPEALED)
        if ended_status and self.ended is None:
            raise ValueError(f"status {self.status} needs the date it ended ('ended')")
        if self.status is DocumentStatus.REPLACED and not self.replaced_by:
            raise ValueError("a replaced document names what replaced it ('replaced_by')")
        if self.in_force and self.ended and self.ended <= self.in_force:
            raise ValueError("'ended' is not after 'in_force'")
        if self.source and not (self.sha256 and self.articles):
            raise ValueError("a document with a source text needs 'sha256' and 'articles'")
        return self

    @property
    def slug(self) -> str:
        """``17-2023-qh15``: the number for links and file names."""
        plain = self.number.replace("Đ", "D").replace("đ", "d")
        return plain.replace("/", "-").lower()

    @property
    def name(self) -> str:
        """How answers name it: the short name with the number when the name lacks it."""
        return self.short if self.number in self.short else f"{self.short} ({self.number})"

    @property
    def has_text(self) -> bool:
        """True when the text is held and can be quoted."""
        return self.source is not None

    def status_on(self, day: dt.date) -> DocumentStatus:
        """The document's status on ``day``, from its dates."""
        if self.ended is not None and day >= self.ended:
            if self.status in (DocumentStatus.REPLACED, DocumentStatus.REPEALED):
                return self.status
            return DocumentStatus.REPLACED if self.replaced_by else DocumentStatus.REPEALED
        if self.in_force is not None and day < self.in_force:
            return DocumentStatus.NOT_YET_IN_FORCE
        if self.status is DocumentStatus.NOT_YET_IN_FORCE and self.in_force is None:
            return DocumentStatus.NOT_YET_IN_FORCE
        if self.status is DocumentStatus.PARTLY_REPEALED:
            return DocumentStatus.PARTLY_REPEALED
        return DocumentStatus.IN_FORCE

    def in_force_on(self, day: dt.date) -> bool:
        """True when the document may be cited as current on ``day``."""
        return self.status_on(day).current

    @property
    def newest_date(self) -> dt.date | None:
        """The latest of its issue and in-force dates: a check older than this is stale."""
        dates = [d for d in (self.issued, self.in_force) if d is not None]
        return max(dates) if dates else None


class Register:
    """All registered documents by number."""

    def __init__(self, documents: dict[str, Document], checked: dt.date | None = None) -> None:
        """Wraps the documents; see :func:`load_register`."""
        self.documents = documents
        self.checked = checked

    def __len__(self) -> int:
        return len(self.documents)

    def __iter__(self) -> Any:
        return iter(self.documents.values())

    def get(self, number: str) -> Document | None:
        """Returns the document with this number, or None."""
        return self.documents.get(number)

    def by_slug(self, slug: str) -> Document | None:
        """Returns the document whose slug is ``slug``, or None."""
        slug = slug.lower()
        return next((d for d in self.documents.values() if d.slug == slug), None)

    def find(self, text: str) -> Document | None:
        """The document a member means by ``295/2026``, ``295/2026/nd-cp`` or ``17/2023``."""
        wanted = text.strip().lower().replace("đ", "d")
        if not wanted:
            return None
        for doc in self.documents.values():
            number = doc.number.lower().replace("đ", "d")
            if number == wanted or number.startswith(wanted + "/") or doc.slug == wanted:
                return doc
        return None

    def cite(self, refs: Sequence[Reference]) -> str:
        """The basis line: ``Luật HTX 2023 (17/2023/QH15), Điều 4 khoản 7, khoản 21; ...``.

        References are grouped by document, then by article, in the order given.
        """
        groups: dict[str, dict[int | None, list[Reference]]] = {}
        for ref in refs:
            groups.setdefault(ref.doc, {}).setdefault(ref.article, []).append(ref)
        parts = []
        for number, by_article in groups.items():
            doc = self.get(number)
            labels = [doc.name if doc else number]
            for article in sorted(a for a in by_article if a is not None):
                article_refs = by_article[article]
                if any(r.clause is None and r.point is None for r in article_refs):
                    labels.append(f"Điều {article}")
                    continue
                prefix = f"Điều {article} "
                ordered = sorted(article_refs, key=_unit_order)
                subs = dict.fromkeys(r.label.removeprefix(prefix) for r in ordered)
                labels.append(prefix + ", ".join(subs))
            parts.append(", ".join(labels))
        return "; ".join(parts)


def _unit_order(ref: Reference) -> tuple[int, int, int]:
    """Clauses by number, then points in Vietnamese letter order, then sub-points."""
    letter, _, sub = (ref.point or "").partition(".")
    point = POINT_LETTERS.index(letter) + 1 if letter else 0
    return (ref.clause or 0, point, int(sub) if sub else 0)


def load_register(path: Path = DEFAULT_REGISTER) -> Register:
    """Loads and validates the register."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RegisterError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("documents"), list):
        raise RegisterError(f"{path}: expected a mapping with a 'documents' list")
    documents: dict[str, Document] = {}
    for raw in data["documents"]:
        label = raw.get("number", "?") if isinstance(raw, dict) else "?"
        try:
            doc = Document.model_validate(raw)
        except ValidationError as exc:
            raise RegisterError(f"{path}: document {label}: {exc}") from exc
        if doc.number in documents:
            raise RegisterError(f"{path}: document {doc.number} listed twice")
        documents[doc.number] = doc
    for doc in documents.values():
        for other in (*doc.replaces, *([doc.replaced_by] if doc.replaced_by else [])):
            if other not in documents:
                raise RegisterError(f"{path}: {doc.number} names unregistered {other}")
        if doc.replaced_by and doc.number not in documents[doc.replaced_by].replaces:
            raise RegisterError(
                f"{path}: {doc.number} is replaced_by {doc.replaced_by}, which does not list it"
            )
    checked = data.get("checked")
    return Register(documents, checked if isinstance(checked, dt.date) else None)
