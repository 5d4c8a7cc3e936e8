"""Which intents the classifier confuses, found on training data alone (not the held-out split).

Usage: .venv/bin/python benchmarks/train_confusions.py [FOLD]
Holds out every 5th training example of each intent (shifted by FOLD, 0-4),
trains on the rest, and lists the confused pairs and the misclassified
examples. Content writers use it to sharpen neighbouring intents without
tuning on the held-out split that `make bench-nlu` reports.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bot.nlu_model.evaluation import predict
from bot.nlu_model.service import NLUService
from bot.settings import load_settings
from nlu.build import (
    CONFIG_PATH,
    TRAIN_DIR,
    _dump_nlu,
    augmented_examples,
    load_examples,
    nlu_env,
    rasa_executable,
)


def main() -> None:
    fold = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    settings = load_settings()
    examples = load_examples(TRAIN_DIR)
    train: dict[str, list[str]] = {}
    held: list[tuple[str, str]] = []
    for intent, items in examples.items():
        for index, text in enumerate(items):
            if index % 5 == fold:
                held.append((text, intent))
            else:
                train.setdefault(intent, []).append(text)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        extra = augmented_examples(train)
        merged = {i: [*items, *extra.get(i, [])] for i, items in train.items()}
        (data / "nlu.yml").write_text(_dump_nlu(merged), encoding="utf-8")
        subprocess.run(
            [str(rasa_executable(settings.nlu_venv)), "train", "nlu", "--config", str(CONFIG_PATH),
             "--nlu", str(data), "--out", tmp, "--fixed-model-name", "fold"],
            env=nlu_env(), check=True, capture_output=True,
        )  # fmt: skip
        service = NLUService(settings, Path(tmp) / "fold.tar.gz")
        service.start()
        try:
            asyncio.run(service.wait_ready())
            predictions = asyncio.run(predict(service.url, held, token=service.token))
        finally:
            service.stop()
    wrong = [p for p in predictions if p.predicted != p.expected]
    print(f"fold {fold}: {len(held)} training examples held out, {len(wrong)} misclassified "
          f"({1 - len(wrong) / len(held):.1%} right)")  # fmt: skip
    pairs = Counter((p.expected, p.predicted) for p in wrong)
    for (expected, predicted), count in pairs.most_common(40):
        print(f"  {expected} -> {predicted}: {count}")
    for p in sorted(wrong, key=lambda p: p.expected):
        print(f"  [{p.expected} -> {p.predicted} {p.confidence:.2f}] {p.text}")


if __name__ == "__main__":
    main()
