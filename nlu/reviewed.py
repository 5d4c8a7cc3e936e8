"""The reviewed-data file: members' questions labelled by admins, apart from hand-written data.

``nlu/data/reviewed.yml`` (setting ``REVIEWED_DATA``) is in Rasa's NLU format,
one example per labelled question with who labelled it and when::

    version: "3.1"
    nlu:
    - intent: so_thanh_vien_toi_thieu
      examples:
      - text: htx can may nguoi moi lap dc
        metadata: {labelled_by: "telegram:42 (Lan)", labelled_at: "2026-11-24T08:00:00+00:00"}

Only this module writes it (under a file lock, replaced atomically); the
hand-written files under ``nlu/data/train/`` are never touched. Texts are
masked (:func:`nlu.privacy.mask_personal_data`) before they are written.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu.privacy import mask_personal_data
from nlu.textnorm import clean_text, strip_diacritics

__all__ = [
    "ReviewedExample",
    "add_examples",
    "examples_hash",
    "load_reviewed",
    "same_question",
]

_HEADER = (
    "# Members' questions labelled by admins (`coopbot review label`, /xemxet in chat).\n"
    "# Written by the assistant; hand-written training data is in nlu/data/train/.\n"
    "# Personal data (phone numbers, e-mail addresses, ID numbers) is masked.\n"
)


@dataclass(frozen=True, slots=True)
class ReviewedExample:
    """One labelled question."""

    text: str
    intent: str
    labelled_by: str
    labelled_at: str  # ISO 8601, UTC
    review_id: int | None = None


def same_question(text: str) -> str:
    """The comparison key of a question: lower case, no diacritics, single spaces."""
    return " ".join(strip_diacritics(text).split())


def load_reviewed(path: Path) -> list[ReviewedExample]:
    """Reads the file (missing: no examples); raises ValueError when it is not the format above."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not isinstance(data.get("nlu", []), list):
        raise ValueError(f"{path}: not a Rasa NLU file (no 'nlu' list)")
    examples = []
    for block in data.get("nlu") or []:
        intent = block.get("intent") if isinstance(block, dict) else None
        items = block.get("examples") if isinstance(block, dict) else None
        if not intent or not isinstance(items, list):
            raise ValueError(f"{path}: every block needs an intent and a list of examples")
        for item in items:
            if not isinstance(item, dict) or not str(item.get("text", "")).strip():
                raise ValueError(f"{path}: an example of {intent!r} has no text")
            meta = item.get("metadata") or {}
            review_id = meta.get("review_id")
            examples.append(
                ReviewedExample(
                    text=str(item["text"]).strip(),
                    intent=str(intent),
                    labelled_by=str(meta.get("labelled_by", "")),
                    labelled_at=str(meta.get("labelled_at", "")),
                    review_id=int(review_id) if isinstance(review_id, int) else None,
                )
            )
    return examples


def examples_hash(path: Path) -> str:
    """Hashes what shapes a model (intent and text of each example), not who labelled them."""
    digest = hashlib.sha256()
    for example in sorted(load_reviewed(path), key=lambda e: (e.intent, e.text)):
        digest.update(f"{example.intent}\t{example.text}\n".encode())
    return digest.hexdigest()


def _dump(examples: Iterable[ReviewedExample]) -> str:
    by_intent: dict[str, list[dict[str, object]]] = {}
    for example in examples:
        meta: dict[str, object] = {
            "labelled_by": example.labelled_by,
            "labelled_at": example.labelled_at,
        }
        if example.review_id is not None:
            meta["review_id"] = example.review_id
        by_intent.setdefault(example.intent, []).append({"text": example.text, "metadata": meta})
    body = {
        "version": "3.1",
        "nlu": [{"intent": i, "examples": items} for i, items in sorted(by_intent.items())],
    }
    return _HEADER + yaml.safe_dump(body, allow_unicode=True, sort_keys=False, width=1000)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def add_examples(
    path: Path,
    texts: Iterable[tuple[str, int | None]],
    intent: str,
    labelled_by: str,
    *,
    now: dt.datetime | None = None,
) -> int:
    """Adds ``(text, review id)`` pairs under ``intent``; returns how many are new.

    Each text is cleaned and masked first. A question already in the file is
    not repeated; one labelled before with another intent takes the new label
    (the latest decision wins).
    """
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    with _locked(path):
        existing = load_reviewed(path)
        index = {same_question(e.text): i for i, e in enumerate(existing)}
        added = 0
        for raw, review_id in texts:
            text = mask_personal_data(clean_text(raw, max_chars=500))
            if not any(ch.isalnum() for ch in text):
                continue
            example = ReviewedExample(text, intent, labelled_by, stamp, review_id)
            key = same_question(text)
            if key in index:
                if existing[index[key]].intent != intent:
                    existing[index[key]] = example
                    added += 1
                continue
            index[key] = len(existing)
            existing.append(example)
            added += 1
        if added:
            fd, tmp = tempfile.mkstemp(prefix=".reviewed-", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(_dump(existing))
            os.replace(tmp, path)
        return added
