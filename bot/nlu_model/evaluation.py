"""Scores a model on the held-out split through the NLU service's HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from bot.nlu_model.client import NLUClient
from bot.nlu_model.service import NLUEndpoint, NLUService
from bot.settings import Settings
from nlu.build import TEST_DIR, load_examples
from nlu.evaluate import Prediction

__all__ = ["predict", "predict_split", "predict_with_model", "split_pairs"]


async def predict(
    url: str,
    pairs: Sequence[tuple[str, str]],
    *,
    concurrency: int = 1,
    timeout: float = 10.0,
    token: str | None = None,
) -> list[Prediction]:
    """Parses each ``(text, expected intent)`` through the NLU service at ``url``, in order."""
    limit = asyncio.Semaphore(concurrency)
    async with NLUClient(url, timeout=timeout, token=token) as client:

        async def one(text: str, expected: str) -> Prediction:
            async with limit:
                result = await client.parse(text)
            return Prediction(text, expected, result.intent, result.confidence)

        return list(await asyncio.gather(*(one(t, e) for t, e in pairs)))


def split_pairs(directory: Path = TEST_DIR) -> list[tuple[str, str]]:
    """The ``(text, intent)`` pairs of a split (default: the held-out one)."""
    return [(t, intent) for intent, texts in load_examples(directory).items() for t in texts]


async def predict_split(endpoint: NLUEndpoint, directory: Path = TEST_DIR) -> list[Prediction]:
    """Parses every held-out question through the NLU service at ``endpoint``."""
    return await predict(endpoint.url, split_pairs(directory), token=endpoint.token)


async def predict_with_model(settings: Settings, model: Path) -> list[Prediction]:
    """Serves ``model`` in a child NLU service just long enough to score the held-out split."""
    service = NLUService(settings, model)
    service.start()
    try:
        await service.wait_ready()
        return await predict_split(service.endpoint)
    finally:
        service.stop()
