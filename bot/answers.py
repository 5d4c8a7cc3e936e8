"""The answer service: a member's question in; a cited answer, a suggestion or a fallback out.

Order of decisions (ARCHITECTURE.md "Answering a question"):

1. clean the text (NFC, spaces, control characters); the original is kept for logs;
2. ask the NLU service; a confident chit-chat intent gets a chit-chat reply,
   a confident ``out_of_scope`` the fallback, a confident knowledge intent its entry;
3. otherwise (unsure, or NLU unreachable) BM25 search over the entries; a strong
   match is offered as "Có phải bạn hỏi về ...?";
4. otherwise the fallback: say plainly that the bot does not know, offer the
   closest topics and the hand-over to staff (/lienhe), and log the question
   for review. A guess is never presented as a legal answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.nlu_client import NLUClient, NLUError, ParseResult
from bot.replies import Button, Citation, Reply
from bot.review import ReviewLog
from knowledge.base import CHITCHAT_INTENTS, OUT_OF_SCOPE_INTENT, Entry, KnowledgeBase
from knowledge.law.corpus import LegalCorpus, default_corpus
from knowledge.search import KnowledgeSearch, SearchHit
from nlu.textnorm import clean_text

__all__ = [
    "Answer",
    "AnswerKind",
    "AnswerService",
    "citations",
    "quote_button",
    "render_entry",
]

log = logging.getLogger(__name__)

_NLU_MAX_CHARS = 500  # the classifier gains nothing from longer texts
LIENHE_BUTTON = Button("🙋 Hỏi cán bộ (/lienhe)", "cmd:lienhe")


def quote_button(entry: Entry) -> Button:
    """The choice that shows the entry's basis verbatim."""
    return Button("📜 Nguyên văn", f"law:{entry.id}")


FALLBACK_TEXT = (
    "Xin lỗi, mình chưa có câu trả lời chắc chắn cho câu hỏi này nên không muốn "
    "đoán. Câu hỏi đã được ghi lại để cán bộ bổ sung.\n"
    "Bạn có thể chọn một chủ đề gần nhất bên dưới, hoặc gõ /lienhe để được cán bộ "
    "Liên minh HTX trả lời trực tiếp."
)
EMPTY_TEXT = (
    'Bạn hãy gõ câu hỏi về hợp tác xã, ví dụ: "HTX cần bao nhiêu thành viên?" '
    'hoặc "hạn nộp tờ khai thuế quý là khi nào?".'
)
# The least classifier confidence that, with a strong search match for the same
# entry among the top three, answers that entry (the two signals agree).
AGREEMENT_MIN_CONFIDENCE = 0.25
# Offered when nothing in the knowledge base comes close.
DEFAULT_SUGGESTIONS = ("so_thanh_vien_toi_thieu", "von_gop_toi_da", "han_khai_thue_quy")


class AnswerKind(enum.StrEnum):
    """How a question was answered."""

    ENTRY = "entry"  # a confident NLU intent mapped to its entry
    SUGGESTED = "suggested"  # a lexical match, framed as "Có phải bạn hỏi về ...?"
    CHITCHAT = "chitchat"
    FALLBACK = "fallback"


def format_date(value: Any) -> str:
    """Formats a date the Vietnamese way (dd/mm/yyyy)."""
    return f"{value.day:02d}/{value.month:02d}/{value.year}"


def render_entry(entry: Entry, corpus: LegalCorpus, today: dt.date | None = None) -> str:
    """Renders an entry as plain text: title, answer, legal basis and last-checked date.

    The basis is generated from the entry's references. A cited document that is
    not in force on ``today`` (replaced after the entry was written, or not yet in
    force) is named with a warning, so an outdated answer is never shown as current.
    """
    day = today or dt.date.today()
    parts = [entry.title, "", entry.answer, "", f"📘 Căn cứ: {corpus.cite(entry.basis)}"]
    parts.append(f"🗓 Cập nhật: {format_date(entry.checked)}")
    for doc in corpus.current(entry.basis, day):
        status = doc.status_on(day)
        successor = corpus.register.get(doc.replaced_by) if doc.replaced_by else None
        instead = f", thay bằng {successor.name}" if successor else ""
        parts.append(
            f"⚠️ Lưu ý: {doc.name} {status.label}{instead}. Câu trả lời này đang chờ cập "
            "nhật theo văn bản mới; gõ /lienhe để hỏi cán bộ trước khi làm theo."
        )
    return "\n".join(parts)


