"""Admin dashboard benchmark: each page's server time on a seeded PostgreSQL database.

Run with `make bench-dashboard`. Target: every dashboard page (and every CSV
download) <= 300 ms p99 server time, with 1,000,000 messages, 100,000 members
and 50 broadcasts in PostgreSQL, on 2 cores.

1. Seeding: a database of its own, `coopbot_bench_dashboard` on 127.0.0.1:5432
   (not `test`, which the test suite uses, nor `coopbot_bench`, which the other
   benchmarks drop and recreate), migrated, then filled by set-based SQL
   (`INSERT ... SELECT ... FROM generate_series`, seeded `random()`): 100,000
   members (Telegram/Zalo/web ~50/40/10, the profile's provinces with a skew, ~5%
   without one, ~3% inactive, joined over 400 days) and a few staff and admins;
   1,000,000 logged messages over 120 days (usage growing towards today; the
   answer kinds of `bot.answers`, real knowledge-base entry ids, a few % of
   👍/👎; each member's last contact is their last message); 10,000 hand-overs;
   50 broadcasts over 90 days with 2,000-20,000 outbox
   rows each (the two newest still sending); ~190,000 deadline reminders and
   the reminders, change notices and entries of 12 training sessions with their
   seats; 3,000 open review questions (and 1,500 decided ones) with varied
   texts; 6 NLU model versions. Then `VACUUM ANALYZE` (what autovacuum would
   have done on a live database). A marker row (`scheduler_state`) remembers the
   seed and its moment: the next run reuses the data unless `--reseed`. The
   dashboard's clock is that moment, so the windows hold the same rows every run.
2. Serving: `bot.web.server.admin_app` under uvicorn in a thread of this process
   on 127.0.0.1, wrapped in a timer (ASGI) that takes each request's server time
   from its arrival to the last byte of the body handed to uvicorn. An admin logs
   in through `/admin/login?token=...`; every page is requested for each period
   (7, 30, 90 days) where it has one and, where it has the filter, for the most
   populous province too; then every CSV table (links found on the 90-day pages).
   Each URL: 3 warm-up requests, then `--requests` (default 50, so that the p99
   is the second-worst sample rather than the worst), one at a time over one
   keep-alive connection. The dashboard's rollups (settled days, finished
   broadcasts: counted on first need) are emptied first, so the first request of
   a URL (column "first") shows what counting the days it is the first to need
   costs; the figures are those of the warm requests that follow.
3. Access: every URL again without a cookie, with a forged cookie, with the
   session of a member who is no longer staff, and (admin-only pages) with a
   staff member's session: each must answer 403.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import create_engine, insert, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_reminders import PG_ADMIN_URL
from benchmarks.figures import describe, percentile
from bot.handlers.review import ReviewChat
from bot.nlu_model.registry import ModelRegistry
from bot.nlu_model.review_queue import ReviewQueue
from bot.profile import load_profile_options
from bot.store.admin_sessions import AdminSessionStore
from bot.store.broadcasts import BroadcastStore, Segment
from bot.store.db import (
    Base,
    Broadcast,
    NLUModel,
    ReviewQuestion,
    SchedulerState,
    TrainingSession,
    create_db_engine,
    upgrade_db,
)
from bot.store.outbox import Outbox
from bot.store.training import TrainingStore
from bot.web.admin import COOKIE
from bot.web.dashboard import PAGES, PERIODS, Dashboard, Page
from bot.web.server import admin_app
from knowledge.base import load_knowledge_base
from nlu.build import TRAIN_DIR, load_examples
from scheduler.deadlines import load_rules
from tests.serving import serve_app

TARGET_P99_MS = 300.0
BENCH_DB = "coopbot_bench_dashboard"
SEED_VERSION = 2  # bump when the seed changes: an older seeded database is then rebuilt
MARKER = "bench_dashboard_seed"
MEMBERS = 100_000
MESSAGES = 1_000_000
HANDOVERS = 10_000
BROADCASTS = 50
OPEN_REVIEW = 3_000
DECIDED_REVIEW = 1_500
WARM_UP = 3
# Logins: (external id, role). "bench-demoted" logs in as staff, then loses the role.
LOGINS = (("bench-admin", "admin"), ("bench-staff", "staff"), ("bench-demoted", "staff"))
STAFF = (
    *((f"admin-{i}", "admin", f"Quản trị viên {i}") for i in range(1, 3)),
    *((f"staff-{i}", "staff", f"Cán bộ Liên minh {i}") for i in range(1, 9)),
)


# -- the database ---------------------------------------------------------------------------


@contextmanager
def bench_database() -> Iterator[Engine]:
    """The benchmark's own database, created when missing (OperationalError: no server)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": BENCH_DB}
            )
            if not exists:
                connection.execute(text(f"CREATE DATABASE {BENCH_DB}"))
    finally:
        admin.dispose()
    engine = create_db_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{BENCH_DB}")
    try:
        yield engine
    finally:
        engine.dispose()


def emptied(engine: Engine) -> None:
    """Drops every table of the benchmark's database (its own), then migrates it afresh."""
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    upgrade_db(engine)


