"""Clause retrieval: BM25 (bm25s) over every clause of the legal corpus, with synonyms.

Each clause (an article without clauses counts as one) is indexed with its
article's title, as underthesea segments of the diacritic-free text: the
segmented words ("thanh_vien") and their syllables, so that accented letters,
unaccented chat text and abbreviations meet. A query is expanded with the
synonym table (``synonyms.yml``: "xã viên" also searches "thành viên", "ban
quản trị" also "hội đồng quản trị"), and a letter's story can be added as
context at a lower weight.

Segmenting the four texts takes a few seconds, so the segments are cached on
disk by the hash of the texts and of this module's settings; with the cache the
index is built in well under a second. A missing or unwritable cache only costs
time.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Final

import bm25s
import numpy as np
import yaml

from knowledge.law.references import Reference
from knowledge.stopwords import STOPWORDS
from nlu.segmenter import segment
from nlu.textnorm import plain_words

if TYPE_CHECKING:
    from knowledge.law.corpus import LegalCorpus
    from knowledge.law.parser import Article
    from knowledge.law.register import Document

__all__ = [
    "ClauseRetriever",
    "Retrieved",
    "default_cache_dir",
    "expansions",
    "load_synonyms",
    "tokens",
]

log = logging.getLogger(__name__)

SYNONYMS_PATH: Final = Path(__file__).with_name("synonyms.yml")
# Bump when tokenisation changes: cached segments of an older scheme are ignored.
_SCHEME: Final = "segments-v1"
_TITLE_REPEAT: Final = 2  # the article title counts twice: it names the topic


def default_cache_dir() -> Path:
    """``LAW_INDEX_CACHE`` or ``var/cache`` in the project."""
    configured = os.environ.get("LAW_INDEX_CACHE")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "var" / "cache"


def load_synonyms(path: Path = SYNONYMS_PATH) -> dict[str, str]:
    """The synonym table: diacritic-free phrase -> the law's words."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    table = data.get("synonyms") or {}
    return {plain_words(str(k)): plain_words(str(v)) for k, v in table.items()}


def _from_lemmas(lemmas: Sequence[str]) -> list[str]:
    """Segment lemmas as index terms: each multi-syllable word and its syllables."""
    terms: list[str] = []
    for lemma in lemmas:
        syllables = [s for s in lemma.split("_") if s and any(ch.isalnum() for ch in s)]
        content = [s for s in syllables if s not in STOPWORDS]
        if len(syllables) > 1 and content:
            terms.append("_".join(syllables))
        terms.extend(content)
    return terms


def _lemmas(text: str) -> list[str]:
    return [seg.lemma for seg in segment(text, segment_plain=True)]


def expansions(synonyms: dict[str, str]) -> list[tuple[str, list[str]]]:
    """Each synonym phrase with the law's words as index terms, longest phrase first.

    Segmented once, when the index is built: queries only look the phrases up.
    Longest first, so "truong ban quan tri" wins over "ban quan tri".
    """
    return [
        (phrase, _from_lemmas(_lemmas(synonyms[phrase])))
        for phrase in sorted(synonyms, key=len, reverse=True)
    ]


def tokens(text: str, expanded: Sequence[tuple[str, list[str]]] = ()) -> list[str]:
    """The index terms of ``text``; with :func:`expansions`, old terms give way to the law's."""
    terms = _from_lemmas(_lemmas(text))
    if expanded:
        words = f" {plain_words(text)} "
        for phrase, replacement in expanded:
            if f" {phrase} " not in words:
                continue
            words = words.replace(f" {phrase} ", " ")
            for old in phrase.split():  # the old words would pull in unrelated clauses
                if old in terms:
                    terms.remove(old)
            terms.extend(replacement)
    return terms


@dataclass(frozen=True, slots=True)
class Retrieved:
    """One retrieved clause: where it is, its text, its score and its rank."""

    ref: Reference
    document: Document
    article: Article
    text: str
    score: float
    rank: int

    @property
    def article_id(self) -> str:
        """``17/2023/QH15:d33``: the article the clause belongs to."""
        return f"{self.ref.doc}:d{self.ref.article}"


