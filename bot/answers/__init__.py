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

A letter (a long message, or a story around its questions) goes another way
(:meth:`AnswerService._answer_letter`): its question parts are extracted
(bot/questions.py), the domain gate (knowledge/domain.py) sends another field
of law to an honest "ngoài phạm vi" answer, and each question part (at most
three) is decided by one policy over the classifier's confidence, the entry
search and the clause retrieval (knowledge/law/retrieval.py): the entry when
they agree, the most relevant clause quoted verbatim when retrieval is strong
and no entry fits, the fallback otherwise. A premise from the repealed 2012 law
is corrected first (knowledge/premises.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.answers.questions import QuestionParts, extract, is_letter
from bot.clock import format_date
from bot.nlu_model.client import NLUClient, NLUError, ParseResult
from bot.nlu_model.review_queue import ReviewLog
from bot.replies import Button, Citation, Reply
from knowledge.base import CHITCHAT_INTENTS, OUT_OF_SCOPE_INTENT, Entry, KnowledgeBase
from knowledge.domain import DomainGate, Verdict, default_gate
from knowledge.law.corpus import LegalCorpus, default_corpus
from knowledge.law.retrieval import ClauseRetriever, Retrieved
from knowledge.premises import Premise, Premises, default_premises
from knowledge.search import KnowledgeSearch, SearchHit
from nlu.textnorm import clean_text

__all__ = [
    "Answer",
    "AnswerKind",
    "AnswerService",
    "LetterPolicy",
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
QUOTE_MARK = "📜 Trích nguyên văn"
CLAUSE_CAVEAT = (
    "Đây là quy định gần nhất với câu hỏi của bạn, trích nguyên văn; mình chưa có câu trả "
    "lời soạn sẵn cho đúng trường hợp này. Hãy đọc cả điều luật, hoặc gõ /lienhe để cán bộ "
    "trả lời cụ thể."
)
OUT_OF_SCOPE_TEXT = (
    "Câu hỏi của bạn thuộc lĩnh vực {field}, ngoài phạm vi của Trợ lý HTX: mình chỉ trả "
    "lời về hợp tác xã, tổ hợp tác, liên hiệp HTX và các chính sách, thủ tục liên quan, nên "
    "không muốn trả lời đoán.\n"
    "Những câu hỏi như vậy thường được giải đáp tại: {where}.\n"
    "Nếu câu hỏi có phần liên quan đến HTX của bạn, hãy gõ lại riêng phần đó, hoặc gõ "
    "/lienhe để hỏi cán bộ Liên minh HTX."
)


@dataclass(frozen=True)
class LetterPolicy:
    """Thresholds of the letter policy, calibrated on the training letters only.

    ``entry_alone``: classifier confidence that answers an entry by itself;
    ``entry_agree``: the least confidence that answers it when the entry search
    (top three with at least ``search_min`` and ``search_coverage``) or the
    clause retrieval (an article the entry cites among the top
    ``law_articles`` articles) points to the same entry; ``rank_depth``: how
    many of the classifier's ranked intents are tried (those after the first
    need both the search and the retrieval to agree); ``clause_min``: the least
    BM25 score of the best clause to quote it when no entry fits, and
    ``clause_agree``: how many of the top three clauses must be of its article;
    ``context_weight``: the story's weight in retrieval. A letter's second and
    third questions are often asides or restate the first ("Tôi cần nắm rõ để
    báo cáo lại cho Hội đồng quản trị"): with ``later_both`` a fairly sure entry
    for them needs both the search and the retrieval to agree.
    """

    entry_alone: float = 0.8
    entry_agree: float = 0.3
    clause_min: float = 30.0
    context_weight: float = 0.3
    law_articles: int = 3
    search_min: float = 9.0
    search_coverage: float = 0.4  # a share of the question's words the entry must have
    rank_depth: int = 1
    clause_agree: int = 2
    agree_both: bool = False  # a fairly sure entry needs the search AND the retrieval
    later_both: bool = True  # the same, for the second and third questions of a letter


class AnswerKind(enum.StrEnum):
    """How a question was answered."""

    ENTRY = "entry"  # a confident NLU intent mapped to its entry
    SUGGESTED = "suggested"  # a lexical match, framed as "Có phải bạn hỏi về ...?"
    CLAUSE = "clause"  # the most relevant clause, quoted verbatim (no entry fits)
    CHITCHAT = "chitchat"
    OUT_OF_SCOPE = "out_of_scope"  # another field of law: where to ask instead
    FALLBACK = "fallback"


def _classified(parse: ParseResult | None) -> dict[str, Any]:
    """What an answer records of the classifier's verdict (nothing when it was not asked)."""
    if parse is None:
        return {"intent": None, "confidence": None, "nlu_available": False}
    return {"intent": parse.intent, "confidence": parse.confidence, "nlu_available": True}


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
        gate: DomainGate | None = None,
        premises: Premises | None = None,
        policy: LetterPolicy | None = None,
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
        self.gate = gate or default_gate()
        self.premises = premises or default_premises()
        self.policy = policy or LetterPolicy()
        # Told of every answer with its channel (the metrics count them); never raises into us.
        self.on_answer: Callable[[str, Answer], None] | None = None

    @property
    def retriever(self) -> ClauseRetriever:
        """The clause index of the corpus (built once, on first use)."""
        return self.corpus.retriever

    async def answer(
        self,
        question: str,
        *,
        channel: str = "cli",
        member_id: int | None = None,
        review: bool = True,
    ) -> Answer:
        """Answers one question; never raises for odd text or an NLU outage.

        ``member_id``: who asked (a question kept for review is theirs);
        ``review=False``: never keep it for review (a developer's test question).
        """
        started = time.perf_counter()
        answer, parse, reason = await self._answer(question)
        latency = (time.perf_counter() - started) * 1000
        if reason is None and self._unsure(answer):
            reason = "unsure"
        if reason is not None and review:
            await self._review(question, parse, channel, reason, member_id)
        answered = dataclasses.replace(answer, latency_ms=latency)
        if self.on_answer is not None:
            try:
                self.on_answer(channel, answered)
            except Exception:  # counting must never cost a member their answer
                log.exception("answer observer failed")
        return answered

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

        if is_letter(question):
            return await self._answer_letter(question)
        verdict = self.gate.judge([text])
        parse = await self._parse(text)
        if not verdict.in_scope:
            return self._out_of_scope(question, verdict, parse), parse, "out_of_scope"
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

    # -- letters ------------------------------------------------------------------------

    async def _answer_letter(self, question: str) -> tuple[Answer, ParseResult | None, str | None]:
        """A letter: each question part (at most three) answered by the one policy."""
        letter = extract(question)
        verdict = self.gate.judge(letter.questions, letter.story)
        if not verdict.in_scope:
            parse = await self._parse(letter.questions[0]) if letter.questions else None
            return self._out_of_scope(question, verdict, parse), parse, "out_of_scope"
        # The NLU service parses the question parts while this process retrieves.
        parses, evidence = await asyncio.gather(
            asyncio.gather(*(self._parse(q) for q in letter.questions)),
            asyncio.to_thread(self._evidence, letter),
        )
        parts: list[Answer] = []
        seen: set[str] = set()
        for index, (parse, (clauses, hits)) in enumerate(zip(parses, evidence, strict=True)):
            answer = self._decide(question, parse, clauses, hits, later=index > 0)
            key = answer.entry.id if answer.entry else ",".join(answer.clauses) or answer.kind
            if key in seen:
                continue  # two questions answered by the same entry: shown once
            seen.add(key)
            parts.append(answer)
        if not parts:
            return self._fallback(question, None), None, "low_confidence"
        parts[0] = self._with_corrections(parts[0], self.premises.found(letter.text))
        reason = None
        if all(a.fallback for a in parts):
            reason = "nlu_unavailable" if all(p is None for p in parses) else "low_confidence"
        first_parse = next((p for p in parses if p is not None), None)
        if len(parts) == 1:
            return dataclasses.replace(parts[0], question=question), first_parse, reason
        # Logged as the first question that got an answer; shown as one reply per question.
        lead = next((a for a in parts if not a.fallback), parts[0])
        combined = dataclasses.replace(lead, question=question, parts=tuple(parts))
        return combined, first_parse, reason

    def _evidence(self, letter: QuestionParts) -> list[tuple[list[Retrieved], list[SearchHit]]]:
        """For each question part: the best clauses (the story as context) and entry hits."""
        policy = self.policy
        context = (
            self.retriever.scores(letter.story)
            if letter.story and policy.context_weight > 0
            else ""
        )
        return [
            (
                self.retriever.search(
                    part, 5, context=context, context_weight=policy.context_weight
                ),
                self.search.search(part),
            )
            for part in letter.questions
        ]

    def _decide(
        self,
        question: str,
        parse: ParseResult | None,
        clauses: Sequence[Retrieved],
        hits: Sequence[SearchHit],
        *,
        later: bool = False,
    ) -> Answer:
        """One question part: the entry, a quoted clause, or the fallback.

        ``later``: a part after the letter's first question, held to the stricter
        agreement when the policy says so.
        """
        entry = self._letter_entry(parse, hits, clauses, both=later and self.policy.later_both)
        if entry is not None:
            return self._entry_answer(question, entry, parse, AnswerKind.ENTRY, "letter")
        leaning_away = (
            parse is not None
            and parse.intent in (OUT_OF_SCOPE_INTENT, *CHITCHAT_INTENTS)
            and parse.confidence >= self.threshold
        )
        if self._strong_clause(clauses) and not leaning_away:
            return self._clause_answer(question, clauses[0], parse)
        return self._fallback(question, parse, hits=hits)

    def _letter_entry(
        self,
        parse: ParseResult | None,
        hits: Sequence[SearchHit],
        clauses: Sequence[Retrieved],
        *,
        both: bool = False,
    ) -> Entry | None:
        """The classifier's entry when it is sure, or unsure but confirmed by retrieval."""
        if parse is None or not parse.ranking:
            return None
        policy = self.policy
        searched = {
            h.entry.id
            for h in hits[:3]
            if h.score >= policy.search_min and h.coverage >= policy.search_coverage
        }
        articles = set(ClauseRetriever.articles(clauses, policy.law_articles))
        for rank, guess in enumerate(parse.ranking[: policy.rank_depth]):
            entry = self.kb.get(guess.name)
            if entry is None or guess.confidence < policy.entry_agree:
                continue
            if rank == 0 and guess.confidence >= policy.entry_alone:
                return entry
            by_search = entry.id in searched
            by_law = bool(articles & {ref.article_id for ref in entry.basis if ref.article_id})
            either = rank == 0 and not (policy.agree_both or both)
            if (by_search or by_law) if either else (by_search and by_law):
                return entry
        return None

    def _strong_clause(self, clauses: Sequence[Retrieved]) -> bool:
        """A best clause worth quoting: a high score, and its article holds the top three.

        One clause matching a few common words is a coincidence; several clauses of
        the same article on top means the article is about what was asked.
        """
        if not clauses or clauses[0].score < self.policy.clause_min:
            return False
        top = clauses[0].article_id
        return sum(c.article_id == top for c in clauses[:3]) >= self.policy.clause_agree

    def _clause_answer(self, question: str, hit: Retrieved, parse: ParseResult | None) -> Answer:
        """The most relevant clause, verbatim and cited, with the full article and staff."""
        heading = f"{hit.ref.label} {hit.document.name}"
        text = "\n".join(
            [
                f"Quy định liên quan nhất: {heading} ({hit.article.title}):",
                "",
                f"{QUOTE_MARK}:",
                f"«{hit.text.strip()}»",
                "",
                CLAUSE_CAVEAT,
            ]
        )
        button = Button(
            f"📖 Đọc cả Điều {hit.ref.article}", f"dieu:{hit.document.slug}:{hit.ref.article}"
        )
        return Answer(
            question,
            AnswerKind.CLAUSE,
            text,
            **_classified(parse),
            matched_by="law",
            extra_buttons=(button,),
            citations=(Citation(hit.document.name, hit.ref.label, hit.ref.id, True),),
            clauses=(hit.ref.id,),
        )

    def _out_of_scope(self, question: str, verdict: Verdict, parse: ParseResult | None) -> Answer:
        """The honest "ngoài phạm vi" answer: which field, and where it is usually answered."""
        field_ = verdict.field
        assert field_ is not None  # out of scope always names the field it found
        return Answer(
            question,
            AnswerKind.OUT_OF_SCOPE,
            OUT_OF_SCOPE_TEXT.format(field=field_.name, where=field_.where),
            **_classified(parse),
            matched_by="gate",
            field=field_.id,
        )

    def _with_corrections(self, answer: Answer, premises: Sequence[Premise]) -> Answer:
        """The answer opened by a correction of each 2012 premise the letter states."""
        if not premises:
            return answer
        lines = [
            f"⚠️ Lưu ý: {p.correction} (Căn cứ: {self.corpus.cite(list(p.basis))})" for p in premises
        ]
        return dataclasses.replace(answer, text="\n".join([*lines, "", answer.text]))

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
            **_classified(parse),
            entry=entry,
            suggestions=related,
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
            **_classified(parse),
            suggestions=suggestions,
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
