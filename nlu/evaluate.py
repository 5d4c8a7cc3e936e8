"""Classification metrics for the held-out split: accuracy, macro-F1, confused pairs.

Pure Python so that the application, the benchmarks and the tests share it.
Questions are also scored separately by spelling: with diacritics ("accented")
and without ("unaccented"), since members type both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nlu.textnorm import has_diacritics

__all__ = ["Prediction", "Report", "evaluate", "split_by_spelling"]


@dataclass(frozen=True, slots=True)
class Prediction:
    """One held-out question with its expected and predicted intent."""

    text: str
    expected: str
    predicted: str | None
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Report:
    """Metrics over a set of predictions."""

    count: int
    accuracy: float
    macro_f1: float
    confused: tuple[tuple[str, str, int], ...]  # (expected, predicted, count), most first
    errors: tuple[Prediction, ...]


def evaluate(predictions: Sequence[Prediction], top_confused: int = 10) -> Report:
    """Computes accuracy, macro-F1 over the expected intents, and the most confused pairs."""
    if not predictions:
        return Report(0, 0.0, 0.0, (), ())
    correct = sum(p.predicted == p.expected for p in predictions)
    labels = sorted({p.expected for p in predictions})
    f1_scores = []
    for label in labels:
        tp = sum(p.expected == label and p.predicted == label for p in predictions)
        fp = sum(p.expected != label and p.predicted == label for p in predictions)
        fn = sum(p.expected == label and p.predicted != label for p in predictions)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1_scores.append(
            2 * precision * recall / (precision + recall) if precision + recall else 0.0
        )
    errors = tuple(p for p in predictions if p.predicted != p.expected)
    pairs = Counter((p.expected, str(p.predicted)) for p in errors)
    return Report(
        count=len(predictions),
        accuracy=correct / len(predictions),
        macro_f1=sum(f1_scores) / len(f1_scores),
        confused=tuple((a, b, n) for (a, b), n in pairs.most_common(top_confused)),
        errors=errors,
    )


def split_by_spelling(
    predictions: Iterable[Prediction],
) -> tuple[list[Prediction], list[Prediction]]:
    """Splits predictions into (accented, unaccented) by the question's spelling."""
    accented: list[Prediction] = []
    unaccented: list[Prediction] = []
    for p in predictions:
        (accented if has_diacritics(p.text) else unaccented).append(p)
    return accented, unaccented
