"""The dashboard's hand-counted fixture, shared by its page tests and its browser test.

The clock stands at 03/11/2026 23:45 Vietnam time, so the 7-day window is
[28/10 00:00, now); the comments give what each row counts towards.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.handlers.review import ReviewChat
from bot.nlu_model.registry import ModelRegistry
from bot.nlu_model.review_queue import ReviewQueue
from bot.profile import load_profile_options
from bot.store.broadcasts import BroadcastStore
from bot.store.db import (
    Broadcast,
    Handover,
    Member,
    MessageLog,
    NLUModel,
    OutboxMessage,
    ReviewQuestion,
    TrainingRegistration,
    TrainingSession,
)
from bot.store.outbox import Outbox
from bot.store.training import TrainingStore
from bot.web.dashboard import Dashboard
from knowledge.base import load_knowledge_base

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 3, 16, 45, tzinfo=UTC)  # 03/11/2026 23:45 in Vietnam
KB = load_knowledge_base()
OPTIONS = load_profile_options()
E1, E2, E3 = "so_thanh_vien_toi_thieu", "von_gop_toi_da", "htx_la_gi"  # E1, E3: thanh_vien


def utc(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def seed(engine: Engine, model_dir: Path) -> dict[str, int]:
    """The hand-counted fixture; returns member ids by name."""
    people = {
        "lan": Member(channel="telegram", external_id="lan", chat_id="lan", role="admin",
                      display_name="Lan", province="hue", coop_type="htx_nong_nghiep",
                      created_at=utc(9, 1, 1)),
        "minh": Member(channel="zalo", external_id="minh", chat_id="minh", role="staff",
                       display_name="Minh", province="ha_noi", created_at=utc(9, 1, 1)),
        "m1": Member(channel="telegram", external_id="1", chat_id="1", province="ha_noi",
                     coop_type="htx_nong_nghiep", created_at=utc(10, 29, 3),
                     last_seen_at=utc(11, 3, 5)),
        "m2": Member(channel="zalo", external_id="2", chat_id="2", province="can_tho",
                     coop_type="htx_van_tai", created_at=utc(11, 2, 10),
                     last_seen_at=utc(11, 3, 16, 44)),
        "m3": Member(channel="web", external_id="3", chat_id="3", created_at=utc(10, 10, 1),
                     last_seen_at=utc(11, 3, 4)),
        "m4": Member(channel="telegram", external_id="4", chat_id="4", province="ha_noi",
                     active=False, created_at=utc(11, 1, 3), last_seen_at=utc(10, 20, 1)),
    }  # fmt: skip
    with Session(engine) as session, session.begin():
        session.add_all(people.values())
        session.flush()
        ids = {name: m.id for name, m in people.items()}
        channel = {m.id: m.channel for m in people.values()}
        messages = [  # (member, kind, entry, feedback, created_at)
            ("m1", "entry", E1, "up", utc(10, 27, 16, 59)),  # 27/10 23:59: before the window
            ("m1", "entry", E1, "up", utc(10, 28, 2)),  # 28/10
            ("m1", "suggested", E2, "down", utc(10, 30, 5)),  # 30/10
            ("m2", "entry", E2, None, utc(11, 1, 18)),  # 02/11 01:00 in Vietnam
            ("m2", "fallback", None, None, utc(11, 2, 4)),  # 02/11
            ("m3", "clause", None, None, utc(11, 3, 3)),  # 03/11, web
            ("m3", "entry", E3, "up", utc(11, 3, 4)),  # 03/11, web
            ("m1", "browse", E1, "up", utc(11, 3, 5)),  # opened from the menu: no question
            ("m2", "out_of_scope", None, None, utc(11, 3, 16, 44)),  # 03/11 23:44
            ("m1", "entry", E1, None, utc(11, 3, 16, 50)),  # after now
        ]
        session.add_all(
            MessageLog(member_id=ids[who], channel=channel[ids[who]], text="?", kind=kind,
                       entry_id=entry, feedback=feedback, created_at=at,
                       fallback=kind in ("fallback", "out_of_scope"))
            for who, kind, entry, feedback, at in messages
        )  # fmt: skip
        session.add_all([
            Handover(member_id=ids["m2"], question="?", created_at=utc(11, 2, 6)),
            Handover(member_id=ids["m1"], question="?", created_at=utc(10, 20, 6)),  # before
        ])  # fmt: skip
        session.add_all([
            Broadcast(id=1, text="a", segment='{"province": ["ha_noi"]}', recipients=3,
                      status="sending", created_at=utc(11, 2, 1)),
            Broadcast(id=2, text="b", segment="{}", recipients=1, status="done",
                      created_at=utc(10, 1, 1)),  # before the window
            Broadcast(id=3, text="c", segment="{}", recipients=0, status="done",
                      created_at=utc(11, 3, 1)),
        ])  # fmt: skip
        training = TrainingSession(
            title="Tập huấn Luật HTX", description="", starts_at=utc(11, 10, 1),
            ends_at=utc(11, 10, 4), place="Huế", capacity=30, status="scheduled", version=1,
            created_at=utc(10, 1, 1), updated_at=utc(10, 1, 1),
        )  # fmt: skip
        session.add(training)
        session.flush()
        session.add_all(
            TrainingRegistration(session_id=training.id, member_id=ids[who]) for who in ("m1", "m2")
        )
        outbox = [  # (member, kind, ref, status, queued/due at, sent at)
            ("m1", "broadcast", "1", "sent", utc(11, 2, 1), utc(11, 2, 1, 5)),
            ("m2", "broadcast", "1", "blocked", utc(11, 2, 1), None),
            ("m3", "broadcast", "1", "pending", utc(11, 2, 1), None),
            ("m1", "broadcast", "2", "sent", utc(10, 1, 1), utc(10, 1, 1)),
            ("m1", "deadline", "vat_monthly", "sent", utc(11, 2, 1), utc(11, 2, 1)),
            ("m2", "deadline", "vat_monthly", "unknown", utc(11, 2, 1), None),
            ("m3", "deadline", "vat_monthly", "dropped", utc(11, 2, 1), None),
            ("m1", "deadline", "vat_old", "sent", utc(10, 20, 1), utc(10, 20, 1)),  # before
            ("m1", "session", str(training.id), "sent", utc(11, 3, 2), utc(11, 3, 2)),
        ]
        session.add_all(
            OutboxMessage(member_id=ids[who], kind=kind, ref=ref, occurrence="o", slot="s",
                          status=status, send_at=at, expires_at=at + dt.timedelta(days=1),
                          created_at=at, sent_at=sent)
            for who, kind, ref, status, at, sent in outbox
        )  # fmt: skip
        review = [  # two alike (one group), one apart
            ("htx tôi muốn vay vốn ngân hàng", utc(11, 1, 1)),
            ("htx muốn vay vốn ngân hàng thế nào", utc(11, 2, 1)),
            ("giá lúa hôm nay bao nhiêu", utc(11, 3, 1)),
        ]
        session.add_all(
            ReviewQuestion(channel="telegram", text=text, reason="low_confidence",
                           member_id=ids["m1"], created_at=at)
            for text, at in review
        )  # fmt: skip
        heldout = {"heldout": {"accuracy": 0.9, "macro_f1": 0.85}}
        session.add_all([
            NLUModel(version="v1", file="v1.tar.gz", status="retired", created_by="khởi động",
                     metrics=json.dumps(heldout), created_at=utc(10, 1, 1),
                     deployed_by="khởi động", deployed_at=utc(10, 1, 1)),
            NLUModel(version="v2", file="v2.tar.gz", status="deployed", created_by="Lan",
                     metrics=json.dumps({"heldout": {"accuracy": 0.92, "macro_f1": 0.88}}),
                     created_at=utc(11, 1, 1), deployed_by="Lan", deployed_at=utc(11, 1, 2)),
        ])  # fmt: skip
    for name in ("v1.tar.gz", "v2.tar.gz"):
        (model_dir / name).write_bytes(b"model")
    return ids


def board_of(engine: Engine, tmp_path: Path) -> Dashboard:
    outbox = Outbox(engine)
    queue = ReviewQueue(engine, tmp_path / "reviewed.yml", [E1, E2, E3])
    return Dashboard(
        engine=engine,
        kb=KB,
        options=OPTIONS,
        registry=ModelRegistry(engine, tmp_path),
        broadcasts=BroadcastStore(engine, outbox, lambda: NOW),
        training=TrainingStore(engine, outbox, lambda: NOW),
        review=ReviewChat(queue, KB),
        clock=lambda: NOW,
    )
