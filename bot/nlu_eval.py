"""Scores a model on the held-out split through the NLU service's HTTP API."""

from __future__ import annotations

from pathlib import Path

from bot.nlu_client import NLUClient
from bot.nlu_service import NLUService
from bot.settings import Settings
from nlu.build import TEST_DIR, load_examples
from nlu.evaluate import Prediction

__all__ = ["predict_split", "predict_with_model"]


async def predict_split(url: str, directory: Path = TEST_DIR) -> list[Prediction]:
    """Parses every held-out question through the NLU service at ``url``."""
    predictions = []
    async with NLUClient(url, timeout=10.0) as client:
        for intent, questions in load_examples(directory).items():
            for text in questions:
                result = await client.parse(text)
                predictions.append(Prediction(text, intent, result.intent, result.confidence))
    return predictions


async def predict_with_model(settings: Settings, model: Path) -> list[Prediction]:
    """Serves ``model`` in a child NLU service just long enough to score the held-out split."""
    service = NLUService(settings, model)
    service.start()
    try:
        await service.wait_ready()
        return await predict_split(service.url)
    finally:
        service.stop()
