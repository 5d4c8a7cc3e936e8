"""NLU benchmark: prints accuracy, fallback rate, latency, training time and service memory.

Run with `make bench-nlu`. Steps:
1. train a fresh model from the current data (timed) into a temporary folder;
2. serve it with `rasa run` and measure the service's resident memory;
3. classify the held-out split: accuracy and macro-F1, accented and unaccented apart;
4. answer the held-out split through `coopbot ask --json --batch` (one process, one
   connection): out-of-scope fallback rate, answer accuracy, per-question latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import percentile
from bot.answers.letters import run_letters, summary
from bot.answers.questions import extract
from bot.cli.context import answer_service
from bot.nlu_model.evaluation import predict_split
from bot.nlu_model.service import NLUEndpoint, NLUService
from bot.settings import PROJECT_ROOT, load_settings
from knowledge.base import CHITCHAT_INTENTS, OUT_OF_SCOPE_INTENT, load_knowledge_base
from knowledge.check import check_all
from knowledge.law.corpus import LegalCorpus
from knowledge.law.retrieval import ClauseRetriever
from nlu.build import TEST_DIR, load_examples, train_model
from nlu.evaluate import evaluate, split_by_spelling
from nlu.letters import load_letters
from scheduler.deadlines import load_rules


def rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        total += child.memory_info().rss
    return total / 2**20


def main() -> None:
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        print("training a fresh model ...", flush=True)
        # A cold cache, so that the time is a full training run.
        trained = train_model(
            Path(tmp), settings.nlu_venv, name="bench", cache_dir=Path(tmp) / "cache"
        )
        service = NLUService(settings, trained.model)
        service.start()
        try:
            asyncio.run(service.wait_ready())
            predictions = asyncio.run(predict_split(service.endpoint))
            letters = asyncio.run(letter_figures(service.endpoint, Path(tmp) / "letters.db"))
            assert service.process is not None
            memory = rss_mb(service.process.pid)

            tests = load_examples(TEST_DIR)
            questions = [(q, intent) for intent, items in tests.items() for q in items]
            batch = Path(tmp) / "questions.txt"
            batch.write_text("\n".join(q for q, _ in questions) + "\n", encoding="utf-8")
            env = {
                **os.environ,
                "NLU_URL": service.url,
                "NLU_TOKEN": service.token,
                "DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
                "LOG_LEVEL": "WARNING",
            }
            started = time.monotonic()
            output = subprocess.run(
                [str(PROJECT_ROOT / ".venv" / "bin" / "coopbot"), "ask", "--json", "--batch",
                 str(batch)],
                env=env, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            batch_seconds = time.monotonic() - started
            # A warm-up question is not part of the held-out set: drop nothing, but
            # report the first answer's latency apart (connection set-up).
        finally:
            service.stop()

    rows = [json.loads(line) for line in output.splitlines()]
    assert len(rows) == len(questions)
    latencies = [r["latency_ms"] for r in rows]
    oos = [
        r for r, (_, intent) in zip(rows, questions, strict=True) if intent == OUT_OF_SCOPE_INTENT
    ]
    law = [
        (r, intent)
        for r, (_, intent) in zip(rows, questions, strict=True)
        if intent not in (OUT_OF_SCOPE_INTENT, *CHITCHAT_INTENTS)
    ]
    accented, unaccented = split_by_spelling(predictions)
    overall, acc, unacc = evaluate(predictions), evaluate(accented), evaluate(unaccented)

    print()
    print(f"held-out questions            {overall.count} ", end="")
    print(f"({acc.count} accented, {unacc.count} unaccented)")
    print(f"intent accuracy, all          {overall.accuracy:.1%}   macro-F1 {overall.macro_f1:.3f}")
    print(f"intent accuracy, accented     {acc.accuracy:.1%}   macro-F1 {acc.macro_f1:.3f}")
    print(f"intent accuracy, unaccented   {unacc.accuracy:.1%}   macro-F1 {unacc.macro_f1:.3f}")
    oos_rate = sum(r["fallback"] for r in oos) / len(oos)
    print(f"out-of-scope -> fallback      {oos_rate:.1%} ({len(oos)} questions)")
    right = sum(r["entry_id"] == intent for r, intent in law)
    wrong = sum(r["entry_id"] not in (None, intent) for r, intent in law)
    print(
        f"law questions: right entry    {right / len(law):.1%}; "
        f"wrong entry {wrong / len(law):.1%}; fallback {1 - (right + wrong) / len(law):.1%}"
    )
    print(
        f"answer latency (in process)   p50 {statistics.median(latencies):.1f} ms   "
        f"p99 {percentile(latencies, 99):.1f} ms   max {max(latencies):.1f} ms"
    )
    print(
        f"ask --batch wall time         {batch_seconds:.1f} s for {len(rows)} questions "
        "(includes process start and index build)"
    )
    print(
        f"NLU training time             {trained.seconds:.1f} s ({trained.examples} examples, "
        f"{os.cpu_count()} cores)"
    )
    print(f"NLU service memory (RSS)      {memory:.0f} MB")
    print("most confused:", ", ".join(f"{a}->{b} ({n})" for a, b, n in overall.confused[:5]))
    print()
    for line in letters:
        print(line)
    print_corpus_figures()


async def letter_figures(endpoint: NLUEndpoint, database: Path) -> list[str]:
    """Held-out letters: right / honest / wrong, retrieval recall@3, 1,500-character latency."""
    letters = load_letters(split="test")
    # The service `coopbot ask` builds, on the NLU service already running at ``endpoint``.
    settings = load_settings().model_copy(
        update={
            "nlu_url": endpoint.url,
            "nlu_token": SecretStr(endpoint.token or ""),
            "database_url": f"sqlite:///{database}",
        }
    )
    async with answer_service(settings) as service:
        started = time.perf_counter()
        retriever = service.retriever
        index_seconds = time.perf_counter() - started
        results = await run_letters(service, letters)
        # Each held-out letter grown to 1,500 characters with the stories of others
        # before it (its questions stay at the end).
        padding = " ".join(x.text for x in load_letters(split="train"))
        long_latencies = []
        for letter in letters:
            text = f"{padding[: max(0, 1499 - len(letter.text))]} {letter.text}"[-1500:]
            answer = await service.answer(text, channel="bench")
            long_latencies.append(answer.latency_ms)

    recalled = total = 0
    for letter in letters:
        if not (letter.in_scope and letter.articles):
            continue
        parts = extract(letter.text)
        found: list[str] = []
        for question in parts.questions:
            hits = retriever.search(question, 12, context=parts.story)
            found += [a for a in ClauseRetriever.articles(hits, 3) if a not in found]
        total += 1
        recalled += bool(set(found[: 3 * len(parts.questions)]) & set(letter.articles))
    scopes = Counter(x.in_scope for x in letters)
    lines = [
        f"held-out letters              {len(letters)} ({scopes[True]} in scope, "
        f"{scopes[False]} out of scope)"
    ]
    for label, line in summary(results).items():
        lines.append(f"letters, {label:13}        {line}")
    lines.append(
        f"clause retrieval recall@3     {recalled / max(total, 1):.1%} "
        f"(gold article among the top 3 per question, {total} letters)"
    )
    lines.append(
        f"1,500-character letters       p50 {statistics.median(long_latencies):.1f} ms   "
        f"p99 {percentile(long_latencies, 99):.1f} ms ({len(long_latencies)} letters)"
    )
    lines.append(f"clause index build            {index_seconds:.2f} s (segments cached by hash)")
    return lines


def print_corpus_figures() -> None:
    """The legal corpus: parse time at start-up and how the knowledge base cites it."""
    started = time.perf_counter()
    corpus = LegalCorpus.load()
    parse_seconds = time.perf_counter() - started
    kb = load_knowledge_base()
    report = check_all(kb, load_rules(), corpus)
    units = sum(1 for _ in corpus.units())
    print(
        f"legal corpus                  {len(corpus.texts)} texts, {units} clauses, parsed in "
        f"{parse_seconds * 1000:.0f} ms ({len(corpus.register)} documents registered)"
    )
    print(
        f"knowledge entries             {len(kb)}; references {report.references}, resolved "
        f"{report.resolved / report.references:.1%} ({report.to_clause} to a clause or article, "
        f"{report.to_document} to a document without text); problems {len(report.findings)}"
    )
    print(f"unconfirmed entries           {len(report.unconfirmed)}: "
          + ", ".join(entry_id for entry_id, _ in report.unconfirmed))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