def seeded_at(engine: Engine) -> dt.datetime | None:
    """The moment of a complete seed of this version on today's schema, or None.

    A table the models have and the database lacks means a migration changed since the
    seed (an unreleased one may be edited in place): the database is then rebuilt.
    """
    missing = set(Base.metadata.tables) - set(inspect(engine).get_table_names())
    if missing:
        print(f"tables missing from the seeded database ({', '.join(sorted(missing))}): reseed")
        return None
    with engine.connect() as connection:
        value = connection.scalar(select(SchedulerState.value).where(SchedulerState.name == MARKER))
        if value is None:
            return None
        marker = json.loads(value)
        counts = counted(connection)
    expected = {"members": MEMBERS, "messages": MESSAGES, "broadcasts": BROADCASTS}
    if marker.get("version") != SEED_VERSION or any(counts[k] != n for k, n in expected.items()):
        return None
    return dt.datetime.fromisoformat(marker["now"])


def counted(connection: Connection) -> dict[str, int]:
    """Row counts of the seeded tables (members: the seeded ones, ``m<n>``, whatever their role)."""
    queries = {
        "members": "SELECT count(*) FROM members WHERE external_id LIKE 'm%'",
        "staff and admins": "SELECT count(*) FROM members WHERE external_id NOT LIKE 'm%'",
        "messages": "SELECT count(*) FROM messages",
        "handovers": "SELECT count(*) FROM handovers",
        "broadcasts": "SELECT count(*) FROM broadcasts",
        "outbox: broadcast": "SELECT count(*) FROM outbox WHERE kind = 'broadcast'",
        "outbox: reminders": "SELECT count(*) FROM outbox WHERE kind <> 'broadcast'",
        "training sessions": "SELECT count(*) FROM training_sessions",
        "registrations": "SELECT count(*) FROM training_registrations",
        "review questions (open)": "SELECT count(*) FROM review_questions WHERE status = 'open'",
        "review questions (decided)": "SELECT count(*) FROM review_questions "
        "WHERE status <> 'open'",
        "NLU models": "SELECT count(*) FROM nlu_models",
    }
    return {name: int(connection.scalar(text(sql)) or 0) for name, sql in queries.items()}


# -- seeding --------------------------------------------------------------------------------


def seed(engine: Engine, now: dt.datetime) -> None:
    """Fills the migrated, empty database (one transaction), then VACUUM ANALYZE."""
    options = load_profile_options()
    provinces = [c.code for c in options.choices("province")]
    coop_types = [c.code for c in options.choices("coop_type")]
    kb = load_knowledge_base()
    entry_ids = list(kb.entries)
    titles = [kb.entries[e].title for e in entry_ids]
    rules = [r.id for r in load_rules()]
    rng = random.Random(20261130)
    with engine.begin() as db:
        db.execute(text("SELECT setseed(0.4244)"))
        steps: list[tuple[str, float]] = []

        def step(name: str, began: float) -> None:
            steps.append((name, time.perf_counter() - began))

        began = time.perf_counter()
        _members(db, now, provinces, coop_types)
        step("members", began)
        first = int(db.scalar(text("SELECT min(id) FROM members")) or 0)
        params = {"now": now, "first": first, "n": MEMBERS}
        began = time.perf_counter()
        _messages(db, params, entry_ids, titles)
        step("messages", began)
        began = time.perf_counter()
        _handovers(db, params, titles)
        _last_seen(db)
        step("handovers, last seen", began)
        began = time.perf_counter()
        _broadcasts(db, params, rng, provinces)
        step("broadcasts", began)
        began = time.perf_counter()
        _deadline_reminders(db, params, rules)
        _training(db, params, rng, entry_ids)
        step("reminders and training", began)
        began = time.perf_counter()
        _review_questions(db, params, rng)
        _models(db, now)
        db.execute(
            insert(SchedulerState).values(
                name=MARKER,
                value=json.dumps({"version": SEED_VERSION, "now": now.isoformat()}),
                updated_at=now,
            )
        )
        step("review queue, models", began)
    began = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    step("VACUUM ANALYZE", began)
    print("  " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps))


def _members(db: Connection, now: dt.datetime, provinces: list[str], coop_types: list[str]) -> None:
    # Ids grow with the joining day, as they do on a live database. Provinces: a skew
    # towards the first codes (the two big cities first), ~5% not given.
    db.execute(
        text("""
        INSERT INTO members (channel, external_id, chat_id, bot_id, display_name, province,
            coop_type, coop_role, vat_period, role, consent_reminders, consent_broadcasts,
            reminders_asked, active, created_at, updated_at, last_seen_at)
        SELECT ch, 'm' || g, 'm' || g, CASE ch WHEN 'web' THEN 'web' ELSE '4244' END,
            'Thành viên ' || g,
            CASE WHEN r_province < 0.05 THEN NULL
                 ELSE (CAST(:provinces AS varchar[]))[1 + floor(:np * power(random(), 1.7))::int]
            END,
            (CAST(:coop_types AS varchar[]))[1 + floor(:nt * power(random(), 1.4))::int],
            CASE WHEN random() < 0.2 THEN 'giam_doc' ELSE 'thanh_vien' END,
            CASE WHEN random() < 0.3 THEN 'monthly' ELSE 'quarterly' END,
            'member', random() < 0.6, random() < 0.95, true, random() >= 0.03,
            joined, joined, joined + random() * (:now - joined)
        FROM (
            SELECT g, random() AS r_channel, random() AS r_province,
                :now - random() * interval '400 days' AS joined
            FROM generate_series(1, :n) AS g
        ) AS s
        CROSS JOIN LATERAL (
            SELECT CASE WHEN r_channel < 0.5 THEN 'telegram'
                        WHEN r_channel < 0.9 THEN 'zalo' ELSE 'web' END AS ch
        ) AS c
        ORDER BY joined
        """),
        {
            "now": now,
            "n": MEMBERS,
            "provinces": provinces,
            "np": len(provinces),
            "coop_types": coop_types,
            "nt": len(coop_types),
        },
    )
    people = [*STAFF, *((user, role, f"Bench {role}") for user, role in LOGINS)]
    db.execute(
        text("""
        INSERT INTO members (channel, external_id, chat_id, bot_id, display_name, province,
            role, consent_reminders, consent_broadcasts, reminders_asked, active, created_at,
            updated_at, last_seen_at)
        VALUES ('telegram', :user, :user, '4244', :name, 'ha_noi', :role, false, false, true,
            true, :at, :at, :at)
        """),
        [
            {"user": user, "role": role, "name": name, "at": now - dt.timedelta(days=300)}
            for user, role, name in people
        ],
    )


