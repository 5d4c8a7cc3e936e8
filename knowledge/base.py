"""The knowledge base: cited answers loaded and validated from the YAML files beside this module.

Layout on disk::

    knowledge/categories.yml      FAQ categories, in browsing order
    knowledge/entries/*.yml       entries (one intent each), see README "Knowledge base"
    knowledge/chitchat.yml        replies for greeting, thanks, goodbye, bot, help

Loading fails with :class:`KnowledgeBaseError` naming the file and entry at
fault, so a bad edit is caught at start-up and by the tests, not by a member.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from knowledge.law.references import Reference

__all__ = [
    "CHITCHAT_INTENTS",
    "DEFAULT_KNOWLEDGE_DIR",
    "OUT_OF_SCOPE_INTENT",
    "Category",
    "Entry",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "load_knowledge_base",
]

DEFAULT_KNOWLEDGE_DIR = Path(__file__).resolve().parent
CHITCHAT_INTENTS: tuple[str, ...] = ("greet", "thank", "goodbye", "bot_challenge", "help")
OUT_OF_SCOPE_INTENT = "out_of_scope"
ENTRY_ID_PATTERN = r"^[a-z0-9_-]{1,40}$"


class KnowledgeBaseError(ValueError):
    """A knowledge-base file is missing, malformed or inconsistent."""


class Entry(BaseModel):
    """One knowledge-base entry, answering one NLU intent (its ``id``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ENTRY_ID_PATTERN)
    category: str
    title: str = Field(min_length=3, max_length=120)
    answer: str = Field(min_length=20, max_length=700)
    detail: str | None = Field(default=None, max_length=2000)
    basis: tuple[Reference, ...] = Field(min_length=1)
    checked: dt.date
    unconfirmed: bool = False
    missing_source: str | None = None
    related: tuple[str, ...] = ()

    @field_validator("answer", "title", "detail")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _hedged_with_reason(self) -> Entry:
        if self.unconfirmed and not self.missing_source:
            raise ValueError("an unconfirmed entry says which text is missing (missing_source)")
        if self.missing_source and not self.unconfirmed:
            raise ValueError("missing_source is only for unconfirmed entries")
        return self


@dataclass(frozen=True, slots=True)
class Category:
    """A browsing category of entries."""

    key: str
    title: str


@dataclass(frozen=True)
class KnowledgeBase:
    """All entries, categories and chit-chat replies, validated together."""

    entries: dict[str, Entry]
    categories: tuple[Category, ...]
    chitchat: dict[str, tuple[str, ...]]
    _by_category: dict[str, tuple[Entry, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[Entry]] = {c.key: [] for c in self.categories}
        for entry in self.entries.values():
            grouped[entry.category].append(entry)
        self._by_category.update({k: tuple(v) for k, v in grouped.items()})

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def get(self, entry_id: str) -> Entry | None:
        """Returns the entry with this id, or None."""
        return self.entries.get(entry_id)

    def in_category(self, key: str) -> tuple[Entry, ...]:
        """Returns the entries of one category, in file order."""
        return self._by_category.get(key, ())

    def category_title(self, key: str) -> str:
        """Returns the display title of a category key."""
        for category in self.categories:
            if category.key == key:
                return category.title
        return key


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeBaseError(f"{path}: cannot read: {exc}") from exc


def _load_categories(path: Path) -> tuple[Category, ...]:
    data = _read_yaml(path)
    try:
        categories = tuple(Category(str(c["key"]), str(c["title"])) for c in data["categories"])
    except (TypeError, KeyError) as exc:
        raise KnowledgeBaseError(f"{path}: expected categories: [{{key, title}}]") from exc
    keys = [c.key for c in categories]
    if len(set(keys)) != len(keys):
        raise KnowledgeBaseError(f"{path}: duplicate category keys")
    return categories


def _load_entries(directory: Path, category_keys: set[str]) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    files = sorted(directory.glob("*.yml"))
    if not files:
        raise KnowledgeBaseError(f"{directory}: no entry files")
    for path in files:
        data = _read_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise KnowledgeBaseError(f"{path}: expected a mapping with an 'entries' list")
        for raw in data["entries"]:
            label = raw.get("id", "?") if isinstance(raw, dict) else "?"
            try:
                entry = Entry.model_validate(raw)
            except ValidationError as exc:
                raise KnowledgeBaseError(f"{path}: entry {label}: {exc}") from exc
            if entry.id in entries:
                raise KnowledgeBaseError(f"{path}: duplicate entry id {entry.id}")
            if entry.category not in category_keys:
                raise KnowledgeBaseError(f"{path}: entry {entry.id}: unknown category")
            entries[entry.id] = entry
    for entry in entries.values():
        missing = [r for r in entry.related if r not in entries or r == entry.id]
        if missing:
            raise KnowledgeBaseError(f"entry {entry.id}: related ids not found: {missing}")
    return entries


def _load_chitchat(path: Path) -> dict[str, tuple[str, ...]]:
    data = _read_yaml(path)
    responses = data.get("responses") if isinstance(data, dict) else None
    if not isinstance(responses, dict):
        raise KnowledgeBaseError(f"{path}: expected a mapping 'responses'")
    result: dict[str, tuple[str, ...]] = {}
    for intent in CHITCHAT_INTENTS:
        replies = responses.get(intent)
        if not replies or not all(isinstance(r, str) and r.strip() for r in replies):
            raise KnowledgeBaseError(f"{path}: no replies for chit-chat intent {intent}")
        result[intent] = tuple(r.strip() for r in replies)
    return result


def load_knowledge_base(directory: Path = DEFAULT_KNOWLEDGE_DIR) -> KnowledgeBase:
    """Loads and validates the whole knowledge base from ``directory``."""
    categories = _load_categories(directory / "categories.yml")
    entries = _load_entries(directory / "entries", {c.key for c in categories})
    chitchat = _load_chitchat(directory / "chitchat.yml")
    overlap = set(entries) & (set(CHITCHAT_INTENTS) | {OUT_OF_SCOPE_INTENT})
    if overlap:
        raise KnowledgeBaseError(f"entry ids clash with chit-chat intents: {sorted(overlap)}")
    return KnowledgeBase(entries=entries, categories=categories, chitchat=chitchat)
