"""The letter policy on the TRAINING letters only: how thresholds were calibrated.

Usage: .venv/bin/python benchmarks/letters_train.py [--verbose] [KEY=VALUE ...]

Starts the NLU service on the current model, answers every training letter with
the given LetterPolicy values (e.g. entry_agree=0.3 clause_min=20) and prints
right / honest / wrong for in-scope and out-of-scope letters, with each letter's
verdict under --verbose. The held-out letters are never read here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile

from bot.answers import LetterPolicy
from bot.letter_eval import run_letters, summary
from bot.settings import load_settings
from bot.wiring import answer_service
from nlu.letters import load_letters


async def run(policy: LetterPolicy, verbose: bool, database: str) -> None:
    settings = load_settings().model_copy(update={"database_url": database})
    letters = load_letters(split="train")
    async with answer_service(settings, use_nlu=True) as service:
        service.policy = policy
        results = await run_letters(service, letters)
    if verbose:
        for result in results:
            print(result.describe())
    for label, line in summary(results).items():
        print(f"{label:13} {line}")


def main() -> None:
    verbose = "--verbose" in sys.argv
    values = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
    policy = dataclasses.replace(LetterPolicy(), **{k: float(v) for k, v in values.items()})
    print(policy)
    with tempfile.TemporaryDirectory() as tmp:
        # The NLU service is started on the deployed model unless NLU_URL answers.
        asyncio.run(run(policy, verbose, f"sqlite:///{tmp}/letters.db"))


if __name__ == "__main__":
    main()
