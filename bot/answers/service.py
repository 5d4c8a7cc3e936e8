"""``AnswerService``: a member's question in; a cited answer, a suggestion or a fallback out.

The order of its decisions, for a question and for a letter, is told in the
package's docstring (bot/answers/__init__.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Sequence

from bot.answers.model import Answer, AnswerKind, classified
from bot.answers.policy import LetterPolicy
from bot.answers.questions import QuestionParts, extract, is_letter
from bot.answers.render import citations, render_entry
from bot.answers.texts import (
    EMPTY_TEXT,
    FALLBACK_TEXT,
    clause_answer,
    out_of_scope_answer,
    with_corrections,
)
from bot.nlu_model.client import NLUClient, NLUError, ParseResult
from bot.nlu_model.review_queue import ReviewLog
from knowledge.base import CHITCHAT_INTENTS, OUT_OF_SCOPE_INTENT, Entry, KnowledgeBase
from knowledge.domain import DomainGate, default_gate
from knowledge.law.corpus import LegalCorpus, default_corpus
from knowledge.law.retrieval import ClauseRetriever, Retrieved
from knowledge.premises import Premises, default_premises
from knowledge.search import KnowledgeSearch, SearchHit
from nlu.textnorm import clean_text

__all__ = ["AnswerService"]

# The package's logger, as before the split: log lines keep their "bot.answers" name.
log = logging.getLogger("bot.answers")

_NLU_MAX_CHARS = 500  # the classifier gains nothing from longer texts
# The least classifier confidence that, with a strong search match for the same
# entry among the top three, answers that entry (the two signals agree).
AGREEMENT_MIN_CONFIDENCE = 0.25
# Offered when nothing in the knowledge base comes close.
DEFAULT_SUGGESTIONS = ("so_thanh_vien_toi_thieu", "von_gop_toi_da", "han_khai_thue_quy")


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
            return out_of_scope_answer(question, verdict, parse), parse, "out_of_scope"
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
            return out_of_scope_answer(question, verdict, parse), parse, "out_of_scope"
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
        parts[0] = with_corrections(parts[0], self.premises.found(letter.text), self.corpus)
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
        entry = self.policy.entry_for(
            self.kb, parse, hits, clauses, both=later and self.policy.later_both
        )
        if entry is not None:
            return self._entry_answer(question, entry, parse, AnswerKind.ENTRY, "letter")
        leaning_away = (
            parse is not None
            and parse.intent in (OUT_OF_SCOPE_INTENT, *CHITCHAT_INTENTS)
            and parse.confidence >= self.threshold
        )
        if self.policy.strong_clause(clauses) and not leaning_away:
            return clause_answer(question, clauses[0], parse)
        return self._fallback(question, parse, hits=hits)

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
            **classified(parse),
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
            **classified(parse),
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
