"""Lexical search over the knowledge base: BM25 on underthesea tokens, diacritic-insensitive.

Used when the NLU service is unsure or unreachable. Each entry is indexed as
its title (weighted), its answer and the training questions of its intent, all
reduced to diacritic-free syllables and syllable bigrams, so that "thành viên",
"thanh vien" and "tv" (expanded) meet.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.base import Entry, KnowledgeBase
from knowledge.stopwords import STOPWORDS
from nlu.segmenter import segment
from nlu.textnorm import normalize_word

__all__ = ["BM25Index", "KnowledgeSearch", "SearchHit", "search_terms"]

_TITLE_WEIGHT = 3
_WORD = re.compile(r"\w+")


def search_terms(text: str, *, segmented: bool = True) -> list[str]:
    """Returns the search terms of ``text``: diacritic-free syllables and their bigrams.

    ``segmented=False`` splits on non-word characters instead of running the
    segmenter: the same syllables for formal text (the legal corpus, about a
    hundred times faster), but abbreviations typed with punctuation are missed.
    """
    if segmented:
        lemmas = [seg.lemma for seg in segment(text)]
    else:
        lemmas = [normalize_word(word) for word in _WORD.findall(text)]
    syllables: list[str] = []
    for lemma in lemmas:
        for syllable in lemma.split("_"):
            if syllable and any(ch.isalnum() for ch in syllable) and syllable not in STOPWORDS:
                syllables.append(syllable)
    bigrams = [f"{a}_{b}" for a, b in itertools.pairwise(syllables)]
    return syllables + bigrams


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: the entry, its BM25 score and the share of query terms it matched."""

    entry: Entry
    score: float
    coverage: float


class BM25Index:
    """An in-memory BM25 (Okapi) index over bags of search terms; rows are addressed by position.

    Each term's contribution to each row is computed once, when the index is
    built: a query then adds up a few short arrays (a long letter has sixty terms).
    """

    def __init__(self, docs: Sequence[Counter[str]], *, k1: float = 1.2, b: float = 0.75) -> None:
        """Indexes ``docs`` (one bag of terms per row)."""
        self._n = len(docs)
        lengths = [sum(doc.values()) for doc in docs]
        avg_len = sum(lengths) / max(len(lengths), 1)
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(doc.keys())
        n = len(docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        rows: dict[str, list[int]] = {}
        weights: dict[str, list[float]] = {}
        for index, doc in enumerate(docs):
            norm = k1 * (1 - b + b * lengths[index] / avg_len)
            for term, tf in doc.items():
                rows.setdefault(term, []).append(index)
                weights.setdefault(term, []).append(self._idf[term] * tf * (k1 + 1) / (tf + norm))
        # term -> (rows that hold it, its BM25 weight in each of those rows)
        self._postings = {
            t: (np.asarray(rows[t], dtype=np.intp), np.asarray(weights[t])) for t in rows
        }
        self._max_idf = max(self._idf.values(), default=0.0)

    def rank(self, text: str, limit: int) -> list[tuple[int, float, float]]:
        """The best ``limit`` rows for ``text`` as (row, score, coverage), best first.

        Coverage is the idf-weighted share of the query's terms that the row has.
        """
        terms = list(dict.fromkeys(search_terms(text)))
        known = [t for t in terms if t in self._idf]
        if not known:
            return []
        weight_all = sum(self._idf.get(t, self._max_idf) for t in terms)
        scores = np.zeros(self._n)
        matched = np.zeros(self._n)
        for term in known:
            rows, weights = self._postings[term]
            scores[rows] += weights
            matched[rows] += self._idf[term]
        order = np.argsort(-scores, kind="stable")[:limit]
        return [
            (int(row), float(scores[row]), float(matched[row]) / weight_all)
            for row in order
            if scores[row] > 0
        ]


class KnowledgeSearch:
    """An in-memory BM25 (Okapi) index over the knowledge-base entries."""

    def __init__(
        self,
        kb: KnowledgeBase,
        examples: Mapping[str, Sequence[str]] | None = None,
        *,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        """Indexes every entry of ``kb`` with the training ``examples`` of its intent."""
        self._entries: list[Entry] = list(kb)
        docs: list[Counter[str]] = []
        for entry in self._entries:
            terms: list[str] = search_terms(entry.title) * _TITLE_WEIGHT
            terms += search_terms(entry.answer)
            for example in (examples or {}).get(entry.id, ()):
                terms += search_terms(example)
            docs.append(Counter(terms))
        self._index = BM25Index(docs, k1=k1, b=b)

    def search(self, text: str, limit: int = 5) -> list[SearchHit]:
        """Returns the best ``limit`` entries for ``text``, best first (none for no match)."""
        return [
            SearchHit(self._entries[row], score, coverage)
            for row, score, coverage in self._index.rank(text, limit)
        ]
