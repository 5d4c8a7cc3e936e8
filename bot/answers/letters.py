"""Scores the answer service on letters (nlu/data/letters/): right, honest or wrong.

An in-scope letter is answered **right** when every answer given (one per
question part) is an entry it is labelled with, or a quoted clause of an
article it is labelled with, and at least one is given; **honest** when every
part is the fallback or "ngoài phạm vi"; **wrong** otherwise (any entry or
clause that does not answer it). An out-of-scope letter is honest when no part
gives a cooperative entry or clause, wrong otherwise.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.answers.model import Answer, AnswerKind
from bot.answers.service import AnswerService
from knowledge.law.references import parse_reference
from nlu.letters import Letter

__all__ = ["LetterResult", "judge", "run_letters", "summary"]

Outcome = Literal["right", "honest", "wrong"]
_HONEST = (AnswerKind.FALLBACK, AnswerKind.OUT_OF_SCOPE, AnswerKind.CHITCHAT)


@dataclass(frozen=True, slots=True)
class LetterResult:
    """A letter, the service's answer and the verdict."""

    letter: Letter
    answer: Answer
    outcome: Outcome

    def describe(self) -> str:
        """One line: id, outcome, what was answered."""
        given = [
            p.entry.id if p.entry else (",".join(p.clauses) or p.kind.value)
            for p in self.answer.answered
        ]
        gold = self.letter.entries or self.letter.articles or (self.letter.field,)
        return f"{self.letter.id:8} {self.outcome:6} gave {given} expected {list(gold)}"


def _part_right(letter: Letter, part: Answer) -> bool:
    if part.entry is not None:
        return part.entry.id in letter.entries
    if part.kind is AnswerKind.CLAUSE:
        articles = {parse_reference(c).article_id for c in part.clauses}
        return bool(articles & set(letter.articles))
    return False


def judge(letter: Letter, answer: Answer) -> Outcome:
    """The verdict on one letter's answer; see the module docstring."""
    given = [p for p in answer.answered if p.kind not in _HONEST]
    if not given:
        return "honest"
    if not letter.in_scope:
        return "wrong"
    return "right" if all(_part_right(letter, p) for p in given) else "wrong"


async def run_letters(service: AnswerService, letters: Sequence[Letter]) -> list[LetterResult]:
    """Answers every letter (in order) and judges it."""
    results = []
    for letter in letters:
        answer = await service.answer(letter.text, channel="bench")
        results.append(LetterResult(letter, answer, judge(letter, answer)))
    return results


def summary(results: Sequence[LetterResult]) -> dict[str, str]:
    """Shares of right / honest / wrong for in-scope and out-of-scope letters, as text."""
    lines: dict[str, str] = {}
    for label, scope in (("in-scope", True), ("out-of-scope", False)):
        chosen = [r for r in results if r.letter.in_scope is scope]
        if not chosen:
            continue
        counts = Counter(r.outcome for r in chosen)
        n = len(chosen)
        lines[label] = (
            f"right {counts['right'] / n:.1%}  honest {counts['honest'] / n:.1%}  "
            f"wrong {counts['wrong'] / n:.1%}  ({n} letters)"
        )
    latencies = [r.answer.latency_ms for r in results]
    if latencies:
        lines["latency"] = f"p50 {statistics.median(latencies):.1f} ms  max {max(latencies):.1f} ms"
    return lines
