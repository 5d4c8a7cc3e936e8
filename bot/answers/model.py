"""The service's verdict on a question (``Answer``, ``AnswerKind``) and how it becomes replies."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from bot.answers.render import quote_button
from bot.clock import format_date
from bot.nlu_model.client import ParseResult
from bot.replies import Button, Citation, Reply
from knowledge.base import Entry

__all__ = ["LIENHE_BUTTON", "Answer", "AnswerKind", "classified"]

LIENHE_BUTTON = Button("🙋 Hỏi cán bộ (/lienhe)", "cmd:lienhe")


class AnswerKind(enum.StrEnum):
    """How a question was answered."""

    ENTRY = "entry"  # a confident NLU intent mapped to its entry
    SUGGESTED = "suggested"  # a lexical match, framed as "Có phải bạn hỏi về ...?"
    CLAUSE = "clause"  # the most relevant clause, quoted verbatim (no entry fits)
    CHITCHAT = "chitchat"
    OUT_OF_SCOPE = "out_of_scope"  # another field of law: where to ask instead
    FALLBACK = "fallback"


def classified(parse: ParseResult | None) -> dict[str, Any]:
    """What an answer records of the classifier's verdict (nothing when it was not asked)."""
    if parse is None:
        return {"intent": None, "confidence": None, "nlu_available": False}
    return {"intent": parse.intent, "confidence": parse.confidence, "nlu_available": True}


@dataclass(frozen=True)
class Answer:
    """The service's verdict on one question, channel-neutral."""

    question: str
    kind: AnswerKind
    text: str
    intent: str | None = None
    confidence: float | None = None
    entry: Entry | None = None
    suggestions: tuple[Entry, ...] = ()
    nlu_available: bool = True
    matched_by: str | None = None
    latency_ms: float = 0.0
    extra_buttons: tuple[Button, ...] = field(default=())
    citations: tuple[Citation, ...] = ()
    clauses: tuple[str, ...] = ()  # ids of the clauses quoted (kind CLAUSE)
    parts: tuple[Answer, ...] = ()  # a letter's answers, one per question, in order
    field: str | None = None  # the neighbouring field (kind OUT_OF_SCOPE)

    @property
    def fallback(self) -> bool:
        """True when the bot gave no answer from the knowledge base or the law."""
        if self.parts:
            return all(p.fallback for p in self.parts)
        return self.kind in (AnswerKind.FALLBACK, AnswerKind.OUT_OF_SCOPE)

    @property
    def answered(self) -> tuple[Answer, ...]:
        """The answers shown: the parts of a letter, or this answer alone."""
        return self.parts or (self,)

    def buttons(self) -> tuple[Button, ...]:
        """The choices offered with the answer: the law verbatim, related topics, then staff."""
        topics = tuple(Button(e.title, f"faq:{e.id}") for e in self.suggestions)
        if self.kind is AnswerKind.CHITCHAT:
            return topics
        law = (quote_button(self.entry),) if self.entry and self.quotable else ()
        return (*law, *topics, *self.extra_buttons, LIENHE_BUTTON)

    @property
    def quotable(self) -> bool:
        """True when the answer cites a clause whose text we hold."""
        return any(c.quotable for c in self.citations)

    def to_replies(self) -> list[Reply]:
        """The answer as channel-neutral replies: one per question of a letter."""
        return [Reply(a.text, a.buttons(), a.citations) for a in self.answered]

    def to_json(self) -> dict[str, Any]:
        """The JSON contract of ``coopbot ask --json``."""
        return {
            "text": self.question,
            "intent": self.intent,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "entry_id": self.entry.id if self.entry else None,
            "answer": self.text,
            "sources": [
                {"document": c.document, "article": c.article, "clause_id": c.ref_id}
                for c in self.citations
            ],
            "fallback": self.fallback,
            "kind": self.kind.value,
            "matched_by": self.matched_by,
            "suggestions": [e.id for e in self.suggestions],
            "last_checked": format_date(self.entry.checked) if self.entry else None,
            "latency_ms": round(self.latency_ms, 2),
            "clauses": list(self.clauses),
            "field": self.field,
            "parts": [p.to_json() for p in self.parts],
        }