def _messages(
    db: Connection, params: dict[str, Any], entry_ids: list[str], titles: list[str]
) -> None:
    # Who asks: a heavy tail (power 3: a few members ask a lot). When: usage grows towards
    # today (density 2(1 - t)). Kinds: the answer kinds of bot.answers and menu browsing.
    db.execute(
        text("""
        INSERT INTO messages (member_id, channel, text, kind, intent, confidence, entry_id,
            fallback, latency_ms, feedback, feedback_at, created_at)
        SELECT m.id, m.channel, (CAST(:titles AS text[]))[s.entry], k.kind,
            CASE WHEN k.kind IN ('entry', 'suggested') THEN (CAST(:ids AS varchar[]))[s.entry]
                 WHEN k.kind = 'chitchat' THEN 'greet' END,
            CASE WHEN k.kind = 'browse' THEN NULL ELSE 0.3 + 0.7 * s.r_conf END,
            CASE WHEN k.kind IN ('entry', 'suggested', 'browse')
                 THEN (CAST(:ids AS varchar[]))[s.entry] END,
            k.kind = 'fallback', 40 + 400 * s.r_conf * s.r_conf,
            CASE WHEN s.r_feedback < 0.03 THEN 'up' WHEN s.r_feedback < 0.042 THEN 'down' END,
            CASE WHEN s.r_feedback < 0.042 THEN s.at + interval '1 minute' END,
            s.at
        FROM (
            SELECT :first + floor(:n * power(random(), 3))::int AS member,
                1 + floor(:ne * power(random(), 2))::int AS entry,
                random() AS r_kind, random() AS r_conf, random() AS r_feedback,
                :now - (1 - sqrt(random())) * interval '120 days' AS at
            FROM generate_series(1, :count)
        ) AS s
        JOIN members AS m ON m.id = s.member
        CROSS JOIN LATERAL (
            SELECT CASE WHEN r_kind < 0.45 THEN 'entry' WHEN r_kind < 0.57 THEN 'suggested'
                        WHEN r_kind < 0.62 THEN 'clause' WHEN r_kind < 0.66 THEN 'out_of_scope'
                        WHEN r_kind < 0.74 THEN 'fallback' WHEN r_kind < 0.80 THEN 'chitchat'
                        ELSE 'browse' END AS kind
        ) AS k
        ORDER BY s.at
        """),
        {**params, "count": MESSAGES, "ids": entry_ids, "titles": titles, "ne": len(entry_ids)},
    )


def _handovers(db: Connection, params: dict[str, Any], titles: list[str]) -> None:
    db.execute(
        text("""
        INSERT INTO handovers (member_id, question, status, staff_chat_id, staff_message_id,
            created_at, answered_at)
        SELECT member, (CAST(:titles AS text[]))[1 + floor(:nq * random())::int],
            CASE WHEN answered THEN 'answered' ELSE 'open' END, '-1001234567', g::text,
            at, CASE WHEN answered THEN at + random() * interval '6 hours' END
        FROM (
            SELECT g, :first + floor(:n * power(random(), 2))::int AS member,
                random() < 0.9 AS answered,
                :now - (1 - sqrt(random())) * interval '120 days' AS at
            FROM generate_series(1, :count) AS g
        ) AS s
        ORDER BY at
        """),
        {**params, "count": HANDOVERS, "titles": titles, "nq": len(titles)},
    )


def _last_seen(db: Connection) -> None:
    # A member's last contact: their last logged message (members who never asked keep
    # the moment drawn with them).
    db.execute(
        text("""
        UPDATE members AS m SET last_seen_at = GREATEST(m.created_at, s.last)
        FROM (SELECT member_id, max(created_at) AS last FROM messages GROUP BY member_id) AS s
        WHERE m.id = s.member_id
        """)
    )


