"""Trains pipeline variants and prints held-out accuracy for each (how config.yml was chosen).

Usage: .venv/bin/python benchmarks/nlu_options.py [VARIANT ...]
Each variant edits config.yml in memory; models go to a temporary folder.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bot.nlu_model.evaluation import predict_with_model
from bot.settings import load_settings
from nlu.build import CONFIG_PATH, train_model
from nlu.evaluate import evaluate, split_by_spelling


def _component(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in config["pipeline"] if c["name"].endswith(name))


def variant(name: str) -> tuple[dict[str, Any], bool]:
    """Returns (config, augment) of a named variant."""
    config = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
    tokenizer = _component(config, "VietnameseTokenizer")
    augment = True
    if "noaug" in name:
        augment = False
    if "plainseg" in name:
        tokenizer["segment_plain"] = True
    if "accents" in name:
        tokenizer["strip_diacritics"] = False
        tokenizer["expand_abbreviations"] = False
    if "nochar" in name:
        config["pipeline"] = [c for c in config["pipeline"] if c.get("analyzer") != "char_wb"]
    classifiers = ("DIETClassifier", "LogisticRegressionClassifier")
    if "logreg" in name or "diet" in name:
        config["pipeline"] = [c for c in config["pipeline"] if c["name"] not in classifiers]
    if "logreg" in name:
        config["pipeline"].append({"name": "LogisticRegressionClassifier", "max_iter": 300})
    if "diet" in name:
        config["pipeline"].append(
            {"name": "DIETClassifier", "epochs": 80, "number_of_transformer_layers": 0,
             "entity_recognition": False, "constrain_similarities": True, "random_seed": 42}
        )  # fmt: skip
    for part in name.split("-"):
        if part.startswith("ep"):
            _component(config, "DIETClassifier")["epochs"] = int(part[2:])
        if part.startswith("char") and part[4:].isdigit():  # e.g. char24: n-grams 2 to 4
            char = next(c for c in config["pipeline"] if c.get("analyzer") == "char_wb")
            char["min_ngram"], char["max_ngram"] = int(part[4]), int(part[5])
    return copy.deepcopy(config), augment


def main(names: list[str]) -> None:
    settings = load_settings()
    print(f"{'variant':<28} {'train s':>8} {'all':>7} {'accented':>9} {'unaccented':>11} {'F1':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            config, augment = variant(name)
            config_path = Path(tmp) / f"{name}.yml"
            config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
            result = train_model(
                Path(tmp), settings.nlu_venv, config=config_path, augment=augment, name=name
            )
            started = time.monotonic()
            predictions = asyncio.run(predict_with_model(settings, result.model))
            accented, unaccented = split_by_spelling(predictions)
            overall = evaluate(predictions)
            print(
                f"{name:<28} {result.seconds:8.1f} {overall.accuracy:7.1%} "
                f"{evaluate(accented).accuracy:9.1%} {evaluate(unaccented).accuracy:11.1%} "
                f"{overall.macro_f1:6.3f}   (eval {time.monotonic() - started:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["base", "noaug", "plainseg", "nochar", "accents-noaug", "diet"])
