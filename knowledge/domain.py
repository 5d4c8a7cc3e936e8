"""The domain gate: is a message about cooperatives, or about another field of law?

Members who use the assistant also ask about their divorce, a traffic fine, an
inheritance, a loan app that threatens them, a land gift between relatives, an
employer who keeps their social-insurance money. None of these has a
cooperative answer, however many cooperative words the story contains ("tôi là
thành viên HTX, chồng tôi đòi ly hôn ..."). Giving one, with a citation, is the
worst thing the assistant can do; the gate sends such a message to an honest
"ngoài phạm vi" answer that names the field and where it is usually answered.

The gate reads words, not intents (``fields.yml``): terms of each neighbouring
field and terms that tie a text to cooperatives or to a topic the knowledge
base covers. What the member asks weighs more than the story: a field term in a
question part with no cooperative term in it decides; a field term in the
story alone decides only when nothing in the message is about cooperatives.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from nlu.textnorm import plain_words

__all__ = ["DomainGate", "Field", "Verdict", "default_gate", "padded"]

FIELDS_PATH: Final = Path(__file__).with_name("fields.yml")
# The story's field words count this much against the question's.
STORY_WEIGHT: Final = 0.5
# A question part is another field's when its field words are at least this many
# times its cooperative words.
FIELD_RATIO: Final = 2


def padded(text: str) -> str:
    """The text's :func:`plain_words` with a space either side, for whole-word matching."""
    return f" {plain_words(text)} "


@dataclass(frozen=True, slots=True)
class Field:
    """A neighbouring field of law: id, Vietnamese name, where to ask, tell-tale terms."""

    id: str
    name: str
    where: str
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's decision, with the evidence it rests on."""

    in_scope: bool
    field: Field | None  # the neighbouring field, when out of scope (or the strongest seen)
    field_score: float  # field terms: question parts weigh 1, the story STORY_WEIGHT
    cooperative_in_questions: int  # cooperative terms in the question parts
    cooperative_in_story: int
    terms: tuple[str, ...] = ()  # the field terms found


def _count(padded: str, terms: Iterable[str]) -> list[str]:
    """The stretches of ``padded`` the terms cover, each once.

    Overlapping or nested matches are one stretch: "vợ chồng tôi" is one family
    term, not "vợ chồng" and "chồng tôi"; "sang tên sổ đỏ" one land term.
    """
    spans: list[tuple[int, int]] = []
    for term in terms:
        needle = f" {term} "
        start = padded.find(needle)
        while start >= 0:
            spans.append((start + 1, start + len(needle) - 1))
            start = padded.find(needle, start + 1)
    merged: list[list[int]] = []
    for start, stop in sorted(spans):
        if merged and start < merged[-1][1]:  # overlaps the stretch before: extend it
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    stretches = [padded[start:stop] for start, stop in merged]
    return list(dict.fromkeys(stretches))


class DomainGate:
    """Decides whether a message belongs to the assistant's domain; see the module docstring."""

    def __init__(self, cooperative: Sequence[str], fields: Sequence[Field]) -> None:
        """Wraps the word lists (diacritic-free phrases)."""
        self.cooperative = tuple(cooperative)
        self.fields = tuple(fields)

    @classmethod
    def load(cls, path: Path = FIELDS_PATH) -> DomainGate:
        """Reads ``fields.yml``."""
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        cooperative = [plain_words(t) for t in data["cooperative"]]
        fields = [
            Field(
                id=key,
                name=str(value["name"]),
                where=str(value["where"]),
                terms=tuple(plain_words(t) for t in value["terms"]),
            )
            for key, value in data["fields"].items()
        ]
        return cls(cooperative, fields)

    def field(self, field_id: str) -> Field | None:
        """The field with this id."""
        return next((f for f in self.fields if f.id == field_id), None)

    def judge(self, questions: Sequence[str], story: str = "") -> Verdict:
        """Decides on a message given as its question parts and its story."""
        asked = " ".join(padded(q) for q in questions)
        told = padded(story)
        coop_q = len(_count(asked, self.cooperative))
        coop_s = len(_count(told, self.cooperative))
        best: Field | None = None
        best_score = 0.0
        best_terms: list[str] = []
        best_in_questions = 0
        for candidate in self.fields:
            in_q = _count(asked, candidate.terms)
            in_s = _count(told, candidate.terms)
            score = len(in_q) + STORY_WEIGHT * len(in_s)
            if score > best_score:
                best, best_score, best_terms, best_in_questions = (
                    candidate,
                    score,
                    in_q + in_s,
                    len(in_q),
                )
        if best is None:
            return Verdict(True, None, 0.0, coop_q, coop_s)
        # A cooperative word in the question keeps it ("sang tên sổ đỏ cho HTX") unless the
        # field's words are at least twice as many ("chuyện HTX tôi không hỏi ... ly hôn,
        # vợ chồng, chồng tôi ..."); a field word in the story alone decides only when the
        # story has no cooperative word either.
        if best_in_questions > 0:
            out = best_in_questions >= FIELD_RATIO * coop_q
        else:
            out = coop_q == 0 and coop_s == 0
        return Verdict(not out, best, best_score, coop_q, coop_s, tuple(best_terms))


@functools.cache
def default_gate() -> DomainGate:
    """The gate built from the shipped word lists, once per process."""
    return DomainGate.load()
