"""`coopbot training ...` and `coopbot reminders ...` as processes, on a SQLite file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.store.db import OutboxMessage, TrainingSession, create_db_engine, upgrade_db
from bot.store.members import MemberStore
from bot.store.outbox import Outbox
from bot.store.training import TrainingStore
from tests.processes import coopbot

HOSTILE = 'Nguyễn "A", HTX\nB <b>'


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return coopbot(tmp_path, *args, stdin=stdin)


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade_db(engine)
    yield engine
    engine.dispose()


def sessions(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(TrainingSession).order_by(TrainingSession.id)))


def add(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(
        tmp_path,
        "training",
        "add",
        "--title",
        "Chuyển đổi số cho HTX",
        "--start",
        "15/01/2030 08:00",
        "--end",
        "11:00",
        "--place",
        "Hội trường Liên minh HTX tỉnh",
        "--capacity",
        "30",
        *extra,
    )


def test_add_list_edit_cancel(tmp_path, engine):
    created = add(tmp_path, "--province", "Hà Nội", "--description", "Kê khai thuế điện tử")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("Đã tạo buổi tập huấn #1")
    assert "🕗 08:00 Thứ Ba 15/01/2030 – 11:00 15/01/2030" in created.stdout
    assert "Dành cho: Hà Nội" in created.stdout
    (row,) = sessions(engine)
    assert row.starts_at == dt.datetime(2030, 1, 15, 1, 0)  # stored in UTC
    assert row.ends_at == dt.datetime(2030, 1, 15, 4, 0)
    assert row.province == "ha_noi" and row.capacity == 30 and row.created_by == "cli"

    listed = run(tmp_path, "training", "list")
    assert listed.returncode == 0
    assert "#1" in listed.stdout and "15/01/2030 08:00–11:00" in listed.stdout
    assert "0/30" in listed.stdout

    member = MemberStore(engine).touch("telegram", "42", "42", "Lan")
    store = TrainingStore(engine, Outbox(engine))
    store.register(1, member.id)
    edited = run(tmp_path, "training", "edit", "1", "--start", "16/01/2030 08:30", "--end", "11:30")
    assert edited.returncode == 0, edited.stderr
    assert "1 người đã đăng ký sẽ nhận thông báo thay đổi." in edited.stdout
    (row,) = sessions(engine)
    assert row.starts_at == dt.datetime(2030, 1, 16, 1, 30) and row.version == 2
    with engine.connect() as connection:
        kinds = {(r.kind, r.slot, r.status) for r in connection.execute(select(OutboxMessage))}
    assert ("session_change", "changed", "pending") in kinds
    assert ("session", "1d", "dropped") in kinds and ("session", "1d", "pending") in kinds

    refused = run(tmp_path, "training", "cancel", "1", stdin="n\n")
    assert refused.returncode == 1 and sessions(engine)[0].status == "scheduled"
    assert "Không huỷ gì." in refused.stdout and "Aborted" not in refused.stdout + refused.stderr
    cancelled = run(tmp_path, "training", "cancel", "1", "--yes")
    assert cancelled.returncode == 0
    assert "1 người đã đăng ký sẽ nhận thông báo" in cancelled.stdout
    assert sessions(engine)[0].status == "cancelled"
    assert run(tmp_path, "training", "list").stdout.strip() == "Chưa có buổi tập huấn nào."
    assert "đã huỷ" in run(tmp_path, "training", "list", "--all").stdout


def test_attendees_as_csv_quote_hostile_names(tmp_path, engine):
    assert add(tmp_path).returncode == 0
    members = MemberStore(engine)
    store = TrainingStore(engine, Outbox(engine))
    lan = members.touch("telegram", "42", "42", HOSTILE)
    members.update_profile(lan.id, province="hue")
    hung = members.touch("zalo", "abc", "abc", None)
    store.register(1, lan.id)
    store.register(1, hung.id)

    result = run(tmp_path, "training", "attendees", "1", "--csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == [
        "member_id",
        "channel",
        "external_id",
        "display_name",
        "province",
        "coop_type",
        "registered_at",
    ]
    assert [r[:6] for r in rows[1:]] == [
        [str(lan.id), "telegram", "42", HOSTILE, "hue", ""],
        [str(hung.id), "zalo", "abc", "", "", ""],
    ]
    assert all(len(r[6]) == 16 and r[6][2] == "/" for r in rows[1:])
    table = run(tmp_path, "training", "attendees", "1")
    assert "2/30 người đăng ký" in table.stdout and 'Nguyễn "A", HTX B <b>' in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--end", "07:00"), "giờ kết thúc phải sau giờ bắt đầu"),
        (("--start", "15/01/2020 08:00", "--end", "15/01/2020 09:00"), "đã qua"),
        (("--start", "hôm qua"), "Thời gian không hợp lệ"),
        (("--province", "Atlantis"), "Tỉnh không có trong danh sách"),
        (("--place", ""), "cần địa điểm hoặc đường dẫn"),
        (("--link", "javascript:alert(1)"), "http:// hoặc https://"),
    ],
)
def test_bad_input_is_refused_in_vietnamese_without_a_traceback(tmp_path, engine, args, message):
    result = add(tmp_path, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert sessions(engine) == []


def test_entries_are_attached_on_add_and_edit_and_unknown_ones_refused(tmp_path, engine):
    created = add(tmp_path, "--entries", "han_khai_thue_quy,hoa_don_dien_tu")
    assert created.returncode == 0, created.stderr
    assert "han_khai_thue_quy, hoa_don_dien_tu" in created.stdout
    assert sessions(engine)[0].entries == "han_khai_thue_quy,hoa_don_dien_tu"

    refused = run(tmp_path, "training", "edit", "1", "--entries", "von_gop_toi_da,khong_co")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "Không có mục hỏi đáp mang mã: khong_co." in refused.stderr
    assert sessions(engine)[0].entries == "han_khai_thue_quy,hoa_don_dien_tu"

    edited = run(tmp_path, "training", "edit", "1", "--entries", "von_gop_toi_da")
    assert edited.returncode == 0, edited.stderr
    (row,) = sessions(engine)
    assert row.entries == "von_gop_toi_da" and row.version == 1  # members are not told
    with engine.connect() as connection:
        assert connection.execute(select(OutboxMessage)).all() == []
    cleared = run(tmp_path, "training", "edit", "1", "--entries", "")
    assert cleared.returncode == 0 and sessions(engine)[0].entries == ""
    bad = add(tmp_path, "--entries", "khong_co")
    assert bad.returncode == 1 and "khong_co" in bad.stderr and len(sessions(engine)) == 1


@pytest.mark.parametrize("command", ["edit", "cancel", "attendees"])
def test_unknown_session(tmp_path, engine, command):
    extra = ["--yes"] if command == "cancel" else []
    result = run(tmp_path, "training", command, "99", *extra)
    assert result.returncode == 1
    assert "Không có buổi tập huấn #99." in result.stderr


def test_reminders_plan_and_status(tmp_path, engine):
    member = MemberStore(engine).touch("telegram", "42", "42", "Lan")
    from bot.store.subscriptions import SubscriptionStore

    SubscriptionStore(engine).replace(member.id, ("cap_nhat_thong_tin",))
    planned = run(tmp_path, "reminders", "plan")
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.startswith("planned ")
    status = run(tmp_path, "reminders", "status")
    assert status.returncode == 0, status.stderr
    assert re.search(r"planned until +\d\d/\d\d/\d{4} 00:00:00", status.stdout), status.stdout
    assert re.search(r"job plan-deadline-reminders", status.stdout) is None  # no run yet


def test_description_file_must_be_utf8_and_not_doubled(tmp_path, engine):
    latin = tmp_path / "mo_ta.txt"
    latin.write_bytes("Tập huấn".encode("cp1258", errors="replace") + b"\xff\xfe")
    broken = add(tmp_path, "--description-file", str(latin))
    assert broken.returncode == 2 and "không phải văn bản UTF-8" in broken.stderr
    assert "Traceback" not in broken.stderr
    good = tmp_path / "good.txt"
    good.write_text("Mang theo CCCD.", encoding="utf-8")
    both = add(tmp_path, "--description", "x", "--description-file", str(good))
    assert both.returncode == 2 and "Chỉ dùng một trong" in both.stderr
    assert sessions(engine) == []
    assert add(tmp_path, "--description-file", str(good)).returncode == 0
    assert sessions(engine)[0].description == "Mang theo CCCD."
