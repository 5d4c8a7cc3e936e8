"""Handout benchmark: a 40-entry printable handout (A4 PDF), built and read back.

Run with `.venv/bin/python benchmarks/bench_handout.py`. Steps:

1. load the knowledge base and the legal corpus (not timed);
2. build the handout of 40 entries (the unconfirmed ones first, then the others in
   file order) once cold (the first build in the process: font registration
   included) and ``--runs`` times warm; the target is <= 5 s on 2 cores;
3. read the PDF back as a reader would (pypdf: text and images; zxing-cpp: the QR
   codes) and print the page count, the size, and the share of the 40 entries whose
   QR code decodes to the entry's web page (target 100%);
4. build the handout again for the FAQ pages served on 127.0.0.1 (the public routes of
   bot/web/faq.py, lexical answers) and GET every decoded URL: the share that answers
   200 (target 100%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.answers.links import entry_links
from bot.app import Knowledge
from bot.web.handout import build_handout
from knowledge.base import Entry
from tests.unit.test_handout import read_handout, serve_faq

BASE = "https://hotro.example.vn"
TARGET_SECONDS = 5.0


def handout(knowledge: Knowledge, entries: Sequence[Entry], base: str) -> bytes:
    """The handout of ``entries`` with QR codes to the pages under ``base``."""
    return build_handout(
        entries,
        kb=knowledge.kb,
        corpus=knowledge.corpus,
        base_url=base,
        telegram_username="HtxTroLyBot",
        title="Tài liệu tập huấn: hỏi đáp về hợp tác xã",
        today=dt.date.today(),
    )


def pages_answering(knowledge: Knowledge, entries: Sequence[Entry]) -> tuple[int, int]:
    """(codes whose URL answered 200, codes) for a handout pointing at a local FAQ server."""
    with serve_faq(knowledge) as base, httpx.Client(trust_env=False, timeout=30) as client:
        read = read_handout(handout(knowledge, entries, base))
        urls = [url for page in read.qr for url in page]
        ok = sum(1 for url in urls if client.get(url).status_code == 200)
    return ok, len(urls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=40, help="entries in the handout")
    parser.add_argument("--runs", type=int, default=5, help="warm builds after the cold one")
    parser.add_argument("--out", type=Path, help="also write the PDF here")
    args = parser.parse_args()

    knowledge = Knowledge.load()
    ordered = sorted(knowledge.kb, key=lambda e: not e.unconfirmed)
    entries = ordered[: args.entries]

    def build() -> tuple[bytes, float]:
        started = time.perf_counter()
        pdf = handout(knowledge, entries, BASE)
        return pdf, time.perf_counter() - started

    pdf, cold = build()
    warm = [build()[1] for _ in range(args.runs)]
    if args.out:
        args.out.write_bytes(pdf)

    started = time.perf_counter()
    read = read_handout(pdf)
    read_seconds = time.perf_counter() - started
    expected = {entry_links(BASE, e.id).web for e in entries}
    decoded = [url for page in read.qr for url in page]
    right = sum(1 for url in set(decoded) if url in expected and decoded.count(url) == 1)
    share = 100 * right / len(entries)
    categories = len({e.category for e in entries})

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"handout of {len(entries)} entries ({categories} topics, "
        f"{sum(e.unconfirmed for e in entries)} unconfirmed) on {cores} cores"
    )
    print(
        f"build: cold {cold:.2f} s; warm median {statistics.median(warm):.2f} s, "
        f"max {max(warm):.2f} s over {len(warm)} runs (target <= {TARGET_SECONDS:.0f} s)"
    )
    print(f"pdf: {len(read.pages)} pages, {len(pdf) / 1024:.0f} KB, {read.images} images")
    print(
        f"qr: {len(decoded)} codes decoded, {right}/{len(entries)} entries with exactly one code "
        f"to their web page = {share:.0f}% (target 100%); read back in {read_seconds:.2f} s"
    )
    answered, served = pages_answering(knowledge, entries)
    print(
        f"pages: {answered}/{served} decoded URLs answer 200 from the FAQ server on 127.0.0.1 "
        f"= {100 * answered / max(served, 1):.0f}% (target 100%)"
    )
    met = max(cold, *warm) <= TARGET_SECONDS and share == 100
    verdict = "OK" if met and answered == served == len(entries) else "MISSED"
    print(f"targets: {verdict}")


if __name__ == "__main__":
    main()
