"""Broadcast benchmark: the outbox for 100,000 recipients, and 10,000 sends at Telegram's limit.

Run with `make bench-broadcast`.

1. Outbox creation: 100,000 members in a fresh SQLite file (and a fresh
   PostgreSQL database `coopbot_bench` when a server answers on 127.0.0.1:5432);
   the time `BroadcastStore.create` takes to store the broadcast and insert one
   outbox row per recipient (target <= 10 s).
2. Delivery: 10,000 members on the fake Telegram server (in this process); the
   broadcast is created, then `coopbot run` (its own process, default settings:
   `TELEGRAM_RATE=30`, one message per second per chat) sends it. Three 429
   answers with `retry_after=1` are injected at the start. Figures: achieved
   messages/s from the first to the last successful send against the limit
   (target >= 95%), 429s seen, duplicates and losses counted from what the
   fake received per chat.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from benchmarks.bench_reminders import (
    insert_members,
    member_row,
    postgres_database,
    sqlite_database,
)
from bot.nlu_model.service import NLUService
from bot.settings import PROJECT_ROOT, load_settings
from bot.store.broadcasts import BroadcastStore, Segment
from bot.store.db import OutboxMessage, create_db_engine, upgrade_db
from bot.store.outbox import Outbox
from nlu.build import current_model
from tests.fakes import FakeTelegram
from tests.processes import stop

TOKEN = "4244:bench-broadcast"
COOPBOT = PROJECT_ROOT / ".venv" / "bin" / "coopbot"
TEXT = "Liên minh HTX tỉnh thông báo: lớp tập huấn kê khai thuế điện tử mở đăng ký từ hôm nay."


def add_members(engine: Engine, count: int, ids: list[str] | None = None) -> None:
    now = dt.datetime.now(dt.UTC)
    rows = [member_row(now, user) for user in (ids or [f"u{i}" for i in range(count)])]
    with engine.begin() as connection:
        insert_members(connection, rows)


def outbox_creation(name: str, engine: Engine, members: int) -> None:
    upgrade_db(engine)
    add_members(engine, members)
    store = BroadcastStore(engine, Outbox(engine))
    began = time.perf_counter()
    created = store.create(TEXT, Segment(), "bench")
    elapsed = time.perf_counter() - began
    with engine.connect() as connection:
        rows = connection.scalar(select(func.count()).select_from(OutboxMessage))
    print(
        f"{name}: outbox for {created.recipients:,} recipients created in {elapsed:.2f} s "
        f"({rows:,} rows)  target <= 10 s"
    )


def delivery(recipients: int, nlu_url: str, folder: Path) -> None:
    database = folder / "delivery.db"
    engine = create_db_engine(f"sqlite:///{database}")
    upgrade_db(engine)
    with FakeTelegram(tokens=(TOKEN,)) as fake:
        users = [str(fake.user(first_name=f"Thành viên {i}")["id"]) for i in range(recipients)]
        add_members(engine, 0, users)
        created = BroadcastStore(engine, Outbox(engine)).create(TEXT, Segment(), "bench")
        fake.fail_next(
            "sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, times=3
        )
        settings = load_settings()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEB_"))},
            "NLU_URL": nlu_url,
            "DATABASE_URL": f"sqlite:///{database}",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": fake.base_url,
            "WEB_PORT": "0",
            "LOG_LEVEL": "WARNING",
        }
        limit = settings.telegram_rate
        process = subprocess.Popen(
            [str(COOPBOT), "run"], env=env, cwd=folder, stdout=subprocess.DEVNULL,
            stderr=sys.stderr,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + recipients / limit * 2 + 120
            while True:
                sent = [c for c in fake.calls("sendMessage", TOKEN) if c.ok]
                if len(sent) >= recipients or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            time.sleep(2.0)  # anything sent twice would arrive now
        finally:
            stop(process, 60)
    calls = fake.calls("sendMessage", TOKEN)
    sent = [c for c in calls if c.ok]
    limited = [c for c in calls if c.status == 429]
    received = Counter(str(c.params["chat_id"]) for c in sent)
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    lost = len(set(users) - set(received))
    span = sent[-1].at - sent[0].at if len(sent) > 1 else 0.0
    rate = (len(sent) - 1) / span if span else 0.0
    print(f"delivery: {created.recipients:,} recipients through the fake Telegram server")
    print(f"  achieved            {rate:.1f} messages/s against the limit {limit:g}/s "
          f"({rate / limit:.1%})  target >= 95%")  # fmt: skip
    print(f"  time                {span:.1f} s from the first to the last send")
    print(f"  429 answers         {len(limited)} (retried after retry_after)")
    print(f"  duplicates          {duplicates}")
    print(f"  lost                {lost}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000, help="for the outbox creation")
    parser.add_argument("--recipients", type=int, default=10_000, help="for the delivery run")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--skip-delivery", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    for name in args.databases.split(","):
        if name == "sqlite":
            with sqlite_database() as (engine, _path):
                outbox_creation("sqlite", engine, args.members)
        elif name == "postgres":
            try:
                with postgres_database() as engine:
                    outbox_creation("postgres", engine, args.members)
            except OperationalError as exc:
                print(f"postgres: skipped, no server answers: {exc.orig}")
    if args.skip_delivery:
        return
    settings = load_settings()
    model = current_model(settings.model_dir)
    if model is None:
        sys.exit("no trained model: run `make model` first")
    service = NLUService(settings, model)
    os.environ["NLU_TOKEN"] = service.token  # `coopbot run` below sends it
    service.start()
    try:
        asyncio.run(service.wait_ready(timeout=180))
        with tempfile.TemporaryDirectory(prefix="bench-broadcast-") as folder:
            delivery(args.recipients, service.url, Path(folder))
    finally:
        service.stop()


if __name__ == "__main__":
    main()
