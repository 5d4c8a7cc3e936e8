"""Prints, for several confidence thresholds, how held-out questions would be answered.

Usage: .venv/bin/python benchmarks/threshold_sweep.py [THRESHOLD ...]
Serves the current model, classifies each held-out question once, then replays
the answer service's decisions for every threshold. Coarse on purpose: the
held-out split is for measuring, so only a few round values are compared.
"""

from __future__ import annotations

import asyncio
import sys

from bot.answers import AnswerService
from bot.nlu_model.client import NLUClient, ParseResult
from bot.nlu_model.service import NLUService, pick_model
from bot.settings import load_settings
from knowledge.base import CHITCHAT_INTENTS, OUT_OF_SCOPE_INTENT, load_knowledge_base
from knowledge.search import KnowledgeSearch
from nlu.build import TEST_DIR, TRAIN_DIR, load_examples
from nlu.textnorm import clean_text


class CachedNLU(NLUClient):
    """Replays stored parse results."""

    def __init__(self, results: dict[str, ParseResult]) -> None:
        super().__init__("http://unused")
        self.results = results

    async def parse(self, text: str) -> ParseResult:
        return self.results[text]


async def main(thresholds: list[float]) -> None:
    settings = load_settings()
    questions = [(q, i) for i, items in load_examples(TEST_DIR).items() for q in items]
    service = NLUService(settings, pick_model(settings.model_dir))
    service.start()
    try:
        await service.wait_ready()
        async with NLUClient(service.url, token=service.token) as client:
            kb = load_knowledge_base()
            search = KnowledgeSearch(kb, load_examples(TRAIN_DIR))
            answer_service = AnswerService(kb, search, client)
            results = {}
            for question, _ in questions:
                text = clean_text(question)[:500]
                results[text] = await client.parse(text)
    finally:
        service.stop()
    answer_service.nlu = CachedNLU(results)
    print("threshold  law right  law wrong  law fallback  oos fallback")
    for threshold in thresholds:
        answer_service.threshold = threshold
        right = wrong = fallback = oos_total = oos_fallback = law_total = 0
        for question, intent in questions:
            answer = await answer_service.answer(question)
            if intent == OUT_OF_SCOPE_INTENT:
                oos_total += 1
                oos_fallback += answer.fallback
            elif intent not in CHITCHAT_INTENTS:
                law_total += 1
                if answer.entry is None:
                    fallback += 1
                elif answer.entry.id == intent:
                    right += 1
                else:
                    wrong += 1
        print(
            f"{threshold:9.2f} {right / law_total:10.1%} {wrong / law_total:10.1%} "
            f"{fallback / law_total:13.1%} {oos_fallback / oos_total:13.1%}"
        )


if __name__ == "__main__":
    asyncio.run(main([float(a) for a in sys.argv[1:]] or [0.2, 0.3, 0.4, 0.5, 0.6]))
