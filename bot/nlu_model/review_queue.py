"""The review queue: questions the bot could not answer well, grouped for admins to label.

A question enters the queue when it got the fallback answer, when it was
answered with an NLU confidence below ``REVIEW_CONFIDENCE_THRESHOLD``, or when
the member pressed 👎 on the answer. Personal data is masked before storing.

Admins see the open questions grouped by similarity (same words, ignoring
diacritics, abbreviations and filler words) with a count, and decide for a
whole group: an intent (the questions become training data in the
reviewed-data file, :mod:`nlu.reviewed`), a new knowledge entry is needed,
not relevant, or skip for now.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.clock import aware, utcnow
from bot.store.db import ReviewQuestion
from bot.store.members import MemberInfo
from nlu.privacy import mask_personal_data
from nlu.reviewed import add_examples
from nlu.textnorm import ABBREVIATIONS, strip_diacritics

__all__ = [
    "REASON_LABELS",
    "ReviewGroup",
    "ReviewLog",
    "ReviewQueue",
    "person",
    "similar",
    "words",
]

_MAX_TEXT = 4000
_GROUPED_AT_MOST = 5000  # newest open questions considered for grouping
SIMILARITY: Final = 0.6

REASON_LABELS: Final = {
    "low_confidence": "trả lời mặc định (không chắc)",
    "out_of_scope": "trả lời mặc định (ngoài phạm vi)",
    "nlu_unavailable": "trả lời khi NLU không chạy",
    "unsure": "độ tin cậy thấp",
    "thumbs_down": "bị 👎",
}
# Words that carry no meaning for grouping (politeness, pronouns, particles).
_FILLERS: Final = frozenset(
    " ".join(
        [
            "a ah ad admin ak ban cho co con da dc duoc e em gi hay hoi la lam minh nao nhe nhi",
            "oi voi vay the thi toi tui u uh va vs z ha ko khong khg k nha ne roi",
        ]
    ).split()
)


def words(text: str) -> frozenset[str]:
    """The meaningful words of a question, diacritic-free, abbreviations expanded."""
    tokens = re.findall(r"\w+", strip_diacritics(text))
    expanded = " ".join(ABBREVIATIONS.get(t, t) for t in tokens).split()
    kept = frozenset(t for t in expanded if t not in _FILLERS)
    return kept or frozenset(expanded)


def similar(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two word sets."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class ReviewLog:
    """Records questions for review."""

    def __init__(self, engine: Engine) -> None:
        """Uses ``engine`` (tables must exist)."""
        self._engine = engine

    def record(
        self,
        *,
        channel: str,
        text: str,
        reason: str,
        intent: str | None,
        confidence: float | None,
        member_id: int | None = None,
        message_id: int | None = None,
        candidates: Sequence[tuple[str, float]] = (),
    ) -> int:
        """Stores one question (personal data masked) and returns its id."""
        with Session(self._engine) as session, session.begin():
            row = ReviewQuestion(
                channel=channel,
                text=mask_personal_data(text[:_MAX_TEXT]),
                reason=reason,
                intent=intent,
                confidence=confidence,
                member_id=member_id,
                message_id=message_id,
                candidates=json.dumps([[n, round(c, 4)] for n, c in candidates]),
            )
            session.add(row)
            session.flush()
            return row.id

    def withdraw_feedback(self, message_id: int) -> int:
        """Removes the open 👎 entries of a message (the member changed their mind)."""
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                delete(ReviewQuestion).where(
                    ReviewQuestion.message_id == message_id,
                    ReviewQuestion.reason == "thumbs_down",
                    ReviewQuestion.status == "open",
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def count_open(self) -> int:
        """Number of questions waiting for review."""
        with Session(self._engine) as session:
            query = select(func.count()).select_from(ReviewQuestion)
            return int(session.scalar(query.where(ReviewQuestion.status == "open")) or 0)

    def latest(self, limit: int = 20) -> list[ReviewQuestion]:
        """The newest questions waiting for review."""
        with Session(self._engine) as session:
            query = (
                select(ReviewQuestion)
                .where(ReviewQuestion.status == "open")
                .order_by(ReviewQuestion.id.desc())
                .limit(limit)
            )
            return list(session.scalars(query))


@dataclass(frozen=True, slots=True)
class ReviewGroup:
    """Similar questions decided together; ``id`` is the id of its first question."""

    id: int
    text: str
    question_ids: tuple[int, ...]
    texts: tuple[str, ...]  # distinct texts, most asked first
    reasons: tuple[tuple[str, int], ...]
    candidates: tuple[tuple[str, float], ...]  # likeliest intents first
    status: str
    first_at: dt.datetime
    last_at: dt.datetime

    @property
    def count(self) -> int:
        """How many times the question was asked."""
        return len(self.question_ids)

    def reasons_text(self) -> str:
        """The reasons in words, e.g. "bị 👎 ×2, độ tin cậy thấp ×1"."""
        return ", ".join(f"{REASON_LABELS.get(r, r)} ×{n}" for r, n in self.reasons)


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    text: str
    words: frozenset[str]
    reason: str
    candidates: tuple[tuple[str, float], ...]
    status: str
    created_at: dt.datetime


def _candidates(row: ReviewQuestion) -> tuple[tuple[str, float], ...]:
    try:
        items = json.loads(row.candidates) if row.candidates else []
        found = tuple((str(n), float(c)) for n, c in items)
    except (ValueError, TypeError):
        found = ()
    if not found and row.intent:
        found = ((row.intent, float(row.confidence or 0.0)),)
    return found


def _clusters(rows: Sequence[_Row]) -> list[list[_Row]]:
    """Clusters of similar rows, taken oldest first (a group's id is its first question).

    Each row joins the earliest-made cluster whose first row it is most similar to, at
    least ``SIMILARITY``; else it starts one.
    Only clusters that can reach ``SIMILARITY`` are compared (the prefix filter of
    set-similarity joins): with the words of every set ordered rarest first, two sets
    with a Jaccard similarity of at least t share a word among the first
    ``n - ceil(t * n) + 1`` of each (n: the set's size). The result is the one of
    comparing every cluster, in a fraction of the time.
    """
    frequency = Counter(word for row in rows for word in row.words)

    def prefix(words: frozenset[str]) -> list[str]:
        if not words:
            return [""]  # only the empty set is similar to the empty set
        ordered = sorted(words, key=lambda w: (frequency[w], w))
        return ordered[: len(ordered) - math.ceil(SIMILARITY * len(ordered)) + 1]

    clusters: list[list[_Row]] = []
    by_word: dict[str, list[int]] = defaultdict(list)  # prefix word -> clusters (in order)
    for row in rows:
        best, best_score = None, 0.0
        for index in sorted({i for word in prefix(row.words) for i in by_word[word]}):
            score = similar(row.words, clusters[index][0].words)
            if score > best_score:
                best, best_score = index, score
        if best is not None and best_score >= SIMILARITY:
            clusters[best].append(row)
        else:
            for word in prefix(row.words):
                by_word[word].append(len(clusters))
            clusters.append([row])
    return clusters


def _group(rows: Sequence[_Row]) -> list[ReviewGroup]:
    clusters = _clusters(rows)
    groups = []
    for cluster in clusters:
        texts = Counter(r.text for r in cluster)
        reasons = Counter(r.reason for r in cluster)
        scores: dict[str, float] = {}
        for r in cluster:
            for name, confidence in r.candidates:
                scores[name] = scores.get(name, 0.0) + confidence
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        candidates = tuple((name, total / len(cluster)) for name, total in ranked)
        groups.append(
            ReviewGroup(
                id=cluster[0].id,
                text=texts.most_common(1)[0][0],
                question_ids=tuple(r.id for r in cluster),
                texts=tuple(t for t, _ in texts.most_common()),
                reasons=tuple(reasons.most_common()),
                candidates=candidates,
                status=cluster[0].status,
                first_at=min(r.created_at for r in cluster),
                last_at=max(r.created_at for r in cluster),
            )
        )
    groups.sort(key=lambda g: (-g.count, -g.last_at.timestamp(), g.id))
    return groups


class ReviewQueue:
    """Groups the questions waiting for review and records the admins' decisions."""

    def __init__(self, engine: Engine, reviewed_path: Path, intents: Collection[str]) -> None:
        """``intents``: the intents a question may be labelled with (the training data's)."""
        self._engine = engine
        self.reviewed_path = reviewed_path
        self.intents = frozenset(intents)
        # statuses -> (the queue's state they were made from, the groups)
        self._made: dict[tuple[str, ...], tuple[object, list[ReviewGroup]]] = {}

    def groups(self, statuses: Iterable[str] = ("open",)) -> list[ReviewGroup]:
        """The groups of questions in ``statuses``, most asked first.

        Grouping takes a while on a long queue, so the groups are kept until the queue
        changes: a question comes in or is decided (seen from each status's row count
        and id sum and maximum, one indexed statement).
        """
        wanted = tuple(statuses)
        with self._engine.connect() as connection:
            state = connection.execute(
                select(
                    ReviewQuestion.status,
                    func.count(),
                    func.max(ReviewQuestion.id),
                    func.sum(ReviewQuestion.id),
                )
                .where(ReviewQuestion.status.in_(wanted))
                .group_by(ReviewQuestion.status)
                .order_by(ReviewQuestion.status)
            ).all()
        mark = tuple(tuple(row) for row in state)
        made = self._made.get(wanted)
        if made is not None and made[0] == mark:
            return list(made[1])
        groups = self._group_now(wanted)
        self._made[wanted] = (mark, groups)
        return list(groups)

    def _group_now(self, statuses: tuple[str, ...]) -> list[ReviewGroup]:
        with Session(self._engine) as session:
            rows = session.scalars(
                select(ReviewQuestion)
                .where(ReviewQuestion.status.in_(statuses))
                .order_by(ReviewQuestion.id.desc())
                .limit(_GROUPED_AT_MOST)
            ).all()
            plain = [
                _Row(
                    r.id,
                    r.text,
                    words(r.text),
                    r.reason,
                    _candidates(r),
                    r.status,
                    aware(r.created_at),
                )
                for r in reversed(rows)
            ]
        by_status = [_group([r for r in plain if r.status == s]) for s in statuses]
        return [g for groups in by_status for g in groups]

    def group(self, group_id: int) -> ReviewGroup | None:
        """The open or skipped group whose first question is ``group_id``, or that holds it."""
        groups = self.groups(("open", "skipped"))
        by_first = next((g for g in groups if g.id == group_id), None)
        return by_first or next((g for g in groups if group_id in g.question_ids), None)

    def label(
        self, group: ReviewGroup, intent: str, by: str, *, now: dt.datetime | None = None
    ) -> int:
        """Labels every question of ``group`` with ``intent``; returns the examples added.

        Raises ValueError for an intent the training data does not have.
        """
        if intent not in self.intents:
            raise ValueError(f"không có ý định {intent!r}")
        ids = dict.fromkeys(group.question_ids)
        with Session(self._engine) as session:
            rows = session.execute(
                select(ReviewQuestion.id, ReviewQuestion.text).where(
                    ReviewQuestion.id.in_(tuple(ids))
                )
            ).all()
        # The file first: if the database update then failed, labelling again adds nothing twice.
        added = add_examples(self.reviewed_path, [(t, i) for i, t in rows], intent, by, now=now)
        self._decide(group, "labelled", by, intent, now)
        return added

    def decide(self, group: ReviewGroup, status: str, by: str) -> int:
        """Marks ``group`` ``new_entry``, ``irrelevant`` or ``skipped``; returns rows changed."""
        if status not in ("new_entry", "irrelevant", "skipped"):
            raise ValueError(f"unknown review decision {status!r}")
        return self._decide(group, status, by, None, None)

    def _decide(
        self,
        group: ReviewGroup,
        status: str,
        by: str,
        label: str | None,
        now: dt.datetime | None,
    ) -> int:
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                update(ReviewQuestion)
                .where(
                    ReviewQuestion.id.in_(group.question_ids),
                    ReviewQuestion.status.in_(("open", "skipped")),
                )
                .values(status=status, label=label, labelled_by=by, labelled_at=now or utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


def person(member: MemberInfo) -> str:
    """How an admin is named in the reviewed data and the registry."""
    name = f" ({member.display_name})" if member.display_name else ""
    return f"{member.channel}:{member.external_id}{name}"