def citations(entry: Entry, corpus: LegalCorpus) -> tuple[Citation, ...]:
    """The entry's references as citations: document name, article label, id, quotable."""
    result = []
    for ref in entry.basis:
        doc = corpus.register.get(ref.doc)
        quotable = doc is not None and doc.has_text and ref.article is not None
        result.append(Citation(doc.name if doc else ref.doc, ref.label, ref.id, quotable))
    return tuple(result)


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

    @property
    def fallback(self) -> bool:
        """True exactly when the bot could not answer from the knowledge base."""
        return self.kind is AnswerKind.FALLBACK

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
        """The answer as channel-neutral replies."""
        return [Reply(self.text, self.buttons(), self.citations)]

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
        }


class AnswerService:
    """Answers questions from the knowledge base, with the NLU service when it is up."""

    def __init__(
        self,
        kb: KnowledgeBase,
        search: KnowledgeSearch,
        nlu: NLUClient | None,
        *,
        threshold: float = 0.5,
        search_min_score: float = 9.0,
        search_min_coverage: float = 0.6,
        review_log: ReviewLog | None = None,
        review_threshold: float = 0.0,
        rng: random.Random | None = None,
        corpus: LegalCorpus | None = None,
    ) -> None:
        """Wires the service; ``nlu=None`` answers from lexical search only.

        Fallbacks go to ``review_log``, and so do answers whose NLU confidence
        is below ``review_threshold`` (or that came from search alone).
        """
        self.kb = kb
        self.search = search
        self.nlu = nlu
        self.threshold = threshold
        self.search_min_score = search_min_score
        self.search_min_coverage = search_min_coverage
        self.review_log = review_log
        self.review_threshold = review_threshold
        self._rng = rng or random.Random()
        self.corpus = corpus or default_corpus()

    async def answer(
        self, question: str, *, channel: str = "cli", member_id: int | None = None
    ) -> Answer:
        """Answers one question; never raises for odd text or an NLU outage.

        ``member_id``: who asked (a question kept for review is theirs).
        """
        started = time.perf_counter()
        answer, parse, reason = await self._answer(question)
        latency = (time.perf_counter() - started) * 1000
        if reason is None and self._unsure(answer):
            reason = "unsure"
        if reason is not None:
            await self._review(question, parse, channel, reason, member_id)
        return Answer(**{**answer.__dict__, "latency_ms": latency})

    def _unsure(self, answer: Answer) -> bool:
        """An entry answered by search alone, or with an NLU confidence below the review bar."""
        answered = answer.kind in (AnswerKind.ENTRY, AnswerKind.SUGGESTED)
        if self.review_threshold <= 0 or not answered:
            return False
        if answer.matched_by == "search" or answer.confidence is None:
            return True
        return answer.confidence < self.review_threshold

    async def _review(
        self,
        question: str,
        parse: ParseResult | None,
        channel: str,
        reason: str,
        member_id: int | None,
    ) -> None:
        if self.review_log is None:
            return
        try:
            await asyncio.to_thread(
                self.review_log.record,
                channel=channel,
                text=question,
                reason=reason,
                intent=parse.intent if parse else None,
                confidence=parse.confidence if parse else None,
                member_id=member_id,
                candidates=[(s.name, s.confidence) for s in parse.ranking[:3]] if parse else (),
            )
        except Exception:  # the member still gets an answer if the database fails
            log.exception("could not store a question for review")

    async def _answer(self, question: str) -> tuple[Answer, ParseResult | None, str | None]:
        """The answer, the NLU verdict, and why the question goes to review (None: it doesn't)."""
        text = clean_text(question)
        if not any(ch.isalnum() for ch in text):
            if text:  # punctuation or emoji only: nothing to learn from
                return self._fallback(question, None), None, None
            return Answer(question, AnswerKind.CHITCHAT, EMPTY_TEXT, matched_by=None), None, None

        parse = await self._parse(text)
        if parse is not None and parse.intent and parse.confidence >= self.threshold:
            if parse.intent in CHITCHAT_INTENTS:
                reply = self._rng.choice(self.kb.chitchat[parse.intent])
                return Answer(
                    question, AnswerKind.CHITCHAT, reply, parse.intent, parse.confidence,
                    matched_by="nlu",
                ), parse, None  # fmt: skip
            if parse.intent == OUT_OF_SCOPE_INTENT:
                return self._fallback(question, parse), parse, "out_of_scope"
            entry = self.kb.get(parse.intent)
            if entry is not None:
                answer = self._entry_answer(question, entry, parse, AnswerKind.ENTRY, "nlu")
                return answer, parse, None
            log.warning("NLU intent %r has no knowledge entry", parse.intent)

        hits = self.search.search(text)
        agreed = self._agreed_hit(hits, parse)
        if agreed is not None:
            # The classifier's best guess is also a strong search match: answer it plainly.
            answer = self._entry_answer(
                question, agreed.entry, parse, AnswerKind.ENTRY, "nlu+search"
            )
            return answer, parse, None
        best = self._accepted_hit(hits, parse)
        if best is not None:
            if parse is not None and parse.intent == best.entry.id:
                # Classifier and search agree: answer plainly, no "did you mean".
                answer = self._entry_answer(
                    question, best.entry, parse, AnswerKind.ENTRY, "nlu+search"
                )
                return answer, parse, None
            answer = self._entry_answer(question, best.entry, parse, AnswerKind.SUGGESTED, "search")
            return answer, parse, None
        reason = "nlu_unavailable" if parse is None else "low_confidence"
        return self._fallback(question, parse, hits=hits), parse, reason

    async def _parse(self, text: str) -> ParseResult | None:
        if self.nlu is None:
            return None
        try:
            return await self.nlu.parse(text[:_NLU_MAX_CHARS])
        except NLUError as exc:
            log.warning("NLU unavailable, answering from search: %s", exc)
            return None

    def _agreed_hit(self, hits: Sequence[SearchHit], parse: ParseResult | None) -> SearchHit | None:
        """The classifier's best intent when the two signals together favour it, else None.

        Among the strong search hits of the top three, each scores its classifier
        confidence plus its search score relative to the best hit. When the
        classifier's own best intent wins, it is answered plainly even below the
        confidence threshold: "htx can bao nhieu thanh vien" matches the quorum
        entry slightly better by words (13.0 against 12.0), while the classifier,
        unsure but right, puts the founding-members entry first. When the search's
        favourite wins instead, the usual rules apply ("Có phải bạn hỏi về ...?").
        """
        if not hits or parse is None or parse.confidence < AGREEMENT_MIN_CONFIDENCE:
            return None
        confidence = {s.name: s.confidence for s in parse.ranking}
        strong = [
            h
            for h in hits[:3]
            if h.score >= self.search_min_score and h.coverage >= self.search_min_coverage
        ]
        if not strong:
            return None
        best = max(strong, key=lambda h: confidence.get(h.entry.id, 0.0) + h.score / hits[0].score)
        return best if best.entry.id == parse.intent else None

    def _accepted_hit(
        self, hits: Sequence[SearchHit], parse: ParseResult | None
    ) -> SearchHit | None:
        if not hits:
            return None
        best = hits[0]
        if best.score < self.search_min_score or best.coverage < self.search_min_coverage:
            return None
        if parse is not None and parse.intent in (OUT_OF_SCOPE_INTENT, *CHITCHAT_INTENTS):
            # The classifier leans away from the domain: accept the lexical match
            # only if the classifier also ranks that entry among its top three.
            top = {s.name for s in parse.ranking[:3]}
            if best.entry.id not in top:
                return None
        return best

    def _entry_answer(
        self, question: str, entry: Entry, parse: ParseResult | None, kind: AnswerKind, by: str
    ) -> Answer:
        text = render_entry(entry, self.corpus)
        if kind is AnswerKind.SUGGESTED:
            text = f"Có phải bạn hỏi về «{entry.title}»?\n\n{text}"
        related = tuple(e for r in entry.related if (e := self.kb.get(r)) is not None)
        return Answer(
            question,
            kind,
            text,
            intent=parse.intent if parse else None,
            confidence=parse.confidence if parse else None,
            entry=entry,
            suggestions=related,
            nlu_available=parse is not None,
            matched_by=by,
            citations=citations(entry, self.corpus),
        )

    def _fallback(
        self, question: str, parse: ParseResult | None, *, hits: Sequence[SearchHit] = ()
    ) -> Answer:
        suggestions = self._suggestions(parse, hits)
        return Answer(
            question,
            AnswerKind.FALLBACK,
            FALLBACK_TEXT,
            intent=parse.intent if parse else None,
            confidence=parse.confidence if parse else None,
            suggestions=suggestions,
            nlu_available=parse is not None,
        )

    def _suggestions(
        self, parse: ParseResult | None, hits: Sequence[SearchHit]
    ) -> tuple[Entry, ...]:
        ids: list[str] = []
        if parse is not None and parse.intent != OUT_OF_SCOPE_INTENT:
            ids += [s.name for s in parse.ranking[:3] if s.name in self.kb.entries]
        ids += [h.entry.id for h in hits[:3]]
        if not ids:
            ids = list(DEFAULT_SUGGESTIONS)
        unique = list(dict.fromkeys(i for i in ids if i in self.kb.entries))
        return tuple(self.kb.entries[i] for i in unique[:3])
