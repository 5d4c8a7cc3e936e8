"""The FAQ search box's results: the chat's answer to the question, as links to pages.

The question goes through the same :class:`~bot.answers.AnswerService` as in
chat (diacritics or not); the page then links the entries it answered with,
the clauses it quoted, or says honestly that it has no answer, and lists the
other entries the lexical search finds close.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from bot.answers.model import Answer, AnswerKind
from bot.web.pages import BasisItem, basis_items, lines_of
from knowledge.base import Entry
from knowledge.law.corpus import LegalCorpus
from knowledge.law.references import parse_reference
from knowledge.search import KnowledgeSearch
from nlu.textnorm import clean_text

__all__ = ["MORE_RESULTS", "SearchView", "search_view"]

MORE_RESULTS: Final = 5


@dataclass(frozen=True, slots=True)
class SearchView:
    """What the results page shows.

    ``found``: the entries the question was answered with (``guessed``: by words
    alone, "is this what you mean?"); ``clauses``: the clauses quoted when no
    entry fits; ``notice``: the out-of-scope explanation; ``unanswered``: no
    answer at all; ``more``: other entries close to the question.
    """

    found: tuple[Entry, ...]
    guessed: bool
    clauses: tuple[BasisItem, ...]
    notice: tuple[str, ...]
    unanswered: bool
    more: tuple[Entry, ...]


def search_view(
    answer: Answer, search: KnowledgeSearch, corpus: LegalCorpus, day: dt.date
) -> SearchView:
    """The results page of ``answer`` (the search is asked for the other close entries)."""
    parts = answer.answered
    found = tuple(dict.fromkeys(p.entry for p in parts if p.entry is not None))
    guessed = bool(found) and all(
        p.kind is AnswerKind.SUGGESTED for p in parts if p.entry is not None
    )
    refs = [parse_reference(ref_id) for p in parts for ref_id in p.clauses]
    clauses = tuple(basis_items(refs, corpus, day))
    out_of_scope = [p for p in parts if p.kind is AnswerKind.OUT_OF_SCOPE]
    notice = tuple(lines_of(out_of_scope[0].text)) if out_of_scope and not found else ()
    more: tuple[Entry, ...] = ()
    if not notice and answer.kind is not AnswerKind.CHITCHAT:
        close = [h.entry for h in search.search(clean_text(answer.question))]
        candidates = [*close, *(s for p in parts for s in p.suggestions)]
        shown = {e.id for e in found}
        unique = [e for e in dict.fromkeys(candidates) if e.id not in shown]
        more = tuple(unique[:MORE_RESULTS])
    unanswered = not found and not clauses
    return SearchView(found, guessed, clauses, notice, unanswered, more)
