"""``/metrics`` in the Prometheus text format (``prometheus-client``), off unless enabled.

Counted as they happen: questions by channel and outcome (the answer's kind:
``entry``, ``suggested``, ``clause``, ``chitchat``, ``out_of_scope``,
``fallback``) and the answer latency. Read when scraped: sends by channel and
result and NLU parse calls by result (in-process counters), the inbox and the
outbox (pending rows and the age of the oldest, from the database, one indexed
query each) and the model the NLU service serves. Each running assistant has
its own registry (tests run several in one process).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.answers import Answer
from bot.clock import aware, utcnow
from bot.nlu_model.client import NLUClient
from bot.sending import Senders
from bot.store.db import InboxEvent, OutboxMessage

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


def _age(oldest: dt.datetime | None, now: dt.datetime) -> float:
    return 0.0 if oldest is None else max(0.0, (now - aware(oldest)).total_seconds())


class _State(Collector):
    """What is read at scrape time: counters kept elsewhere, queues in the database."""

    def __init__(
        self,
        engine: Engine,
        senders: Senders,
        nlu: NLUClient,
        model: Callable[[], str | None],
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._engine = engine
        self._senders = senders
        self._nlu = nlu
        self._model = model
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        sends = CounterMetricFamily(
            "coopbot_sends",
            "Messages sent through the channels, by result",
            labels=["channel", "result"],
        )
        for (channel, result), count in sorted(self._senders.results.items()):
            sends.add_metric([channel, result], count)
        yield sends
        calls = CounterMetricFamily(
            "coopbot_nlu_calls", "Parse calls to the NLU service, by result", labels=["result"]
        )
        for result in ("ok", "error"):
            calls.add_metric([result], self._nlu.calls[result])
        yield calls
        now = self._clock()
        with self._engine.connect() as connection:
            inbox = connection.execute(
                select(InboxEvent.channel, func.count(), func.min(InboxEvent.received_at))
                .where(InboxEvent.status == "pending")
                .group_by(InboxEvent.channel)
            ).all()
            outbox = connection.execute(
                select(OutboxMessage.kind, func.count(), func.min(OutboxMessage.send_at))
                .where(OutboxMessage.status == "pending", OutboxMessage.send_at <= now)
                .group_by(OutboxMessage.kind)
            ).all()
        for name, rows, label, what in (
            ("inbox", inbox, "channel", "Inbound updates stored and not yet handled"),
            ("outbox", outbox, "kind", "Outbox messages due and not yet sent"),
        ):
            depth = GaugeMetricFamily(f"coopbot_{name}_pending", what, labels=[label])
            age = GaugeMetricFamily(
                f"coopbot_{name}_oldest_age_seconds", "Age of the oldest of them", labels=[label]
            )
            for key, count, oldest in rows:
                depth.add_metric([key], count)
                age.add_metric([key], _age(oldest, now))
            yield depth
            yield age
        model = GaugeMetricFamily(
            "coopbot_nlu_model_info", "The model the NLU service serves (1)", labels=["file"]
        )
        model.add_metric([self._model() or "none"], 1)
        yield model


class Metrics:
    """The running assistant's metrics."""

    def __init__(
        self,
        engine: Engine,
        senders: Senders,
        nlu: NLUClient,
        model: Callable[[], str | None],
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        """Reads the queues from ``engine``, the counters of ``senders`` and ``nlu``."""
        self.registry = CollectorRegistry()
        self.questions = Counter(
            "coopbot_questions",
            "Questions answered, by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "coopbot_answer_seconds",
            "Time to answer a question",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_State(engine, senders, nlu, model, clock))

    def observe(self, channel: str, answer: Answer) -> None:
        """Counts one answer (``AnswerService.on_answer``)."""
        self.questions.labels(channel, answer.kind.value).inc()
        self.latency.labels(channel).observe(answer.latency_ms / 1000)

    def render(self) -> bytes:
        """The exposition (reads the database: call it off the event loop)."""
        return generate_latest(self.registry)