def _broadcasts(
    db: Connection, params: dict[str, Any], rng: random.Random, provinces: list[str]
) -> None:
    now: dt.datetime = params["now"]
    rows = []
    for i in range(BROADCASTS):
        created = now - dt.timedelta(days=90) + dt.timedelta(days=88 * i / (BROADCASTS - 1))
        created += dt.timedelta(minutes=rng.randint(0, 600))
        status = "done"
        if i >= BROADCASTS - 2:  # the two newest are still being sent
            created = now - dt.timedelta(minutes=30 * (BROADCASTS - i))
            status = "sending"
        elif i == 20:
            status = "cancelled"
        segment = Segment()
        if i % 3 == 1:
            segment = Segment(province=tuple(sorted(rng.sample(provinces, 2))))
        elif i % 3 == 2:
            segment = Segment(channel=("zalo",))
        rows.append(
            {
                "text": f"Liên minh HTX thông báo số {i + 1}: lịch tập huấn và hạn nộp báo cáo.",
                "segment": segment.to_json(),
                "recipients": rng.randint(2_000, 20_000),
                "status": status,
                "created_by": "Cán bộ Liên minh 1 (#100001, telegram)",
                "created_at": created,
                "finished_at": None if status == "sending" else created + dt.timedelta(hours=1),
            }
        )
    db.execute(insert(Broadcast), rows)
    # Recipients: a block of member ids per broadcast; sent at 30 messages/s.
    db.execute(
        text("""
        INSERT INTO outbox (member_id, kind, ref, occurrence, slot, send_at, expires_at,
            status, attempts, error, created_at, sent_at)
        SELECT m.id, 'broadcast', CAST(b.id AS varchar), '', '', b.created_at,
            b.created_at + interval '3 days', st.status,
            CASE WHEN st.status = 'pending' THEN 0 ELSE 1 END,
            CASE WHEN st.status IN ('blocked', 'failed') THEN 'Forbidden: bot was blocked' END,
            b.created_at,
            CASE WHEN st.status = 'sent'
                 THEN b.created_at + (m.id - :first - b.start) * interval '33 milliseconds' END
        FROM (SELECT *, (id * 7919) % (:n - recipients) AS start FROM broadcasts) AS b
        JOIN members AS m ON m.id >= :first + b.start AND m.id < :first + b.start + b.recipients
        CROSS JOIN LATERAL (SELECT random() AS r) AS x
        CROSS JOIN LATERAL (
            SELECT CASE
                WHEN b.status = 'done' THEN
                    CASE WHEN x.r < 0.90 THEN 'sent' WHEN x.r < 0.95 THEN 'blocked'
                         WHEN x.r < 0.97 THEN 'failed' ELSE 'dropped' END
                WHEN b.status = 'sending' THEN
                    CASE WHEN x.r < 0.40 THEN 'sent' WHEN x.r < 0.42 THEN 'blocked'
                         WHEN x.r < 0.43 THEN 'failed' ELSE 'pending' END
                ELSE CASE WHEN x.r < 0.30 THEN 'sent' ELSE 'dropped' END
            END AS status
        ) AS st
        ORDER BY b.id, m.id
        """),
        params,
    )


def _deadline_reminders(db: Connection, params: dict[str, Any], rules: list[str]) -> None:
    # Each rule: 6 due dates, 4 weeks apart, from 110 days ago; slots 7d, 2d, 0d at 08:00
    # Vietnam time; 1,500 members each. Past ones were sent (Zalo: 10% unknown) or dropped.
    db.execute(
        text("""
        INSERT INTO outbox (member_id, kind, ref, occurrence, slot, send_at, expires_at,
            status, attempts, created_at, sent_at)
        SELECT m.id, 'deadline', o.rule, to_char(o.due, 'YYYY-MM-DD'), sl.slot, o.send_at,
            o.due + interval '1 day', st.status, CASE WHEN st.status = 'pending' THEN 0 ELSE 1 END,
            o.send_at - interval '20 days',
            CASE WHEN st.status IN ('sent', 'unknown')
                 THEN o.send_at + random() * interval '10 minutes' END
        FROM unnest(CAST(:rules AS varchar[])) WITH ORDINALITY AS r(rule, ri)
        CROSS JOIN generate_series(0, 5) AS k
        CROSS JOIN (VALUES ('7d', 7), ('2d', 2), ('0d', 0)) AS sl(slot, days)
        CROSS JOIN LATERAL (
            SELECT r.rule, (CAST(:now AS timestamptz) AT TIME ZONE 'UTC')::date - 110
                    + k * 28 + r.ri::int * 2 AS due,
                ((r.ri * 6 + k) * 15485863) % (:n - 1500) AS start
        ) AS d
        CROSS JOIN LATERAL (
            SELECT d.rule, d.due, d.start,
                ((d.due - sl.days) + time '01:00') AT TIME ZONE 'UTC' AS send_at  -- 08:00 UTC+7
        ) AS o
        JOIN members AS m ON m.id >= :first + o.start AND m.id < :first + o.start + 1500
        CROSS JOIN LATERAL (SELECT random() AS r) AS x
        CROSS JOIN LATERAL (
            SELECT CASE WHEN o.send_at >= :now THEN 'pending'
                        WHEN m.channel = 'zalo' AND x.r < 0.10 THEN 'unknown'
                        WHEN x.r < 0.93 THEN 'sent' ELSE 'dropped' END AS status
        ) AS st
        ORDER BY o.send_at, m.id
        """),
        {**params, "rules": rules},
    )


