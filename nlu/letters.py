"""The letter-style evaluation set (``nlu/data/letters/``): loading and the fixed split.

Letters are what members really send: a greeting, a story, one to three
questions, a closing; in scope (labelled with the entries and articles that
answer them) or from a neighbouring field of law (labelled with the field).
Each letter belongs to the training or the held-out split by a hash of its id,
so the split never changes when letters are added. Thresholds are calibrated on
the training split only; the benchmark reports the held-out split only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import yaml

__all__ = ["LETTERS_DIR", "Letter", "load_letters"]

LETTERS_DIR: Final = Path(__file__).resolve().parent / "data" / "letters"
Split = Literal["train", "test"]


@dataclass(frozen=True, slots=True)
class Letter:
    """One labelled letter."""

    id: str
    text: str
    in_scope: bool
    entries: tuple[str, ...]  # the entries that answer it (in scope)
    articles: tuple[str, ...]  # the articles that answer it, "17/2023/QH15:d33"
    field: str | None  # the neighbouring field (out of scope)
    questions: int
    premise_2012: bool
    accents: bool

    @property
    def split(self) -> Split:
        """``test`` for half of the letters, fixed by the id's hash; ``train`` otherwise."""
        return "test" if hashlib.sha256(self.id.encode()).digest()[0] % 2 == 0 else "train"


def load_letters(directory: Path = LETTERS_DIR, split: Split | None = None) -> list[Letter]:
    """The letters in ``directory`` (all, or one split), in file and id order."""
    letters: list[Letter] = []
    seen: set[str] = set()
    for path in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in data.get("letters") or []:
            letter = Letter(
                id=str(item["id"]),
                text=str(item["text"]).strip(),
                in_scope=item.get("scope", "in") == "in",
                entries=tuple(item.get("entries") or ()),
                articles=tuple(item.get("articles") or ()),
                field=item.get("field"),
                questions=int(item.get("questions", 1)),
                premise_2012=bool(item.get("premise_2012", False)),
                accents=bool(item.get("accents", True)),
            )
            if letter.id in seen:
                raise ValueError(f"{path.name}: letter id {letter.id} is used twice")
            seen.add(letter.id)
            if split is None or letter.split == split:
                letters.append(letter)
    return letters