class ClauseRetriever:
    """BM25 over the clauses of the texts in a corpus; see the module docstring."""

    def __init__(
        self,
        corpus: LegalCorpus,
        *,
        synonyms: dict[str, str] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """Indexes every clause of ``corpus``; segments come from the cache when it matches."""
        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build at DEBUG
        self.corpus = corpus
        self.synonyms = load_synonyms() if synonyms is None else synonyms
        self._expanded = expansions(self.synonyms)
        self.rows = list(corpus.units())
        documents = self._segments(cache_dir or default_cache_dir())
        self._bm25 = bm25s.BM25()
        self._bm25.index(documents, show_progress=False)

    @cached_property
    def _vocabulary(self) -> dict[str, int]:
        return dict(self._bm25.vocab_dict)

    def _texts(self) -> list[str]:
        return [
            " ".join([article.title] * _TITLE_REPEAT + [body]) for _, article, body in self.rows
        ]

    def _segments(self, cache_dir: Path) -> list[list[str]]:
        texts = self._texts()
        digest = hashlib.sha256(_SCHEME.encode())
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\x00")
        path = cache_dir / f"law-clauses-{digest.hexdigest()[:16]}.json.gz"
        try:
            cached = json.loads(gzip.decompress(path.read_bytes()))
            if isinstance(cached, list) and len(cached) == len(texts):
                return [_from_lemmas(lemmas) for lemmas in cached]
        except (OSError, ValueError):
            pass
        lemmas = [_lemmas(text) for text in texts]
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(gzip.compress(json.dumps(lemmas).encode("utf-8")))
            temporary.replace(path)
        except OSError as exc:
            log.warning("could not cache the clause index segments in %s: %s", cache_dir, exc)
        return [_from_lemmas(item) for item in lemmas]

    def query_terms(self, text: str) -> list[str]:
        """The terms of ``text`` the index knows (synonyms added)."""
        vocabulary = self._vocabulary
        return [t for t in tokens(text, self._expanded) if t in vocabulary]

    def scores(self, text: str) -> np.ndarray:
        """BM25 scores of every clause for ``text`` (zeros when no term is known)."""
        terms = self.query_terms(text)
        if not terms:
            return np.zeros(len(self.rows), dtype=np.float64)
        return np.asarray(self._bm25.get_scores(terms), dtype=np.float64)

    def search(
        self,
        text: str,
        limit: int = 3,
        *,
        context: str | np.ndarray = "",
        context_weight: float = 0.3,
        day: dt.date | None = None,
    ) -> list[Retrieved]:
        """The best clauses for ``text``, best first, from documents in force on ``day``.

        ``context`` (a letter's story, or its precomputed :meth:`scores`) adds to the
        score at ``context_weight``.
        """
        scores = self.scores(text)
        if isinstance(context, np.ndarray):
            scores = scores + context_weight * context
        elif context:
            scores = scores + context_weight * self.scores(context)
        return self.rank(scores, limit, day)

    def rank(self, scores: np.ndarray, limit: int, day: dt.date | None = None) -> list[Retrieved]:
        """The clauses with the highest ``scores``, from documents in force on ``day``."""
        today = day or dt.date.today()
        hits: list[Retrieved] = []
        for row in np.argsort(-scores, kind="stable"):
            score = float(scores[row])
            if score <= 0 or len(hits) >= limit:
                break
            ref, article, body = self.rows[row]
            doc = self.corpus.register.documents[ref.doc]
            if not doc.in_force_on(today):
                continue
            hits.append(Retrieved(ref, doc, article, body, score, len(hits) + 1))
        return hits

    @staticmethod
    def articles(hits: Sequence[Retrieved], limit: int = 3) -> list[str]:
        """The distinct articles (``doc:dN``) of ``hits``, best first, at most ``limit``."""
        seen: list[str] = []
        for hit in hits:
            if hit.article_id not in seen:
                seen.append(hit.article_id)
            if len(seen) >= limit:
                break
        return seen