def _training(
    db: Connection, params: dict[str, Any], rng: random.Random, entry_ids: list[str]
) -> None:
    now: dt.datetime = params["now"]
    for i in range(12):
        starts = (now - dt.timedelta(days=100 - 11 * i)).replace(
            hour=1, minute=30, second=0, microsecond=0
        )
        ends = starts + dt.timedelta(hours=3)
        capacity = rng.choice((60, 80, 100, 150, 200))
        status = "cancelled" if i == 7 else "scheduled"
        version = 2 if i in (3, 7, 10) else 1
        session_id = db.execute(
            insert(TrainingSession)
            .values(
                title=f"Tập huấn số {i + 1}: kê khai thuế và hóa đơn điện tử cho HTX",
                description="Liên minh HTX tỉnh tổ chức.",
                starts_at=starts,
                ends_at=ends,
                place="Hội trường Liên minh HTX tỉnh",
                province=None if i % 2 else "ha_noi",
                capacity=capacity,
                entries=",".join(entry_ids[i : i + 2]),
                status=status,
                version=version,
                created_by="Cán bộ Liên minh 1",
                created_at=starts - dt.timedelta(days=20),
                updated_at=starts - dt.timedelta(days=10),
            )
            .returning(TrainingSession.id)
        ).scalar_one()
        seats = int(capacity * rng.uniform(0.5, 1.0))
        block = {**params, "sid": session_id, "start": (i * 7717) % (MEMBERS - seats)}
        db.execute(
            text("""
            INSERT INTO training_registrations (session_id, member_id, created_at)
            SELECT :sid, m.id, CAST(:at AS timestamptz) FROM members AS m
            WHERE m.id >= :first + :start AND m.id < :first + :start + :seats
            """),
            {**block, "seats": seats, "at": starts - dt.timedelta(days=5)},
        )
        messages: list[tuple[str, str, str, dt.datetime, dt.datetime]] = []
        if status == "scheduled":
            messages += [
                ("session", starts.isoformat(), slot, starts - before, starts)
                for slot, before in (("1d", dt.timedelta(days=1)), ("1h", dt.timedelta(hours=1)))
            ]
            after = ends + dt.timedelta(hours=1)
            messages.append(("session_after", "entries", "1h", after, after + dt.timedelta(days=1)))
        if version == 2:
            slot = "cancelled" if status == "cancelled" else "changed"
            at = starts - dt.timedelta(days=3)
            messages.append(("session_change", "2", slot, at, at + dt.timedelta(days=2)))
        for kind, occurrence, slot, send_at, expires_at in messages:
            db.execute(
                text("""
                INSERT INTO outbox (member_id, kind, ref, occurrence, slot, send_at, expires_at,
                    status, attempts, created_at, sent_at)
                SELECT r.member_id, :kind, CAST(:sid AS varchar), :occurrence, :slot, :send_at,
                    :expires_at, st.status, CASE WHEN st.status = 'pending' THEN 0 ELSE 1 END,
                    CAST(:send_at AS timestamptz) - interval '5 days',
                    CASE WHEN st.status IN ('sent', 'unknown')
                         THEN CAST(:send_at AS timestamptz) END
                FROM training_registrations AS r
                JOIN members AS m ON m.id = r.member_id
                CROSS JOIN LATERAL (SELECT random() AS r) AS x
                CROSS JOIN LATERAL (
                    SELECT CASE WHEN CAST(:send_at AS timestamptz) >= :now THEN 'pending'
                                WHEN m.channel = 'zalo' AND x.r < 0.1 THEN 'unknown'
                                WHEN x.r < 0.95 THEN 'sent' ELSE 'dropped' END AS status
                ) AS st
                WHERE r.session_id = :sid
                """),
                {
                    **block,
                    "kind": kind,
                    "occurrence": occurrence,
                    "slot": slot,
                    "send_at": send_at,
                    "expires_at": expires_at,
                },
            )


# Review questions: topics and phrasings members use, so that similar questions group
# (as in the live queue) while a share of one-off questions stays apart.
_TOPICS = (
    "thuế môn bài", "hóa đơn điện tử", "vay vốn ưu đãi", "quỹ hỗ trợ phát triển HTX",
    "đăng ký thành viên mới", "rút vốn góp", "chia lãi theo vốn góp", "đại hội thành viên",
    "báo cáo tài chính năm", "thuế thu nhập doanh nghiệp", "thuế giá trị gia tăng",
    "bảo hiểm xã hội cho người lao động", "con dấu của HTX", "đổi tên HTX", "giải thể HTX",
    "sáp nhập HTX", "liên hiệp HTX", "tổ hợp tác", "hợp đồng hợp tác", "kiểm toán HTX",
    "giám đốc HTX", "hội đồng quản trị", "ban kiểm soát", "điều lệ HTX", "vốn điều lệ",
    "tài sản không chia", "đất đai của HTX", "chứng nhận VietGAP", "sản phẩm OCOP",
    "xuất khẩu nông sản", "chuyển đổi số", "chữ ký số", "cổng dịch vụ công", "mã số thuế",
    "tài khoản ngân hàng", "kế toán HTX", "lương của giám đốc", "phụ cấp thành viên",
    "hỗ trợ đào tạo", "tập huấn kế toán", "đăng ký kinh doanh", "thay đổi địa chỉ trụ sở",
    "thành viên liên kết", "quyền biểu quyết", "khai trừ thành viên", "tranh chấp nội bộ",
    "hỗ trợ giống cây trồng", "bảo hiểm nông nghiệp", "tín dụng nội bộ", "quỹ tín dụng nhân dân",
)  # fmt: skip
_FRAMES = (
    "{t} là gì", "thủ tục {t} như thế nào", "hồ sơ {t} gồm những gì", "{t} nộp ở đâu",
    "hạn {t} là khi nào", "{t} mất bao lâu", "chi phí {t} bao nhiêu", "ai được {t}",
    "điều kiện {t} ra sao", "mẫu đơn {t} lấy ở đâu",
)  # fmt: skip
_OPENERS = ("", "", "cho em hỏi ", "ad ơi ", "mình muốn hỏi ", "xin hỏi ", "chị ơi cho hỏi ")
_CLOSERS = ("", "", " ạ", " vậy", " nhé", " với ạ", "?", " ạ?")
_WORDS = (
    "năm nay xã huyện tỉnh mới cũ thôn ấp hợp tác trồng lúa nuôi cá chăn nuôi rau sạch mía "
    "điều cà phê hồ tiêu gạo tôm mắm muối nấm mật ong giấy tờ sổ đỏ biên bản cuộc họp nghị quyết "
    "kho lạnh máy sấy xe tải nhà xưởng cửa hàng chợ phiên hội chợ điện nước internet phần mềm"
)  # words of one-off questions, space-separated
_REASONS = ("low_confidence", "out_of_scope", "unsure", "thumbs_down", "nlu_unavailable")


