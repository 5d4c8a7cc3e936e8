"""The letter policy on the TRAINING letters only: how its thresholds were calibrated.

Usage: .venv/bin/python benchmarks/letters_train.py [--verbose] [--sweep] [KEY=VALUE ...]

Starts the NLU service on the deployed model and answers every training letter
with the given LetterPolicy values (e.g. entry_agree=0.3 clause_min=20), printing
right / honest / wrong for in-scope and out-of-scope letters (each letter's
verdict under --verbose). ``--sweep`` tries a grid of policies instead, asking
the NLU service once per text, and prints the best: the most right answers among
the policies whose wrong answers stay within WRONG_MAX (held under the 3% target,
a confident wrong answer being much worse than none), then by fewest wrong; the
out-of-scope letters must stay honest. The held-out letters are never read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import sys
import tempfile
from collections import Counter
from typing import Any

from bot.answers import AnswerService, LetterPolicy
from bot.answers.letters import LetterResult, run_letters, summary
from bot.cli.context import answer_service
from bot.nlu_model.client import ParseResult
from bot.settings import load_settings
from nlu.letters import load_letters

GRID: dict[str, tuple[Any, ...]] = {
    "entry_alone": (0.8, 0.9),
    "entry_agree": (0.25, 0.3, 0.4, 0.5),
    "search_coverage": (0.2, 0.3, 0.4, 0.5),
    "agree_both": (False, True),
    "later_both": (False, True),
    "clause_min": (30.0, 1e9),
}
# The most wrong answers a calibrated policy may give on the training letters, with
# a margin under the 3% target; among those, the most right answers win.
WRONG_MAX = 0.02
# Out-of-scope letters that must get no cooperative answer, with a margin under 95%.
HONEST_OUT_MIN = 0.97


class CachedParses:
    """The NLU client's ``parse``, asked once per text (the sweep replays many policies)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[str, ParseResult] = {}

    async def parse(self, text: str) -> ParseResult:
        if text not in self.cache:
            self.cache[text] = await self.inner.parse(text)
        return self.cache[text]


def score(results: list[LetterResult]) -> tuple[tuple[bool, float, float], float, float, float]:
    """(sort key), right and wrong in scope, honest out of scope: shares."""
    inside = Counter(r.outcome for r in results if r.letter.in_scope)
    outside = Counter(r.outcome for r in results if not r.letter.in_scope)
    n_in, n_out = sum(inside.values()) or 1, sum(outside.values()) or 1
    right, wrong = inside["right"] / n_in, inside["wrong"] / n_in
    honest_out = outside["honest"] / n_out
    acceptable = wrong <= WRONG_MAX and honest_out >= HONEST_OUT_MIN
    return (acceptable, right, -wrong), right, wrong, honest_out


async def sweep(service: AnswerService) -> None:
    letters = load_letters(split="train")
    service.nlu = CachedParses(service.nlu)  # type: ignore[assignment]
    # Retrieval does not depend on the swept values: each letter's evidence is computed once.
    evidence = functools.cache(service._evidence)
    service._evidence = evidence  # type: ignore[method-assign]
    rows = []
    for values in itertools.product(*GRID.values()):
        policy = LetterPolicy(**dict(zip(GRID, values, strict=True)))
        service.policy = policy
        rows.append((score(await run_letters(service, letters)), policy))
    rows.sort(key=lambda row: row[0], reverse=True)
    for ((acceptable, *_), right, wrong, honest_out), policy in rows[:15]:
        print(
            f"{'ok ' if acceptable else 'no '} right {right:.1%}  wrong {wrong:.1%}  "
            f"out-of-scope honest {honest_out:.1%}  {policy}"
        )


async def run(policy: LetterPolicy, verbose: bool, search: bool, database: str) -> None:
    settings = load_settings().model_copy(update={"database_url": database})
    async with answer_service(settings, use_nlu=True) as service:
        if search:
            await sweep(service)
            return
        service.policy = policy
        results = await run_letters(service, load_letters(split="train"))
    if verbose:
        for result in results:
            print(result.describe())
    for label, line in summary(results).items():
        print(f"{label:13} {line}")


def _value(kind: object, text: str) -> object:
    if kind in ("bool", bool):
        return text.lower() in ("1", "true", "yes")
    return int(text) if kind in ("int", int) else float(text)


def main() -> None:
    verbose = "--verbose" in sys.argv
    values = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
    fields = {f.name: f.type for f in dataclasses.fields(LetterPolicy)}
    policy = dataclasses.replace(
        LetterPolicy(),
        **{k: _value(fields[k], v) for k, v in values.items()},
    )
    print(policy)
    with tempfile.TemporaryDirectory() as tmp:
        # The NLU service is started on the deployed model unless NLU_URL answers.
        asyncio.run(run(policy, verbose, "--sweep" in sys.argv, f"sqlite:///{tmp}/letters.db"))


if __name__ == "__main__":
    main()
