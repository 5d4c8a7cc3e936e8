"""A reference to the law: a document number, and optionally an article, a clause and a point.

Knowledge entries and deadline rules cite the law with these; the corpus
resolves them and renders the citation, so no citation text is written by hand.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from knowledge.law.parser import POINT_LETTERS

__all__ = ["Reference", "parse_reference"]

_POINT_LABEL = rf"[{POINT_LETTERS}](?:\.\d+)?"
_ID = re.compile(
    rf"^(?P<doc>[^:]+)(?::d(?P<article>\d+)(?::k(?P<clause>\d+))?(?::(?P<point>{_POINT_LABEL}))?)?$"
)


class Reference(BaseModel):
    """``{doc: "17/2023/QH15", article: 33, clause: 1, point: "e"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    doc: str = Field(min_length=3)
    article: int | None = Field(default=None, ge=1)
    clause: int | None = Field(default=None, ge=1)
    point: str | None = Field(default=None, pattern=rf"^{_POINT_LABEL}$")

    @model_validator(mode="after")
    def _nested(self) -> Reference:
        if self.clause is not None and self.article is None:
            raise ValueError("a clause needs its article")
        if self.point is not None and self.article is None:
            raise ValueError("a point needs its article")
        return self

    @property
    def id(self) -> str:
        """The stable id, e.g. ``17/2023/QH15:d33:k1:e``."""
        parts = [self.doc]
        if self.article is not None:
            parts.append(f"d{self.article}")
        if self.clause is not None:
            parts.append(f"k{self.clause}")
        if self.point is not None:
            parts.append(self.point)
        return ":".join(parts)

    @property
    def article_id(self) -> str | None:
        """The id of the article this reference is in (None for a whole document)."""
        return None if self.article is None else f"{self.doc}:d{self.article}"

    @property
    def label(self) -> str:
        """``Điều 33 khoản 1 điểm e`` (empty for a whole document)."""
        parts = []
        if self.article is not None:
            parts.append(f"Điều {self.article}")
        if self.clause is not None:
            parts.append(f"khoản {self.clause}")
        if self.point is not None:
            parts.append(f"điểm {self.point}")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.id


def parse_reference(text: str) -> Reference:
    """Parses a stable id (``17/2023/QH15:d33:k1:e``) back into a reference."""
    match = _ID.match(text.strip())
    if not match:
        raise ValueError(f"not a reference id: {text!r}")
    return Reference(
        doc=match.group("doc"),
        article=int(match.group("article")) if match.group("article") else None,
        clause=int(match.group("clause")) if match.group("clause") else None,
        point=match.group("point"),
    )
