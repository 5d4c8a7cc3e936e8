"""The letter policy: which answer a letter's question part gets, from three signals.

The classifier's confidence, the entry search and the clause retrieval decide
between an entry, a quoted clause and the fallback (``AnswerService._decide``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.nlu_model.client import ParseResult
from knowledge.base import Entry, KnowledgeBase
from knowledge.law.retrieval import ClauseRetriever, Retrieved
from knowledge.search import SearchHit

__all__ = ["LetterPolicy"]


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

    def entry_for(
        self,
        kb: KnowledgeBase,
        parse: ParseResult | None,
        hits: Sequence[SearchHit],
        clauses: Sequence[Retrieved],
        *,
        both: bool = False,
    ) -> Entry | None:
        """The classifier's entry when it is sure, or unsure but confirmed by retrieval."""
        if parse is None or not parse.ranking:
            return None
        searched = {
            h.entry.id
            for h in hits[:3]
            if h.score >= self.search_min and h.coverage >= self.search_coverage
        }
        articles = set(ClauseRetriever.articles(clauses, self.law_articles))
        for rank, guess in enumerate(parse.ranking[: self.rank_depth]):
            entry = kb.get(guess.name)
            if entry is None or guess.confidence < self.entry_agree:
                continue
            if rank == 0 and guess.confidence >= self.entry_alone:
                return entry
            by_search = entry.id in searched
            by_law = bool(articles & {ref.article_id for ref in entry.basis if ref.article_id})
            either = rank == 0 and not (self.agree_both or both)
            if (by_search or by_law) if either else (by_search and by_law):
                return entry
        return None

    def strong_clause(self, clauses: Sequence[Retrieved]) -> bool:
        """A best clause worth quoting: a high score, and its article holds the top three.

        One clause matching a few common words is a coincidence; several clauses of
        the same article on top means the article is about what was asked.
        """
        if not clauses or clauses[0].score < self.clause_min:
            return False
        top = clauses[0].article_id
        return sum(c.article_id == top for c in clauses[:3]) >= self.clause_agree