def _review_text(rng: random.Random) -> str:
    if rng.random() < 0.25:  # a one-off question
        return " ".join(rng.sample(_WORDS.split(), rng.randint(4, 9))) + f" {rng.randint(1, 999)}?"
    topic = rng.choice(_TOPICS[: 10 + int(40 * rng.random() ** 0.5)])
    return rng.choice(_OPENERS) + rng.choice(_FRAMES).format(t=topic) + rng.choice(_CLOSERS)


def _review_questions(db: Connection, params: dict[str, Any], rng: random.Random) -> None:
    now: dt.datetime = params["now"]
    intents = sorted(load_examples(TRAIN_DIR))
    rows = []
    for i in range(OPEN_REVIEW + DECIDED_REVIEW):
        decided = i < DECIDED_REVIEW  # the older ones were already decided
        candidates = [[rng.choice(intents), round(rng.uniform(0.1, 0.6), 4)] for _ in range(3)]
        rows.append(
            {
                "created_at": now
                - dt.timedelta(days=60 * (1 - i / (OPEN_REVIEW + DECIDED_REVIEW))),
                "channel": rng.choice(("telegram", "telegram", "zalo", "web")),
                "text": _review_text(rng),
                "reason": rng.choice(_REASONS),
                "intent": candidates[0][0],
                "confidence": candidates[0][1],
                "status": rng.choice(("labelled", "irrelevant", "new_entry"))
                if decided
                else "open",
                "member_id": params["first"] + rng.randrange(MEMBERS),
                "candidates": json.dumps(candidates),
                "label": candidates[0][0] if decided else None,
                "labelled_by": "Quản trị viên 1 (#100001, web)" if decided else None,
                "labelled_at": now - dt.timedelta(days=1) if decided else None,
            }
        )
    db.execute(insert(ReviewQuestion), rows)


def _models(db: Connection, now: dt.datetime) -> None:
    rows = []
    for i in range(1, 7):
        accuracy = 0.84 + 0.015 * i
        at = now - dt.timedelta(days=14 * (7 - i))
        rows.append(
            {
                "version": f"v{i}",
                "file": f"nlu-v{i}.tar.gz",
                "data_hash": f"{i:064x}",
                "examples": 2400 + 150 * i,
                "reviewed_examples": 40 * (i - 1),
                "status": "deployed" if i == 6 else "retired",
                "metrics": json.dumps(
                    {
                        "heldout": {"accuracy": accuracy, "macro_f1": accuracy - 0.05},
                        "reviewed": {"accuracy": accuracy - 0.02, "n": 40 * (i - 1)},
                    }
                ),
                "decision": "tốt hơn mô hình đang dùng",
                "train_seconds": 300.0 + 10 * i,
                "created_by": "Quản trị viên 1 (#100001, web)",
                "created_at": at,
                "deployed_by": "Quản trị viên 1 (#100001, web)",
                "deployed_at": at + dt.timedelta(minutes=10),
            }
        )
    db.execute(insert(NLUModel), rows)


# -- serving and measuring ------------------------------------------------------------------


class Timer:
    """ASGI wrapper: each request's time from arrival to the last body chunk handed on (ms)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.times: deque[tuple[str, float]] = deque()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        target = scope.get("path", "") + (
            "?" + scope["query_string"].decode() if scope.get("query_string") else ""
        )

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # Recorded before the last chunk goes out: the client cannot be faster.
                self.times.append((target, (time.perf_counter() - started) * 1000))
            await send(message)

        await self.app(scope, receive, timed)


@dataclass
class Figures:
    """One URL's samples."""

    url: str
    server: list[float] = field(default_factory=list)
    round_trip: list[float] = field(default_factory=list)
    size: int = 0
    first: float = 0.0  # the first request's server time, before the warm-up


def page_urls(province: str) -> list[str]:
    """Every page for each of its periods, and with the province filter where it has one."""
    urls = []
    for page in PAGES:
        periods: tuple[int | None, ...] = PERIODS if page.period else (None,)
        for days in periods:
            params: dict[str, Any] = {} if days is None else {"days": days}
            urls.append(_url(page, params))
            if page.province:
                urls.append(_url(page, {**params, "province": province}))
    return urls


def _url(page: Page, params: dict[str, Any]) -> str:
    return page.path + ("?" + urlencode(params) if params else "")


def csv_urls(client: httpx.Client) -> list[str]:
    """The CSV links of every page at 90 days (the widest window), in page order."""
    found: list[str] = []
    for page in PAGES:
        response = client.get(_url(page, {"days": 90} if page.period else {}))
        response.raise_for_status()
        links = re.findall(r'href="(/admin/csv/[^"]+)"', response.text)
        if not links:
            raise SystemExit(f"{page.path}: no CSV link found")
        found += [html.unescape(link).rstrip("?") for link in dict.fromkeys(links)]
    return found


