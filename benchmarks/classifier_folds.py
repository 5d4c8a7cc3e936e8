"""Classifier options compared on a split of the TRAINING data (never the held-out questions).

Usage (in the NLU environment, which has scikit-learn and underthesea):

    .venv-nlu/bin/python benchmarks/classifier_folds.py [--counts] [C ...]

Holds out every 5th training example of each intent (the split of
benchmarks/train_confusions.py), rebuilds the pipeline's features in scikit-learn
(lemmas from nlu.segmenter; word 1-2-grams and char_wb 2-4-grams, as config.yml),
fits logistic regression for each C on raw counts (``--counts``) or on sublinear
TF-IDF weights (nlu/classifier.py), and prints accuracy and, per confidence
threshold, how many questions would be answered right, answered wrong, or left
to search and the fallback. This is how C and the thresholds were chosen.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import yaml
from scipy.sparse import hstack
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlu.segmenter import segment  # noqa: E402
from nlu.textnorm import has_diacritics, strip_diacritics  # noqa: E402

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def load(directory: Path) -> dict[str, list[str]]:
    examples: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            items = [line.strip()[2:] for line in block["examples"].splitlines() if line.strip()]
            examples.setdefault(block["intent"], []).extend(items)
    return examples


def with_plain_copies(examples: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The examples plus diacritic-free copies, as nlu.build augments them."""
    seen = {e.lower() for items in examples.values() for e in items}
    pairs = [(text, intent) for intent, items in examples.items() for text in items]
    for intent, items in examples.items():
        for text in items:
            plain = strip_diacritics(text)
            if has_diacritics(text) and plain not in seen:
                seen.add(plain)
                pairs.append((plain, intent))
    return pairs


def lemmas(text: str) -> str:
    return " ".join(s.lemma for s in segment(text)) or text


def main(args: list[str]) -> None:
    counts = "--counts" in args
    values = [float(a) for a in args if a != "--counts"] or [30.0]
    train: dict[str, list[str]] = {}
    held: list[tuple[str, str]] = []
    for intent, items in load(ROOT / "nlu" / "data" / "train").items():
        for index, text in enumerate(items):
            if index % 5 == 0:
                held.append((text, intent))
            else:
                train.setdefault(intent, []).append(text)
    pairs = with_plain_copies(train)
    x_train, y_train = [lemmas(t) for t, _ in pairs], [i for _, i in pairs]
    x_held, y_held = [lemmas(t) for t, _ in held], np.array([i for _, i in held])
    words = CountVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\S+")
    chars = CountVectorizer(analyzer="char_wb", ngram_range=(2, 4))
    a = hstack([words.fit_transform(x_train), chars.fit_transform(x_train)]).tocsr()
    b = hstack([words.transform(x_held), chars.transform(x_held)]).tocsr()
    if not counts:
        tfidf = TfidfTransformer(sublinear_tf=True)
        a, b = tfidf.fit_transform(a), tfidf.transform(b)
    print(f"{len(pairs)} training rows, {len(held)} held out, {a.shape[1]} features")
    for c in values:
        started = time.monotonic()
        model = LogisticRegression(C=c, max_iter=300, class_weight="balanced", random_state=42)
        model.fit(a, y_train)
        proba = model.predict_proba(b)
        predicted = model.classes_[proba.argmax(axis=1)]
        confidence = proba.max(axis=1)
        right = predicted == y_held
        law = y_held != "out_of_scope"
        print(f"{'counts' if counts else 'tf-idf'} C={c:g}: accuracy {right.mean():.1%}, "
              f"fit {time.monotonic() - started:.0f} s")  # fmt: skip
        for t in THRESHOLDS:
            sure = confidence >= t
            print(f"  threshold {t:.1f}: law right {np.mean(right[law] & sure[law]):.1%}, "
                  f"wrong {np.mean(~right[law] & sure[law]):.1%}, "
                  f"unsure {np.mean(~sure[law]):.1%}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
