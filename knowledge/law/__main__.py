"""``python -m knowledge.law refs FILE...``: resolve the references of entry files.

Reads the YAML files as they are (an entry need not pass the full loader yet) and
prints each reference that does not resolve or cites a document not in force today.
Exit code 1 when any does. ``coopbot law check`` is the full check.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from knowledge.law.corpus import LegalCorpus
from knowledge.law.references import Reference


def main(argv: list[str]) -> int:
    """Checks the references in the files named by ``argv[1:]`` (after the word ``refs``)."""
    if len(argv) < 2 or argv[0] != "refs":
        print("usage: python -m knowledge.law refs FILE...", file=sys.stderr)
        return 2
    corpus = LegalCorpus.load()
    today = dt.date.today()
    bad = total = 0
    for name in argv[1:]:
        data = yaml.safe_load(Path(name).read_text(encoding="utf-8")) or {}
        for raw in data.get("entries", []):
            for item in raw.get("basis", []):
                total += 1
                try:
                    ref = Reference.model_validate(item)
                except ValidationError as exc:
                    bad += 1
                    print(f"{name}: {raw.get('id')}: malformed reference {item!r}: {exc}")
                    continue
                problems = corpus.unresolved([ref])
                doc = corpus.register.get(ref.doc)
                if not problems and doc is not None and not doc.in_force_on(today):
                    problems = [f"{ref.id}: {doc.number} is {doc.status_on(today).value}"]
                for problem in problems:
                    bad += 1
                    print(f"{name}: {raw.get('id')}: {problem}")
    print(f"{total} references, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