def measure(client: httpx.Client, timer: Timer, url: str, requests: int) -> Figures:
    """``WARM_UP`` requests, then ``requests`` timed ones, one at a time; each must be 200."""
    figures = Figures(url)
    for index in range(WARM_UP + requests):
        timer.times.clear()
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}\n{response.text[:2000]}")
        target, server_ms = timer.times.popleft()
        if target != url:
            raise SystemExit(f"timed {target}, expected {url}")
        if index == 0:
            figures.first = server_ms
        if index >= WARM_UP:
            figures.server.append(server_ms)
            figures.round_trip.append(elapsed)
            figures.size = len(response.content)
    return figures


def login(base_url: str, engine: Engine, clock: Any, user: str) -> str:
    """The session cookie of a staff member or admin logged in through the login link."""
    with engine.connect() as connection:
        member_id = connection.scalar(
            text("SELECT id FROM members WHERE external_id = :u"), {"u": user}
        )
    token = AdminSessionStore(engine, clock).issue_token(int(member_id or 0))
    with httpx.Client(base_url=base_url) as client:
        response = client.get("/admin/login", params={"token": token})
        response.raise_for_status()
        cookie = client.cookies.get(COOKIE)
    if not cookie:
        raise SystemExit(f"no {COOKIE} cookie after the login of {user}")
    return cookie


def empty_rollups(engine: Engine) -> list[str]:
    """Empties the dashboard's rollups (counted on first need), so every run starts cold."""
    emptied = []
    with engine.begin() as connection:
        for table in ("usage_days", "usage_days_settled", "entry_days", "broadcast_tallies"):
            if connection.scalar(text("SELECT to_regclass(:t)"), {"t": table}) is not None:
                connection.execute(text(f"TRUNCATE {table}"))
                emptied.append(table)
    return emptied


def set_role(engine: Engine, user: str, role: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE members SET role = :r WHERE external_id = :u"), {"r": role, "u": user}
        )


def refused(client: httpx.Client, urls: list[str], cookie: str | None) -> tuple[int, list[str]]:
    """Each URL with ``cookie`` (None: none): how many answered 403, and the other answers."""
    count, other = 0, []
    for url in urls:
        client.cookies.clear()
        headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie is not None else {}
        response = client.get(url, headers=headers)
        if response.status_code == 403:
            count += 1
        else:
            other.append(f"{url}: HTTP {response.status_code}")
    return count, other


def _row(figures: Figures) -> str:
    server, trip = figures.server, figures.round_trip
    p99 = percentile(server, 99)
    flag = "" if p99 <= TARGET_P99_MS else "  > target"
    return (
        f"{figures.url:<52} {figures.first:7.1f}  "
        f"{percentile(server, 50):7.1f} {p99:7.1f} {max(server):7.1f}   "
        f"{percentile(trip, 50):7.1f} {percentile(trip, 99):7.1f}  {figures.size / 1024:7.1f}{flag}"
    )


def _table(title: str, rows: list[Figures]) -> None:
    print(f"\n{title}")
    print(
        f"{'path':<52} {'server ms':>7}  {'server ms':^23}   {'round trip ms':^15}  {'size':>7}\n"
        f"{'':<52} {'first':>7}  {'p50':>7} {'p99':>7} {'max':>7}   {'p50':>7} {'p99':>7}  "
        f"{'KiB':>7}"
    )
    for figures in rows:
        print(_row(figures))


def _worst(label: str, rows: list[Figures]) -> bool:
    worst = max(rows, key=lambda f: percentile(f.server, 99))
    p99 = percentile(worst.server, 99)
    verdict = "met" if p99 <= TARGET_P99_MS else "MISSED"
    target = f"target <= {TARGET_P99_MS:.0f} ms"
    print(f"worst {label} p99: {p99:.1f} ms ({worst.url})  {target}: {verdict}")
    return p99 <= TARGET_P99_MS


