"""Premises from the repealed 2012 cooperative law, found in a message and corrected.

Members quote the old law as fact ("luật quy định phải có 7 xã viên"); many web
pages still do. An answer that goes along with the premise confirms a repealed
rule, so the answer opens with a correction citing the law in force
(``premises.yml``). Patterns are matched on the diacritic-free words.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from knowledge.domain import padded
from knowledge.law.references import Reference

__all__ = ["Premise", "Premises", "default_premises"]

PREMISES_PATH: Final = Path(__file__).with_name("premises.yml")


@dataclass(frozen=True, slots=True)
class Premise:
    """An old rule members state as fact, how to correct it, and the clause in force."""

    id: str
    pattern: re.Pattern[str]
    correction: str
    basis: tuple[Reference, ...]
    general: bool = False  # said only when no specific premise is found ("theo Luật 2012")


class Premises:
    """The table of 2012 premises; :meth:`found` lists those a message states."""

    def __init__(self, premises: list[Premise]) -> None:
        """Wraps the premises (see :meth:`load`)."""
        self.premises = premises

    @classmethod
    def load(cls, path: Path = PREMISES_PATH) -> Premises:
        """Reads ``premises.yml``."""
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            [
                Premise(
                    id=str(item["id"]),
                    pattern=re.compile(str(item["pattern"])),
                    correction=" ".join(str(item["correction"]).split()),
                    basis=tuple(Reference.model_validate(ref) for ref in item["basis"]),
                    general=bool(item.get("general", False)),
                )
                for item in data["premises"]
            ]
        )

    def found(self, text: str) -> list[Premise]:
        """The premises ``text`` states, in table order; a general one only if no other is."""
        words = padded(text)
        hits = [p for p in self.premises if p.pattern.search(words)]
        return [p for p in hits if not p.general] or hits


@functools.cache
def default_premises() -> Premises:
    """The shipped table, loaded once per process."""
    return Premises.load()