def run(engine: Engine, now: dt.datetime, requests: int) -> None:
    """Serves the dashboard, measures every page and CSV, checks the refusals."""
    clock = lambda: now  # noqa: E731 - the seed's moment: the same windows every run
    kb = load_knowledge_base()
    options = load_profile_options()
    outbox = Outbox(engine, clock)
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        models = Path(folder)
        for i in range(1, 7):  # the registry offers a rollback only to a file on disk
            (models / f"nlu-v{i}.tar.gz").touch()
        queue = ReviewQueue(engine, models / "reviewed.yml", load_examples(TRAIN_DIR).keys())
        board = Dashboard(
            engine=engine,
            kb=kb,
            options=options,
            registry=ModelRegistry(engine, models),
            broadcasts=BroadcastStore(engine, outbox, clock),
            training=TrainingStore(engine, outbox, clock),
            review=ReviewChat(queue, kb),
            rules=tuple(load_rules()),
            clock=clock,
        )
        timer = Timer(admin_app(board))
        with engine.connect() as connection:
            province = connection.scalar(
                text(
                    "SELECT province FROM members WHERE province IS NOT NULL AND active "
                    "GROUP BY province ORDER BY count(*) DESC LIMIT 1"
                )
            )
        for user, role in LOGINS:
            set_role(engine, user, role)
        emptied_rollups = empty_rollups(engine)
        with serve_app(timer) as base_url:
            cookies = {user: login(base_url, engine, clock, user) for user, _ in LOGINS}
            set_role(engine, "bench-demoted", "member")
            with httpx.Client(base_url=base_url, timeout=120) as client:
                client.cookies.set(COOKIE, cookies["bench-admin"], path="/admin")
                pages = page_urls(str(province))
                print(
                    f"\n{len(pages)} page URLs (the province filter: {province}, the most "
                    f"populous), then every CSV table; each URL: {WARM_UP} warm-up + "
                    f"{requests} requests, one at a time, as an admin"
                )
                if emptied_rollups:
                    print(
                        f"rollups emptied ({', '.join(emptied_rollups)}): a URL's first request "
                        "(column 'first') counts the days and broadcasts it is the first to need"
                    )
                page_figures = [measure(client, timer, url, requests) for url in pages]
                csvs = csv_urls(client)  # after the pages: their first requests stay cold
                csv_figures = [measure(client, timer, url, requests) for url in csvs]
            _table(
                "pages (server: arrival to the body's last byte; round trip: httpx)", page_figures
            )
            _table("CSV downloads", csv_figures)
            print()
            met = _worst("page", page_figures)
            met &= _worst("CSV", csv_figures)
            everything = [f.server for f in page_figures + csv_figures]
            print(
                f"all {sum(len(s) for s in everything):,} timed requests: "
                f"{describe([x for s in everything for x in s])}"
            )
            try:
                _access(base_url, pages + csvs, cookies)
            finally:
                set_role(engine, "bench-demoted", "staff")
        if not met:
            print(
                "\nsome pages missed the target: see the findings (EXPLAIN ANALYZE) in the report"
            )


def _access(base_url: str, urls: list[str], cookies: dict[str, str]) -> None:
    admin_only = [
        url
        for url in urls
        for page in PAGES
        if "staff" not in page.roles
        and (url.split("?")[0] == page.path or url.startswith(f"/admin/csv/{page.name}/"))
    ]
    session_id = cookies["bench-admin"].split(".")[0]
    forged = f"{session_id}.{'0' * 64}"
    checks = [
        ("no cookie", urls, None),
        ("forged cookie (an admin's session id, wrong signature)", urls, forged),
        ("the session of a member whose staff role was taken away", urls, cookies["bench-demoted"]),
        ("a staff member's session, admin-only pages and CSVs", admin_only, cookies["bench-staff"]),
    ]
    print("\naccess (each must answer 403):")
    total = reached = 0
    problems: list[str] = []
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for label, targets, cookie in checks:
            count, other = refused(client, targets, cookie)
            total += len(targets)
            reached += len(targets) - count
            problems += other
            print(f"  {label:<58} {count:>3} of {len(targets):>3} refused (403)")
        staff_pages = [u for u in urls if u not in admin_only]
        allowed, answers = 0, []
        for url in staff_pages:
            client.cookies.clear()
            response = client.get(url, headers={"Cookie": f"{COOKIE}={cookies['bench-staff']}"})
            allowed += response.status_code == 200
            if response.status_code != 200:
                answers.append(f"{url}: HTTP {response.status_code}")
        print(f"  {'a staff member on the staff pages and CSVs':<58} "
              f"{allowed:>3} of {len(staff_pages):>3} answered 200")  # fmt: skip
        for answer in answers:
            # /admin/csv/topics/unanswered.csv: the table is built for admins only (404).
            print(f"    {answer}")
    print(
        f"{reached} of {total} pages/CSVs reachable without a valid session of the right role "
        f"({len(urls)} URLs x 3 credentials + {len(admin_only)} admin-only x a staff session)"
    )
    for problem in problems:
        print(f"  NOT REFUSED: {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="timed requests per URL")
    parser.add_argument("--reseed", action="store_true", help="rebuild the seeded database")
    args = parser.parse_args()
    logging.getLogger("bot.web.admin").setLevel(logging.ERROR)  # the refusals checked below
    # A run takes minutes: show each line as it comes, also when the output is a file.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print(f"machine: {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    try:
        database = bench_database()
        engine = database.__enter__()
    except OperationalError as exc:
        print(
            f"bench-dashboard: skipped, no PostgreSQL server answers at {PG_ADMIN_URL}: {exc.orig}"
        )
        return
    try:
        with engine.connect() as connection:
            version = connection.scalar(text("SHOW server_version"))
            settings = {
                name: connection.scalar(text(f"SHOW {name}"))
                for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit")
            }
        print(f"PostgreSQL {version}, database {BENCH_DB} on 127.0.0.1:5432")
        print("  " + ", ".join(f"{name} {value}" for name, value in settings.items()))
        upgrade_db(engine)
        now = None if args.reseed else seeded_at(engine)
        if now is None:
            # Not seeded yet, an older or partial seed, or --reseed: from an empty database.
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            print("seeding ...")
            began = time.perf_counter()
            emptied(engine)
            seed(engine, now)
            print(f"seeded in {time.perf_counter() - began:.1f} s")
        else:
            print(f"seeded data of {now.isoformat()} reused (--reseed to rebuild)")
        with engine.connect() as connection:
            counts = counted(connection)
            size = connection.scalar(text("SELECT pg_database_size(current_database())"))
        print("rows: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))
        print(f"database size: {int(size or 0) / 2**20:,.0f} MiB")
        run(engine, now, args.requests)
    finally:
        database.__exit__(None, None, None)


if __name__ == "__main__":
    main()
