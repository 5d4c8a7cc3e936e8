"""`coopbot review ...` and `coopbot nlu retrain|models|rollback` as an admin types them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu_model.review_queue import ReviewLog
from bot.store.db import create_db_engine, upgrade_db
from nlu.build import fingerprint
from nlu.reviewed import load_reviewed
from tests.processes import coopbot


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    models = tmp_path / "models"
    models.mkdir()
    return {"MODEL_DIR": str(models), "REVIEWED_DATA": str(tmp_path / "reviewed.yml")}


def questions(tmp_path: Path, *texts: str) -> list[int]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade_db(engine)
    log = ReviewLog(engine)
    ids = []
    for text in texts:
        ids.append(log.record(channel="zalo", text=text, reason="thumbs_down",
                              intent="giai_the_htx", confidence=0.4,
                              candidates=[("giai_the_htx", 0.4)]))  # fmt: skip
    engine.dispose()
    return ids


def test_list_show_label_and_skip(tmp_path, env):
    assert coopbot(tmp_path, "review", "list", env=env).stdout.strip() == (
        "Không có câu hỏi nào cần xem xét."
    )
    first, _, lone = questions(
        tmp_path, "thủ tục đóng cửa htx", "thu tuc dong cua HTX the nao", "liên hệ 0912345678"
    )
    listed = coopbot(tmp_path, "review", "list", env=env)
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0] == "2 nhóm, 3 câu hỏi chờ xem xét:"
    assert f"#{first:<6} ×2    «thủ tục đóng cửa htx»" in listed.stdout
    assert "lý do: bị 👎 ×2; gợi ý: giai_the_htx 40%" in listed.stdout
    assert "«liên hệ [SĐT]»" in listed.stdout and "0912345678" not in listed.stdout
    shown = coopbot(tmp_path, "review", "show", str(first), env=env)
    assert "  • thu tuc dong cua HTX the nao" in shown.stdout

    for args, code, message in [
        (["label", str(first), "khong_co_y_dinh"], 2, "Không có ý định 'khong_co_y_dinh'"),
        (["label", "999", "giai_the_htx"], 1, "Không có nhóm #999"),
        (["label", str(first)], 2, "Cần đúng một trong"),
        (["label", str(first), "giai_the_htx", "--new-entry"], 2, "Cần đúng một trong"),
    ]:
        result = coopbot(tmp_path, "review", *args, env=env)
        assert (result.returncode, message in result.stderr) == (code, True), result.stderr
    assert not Path(env["REVIEWED_DATA"]).exists()

    labelled = coopbot(tmp_path, "review", "label", str(first), "giai_the_htx", "--by", "Lan",
                       env=env)  # fmt: skip
    assert labelled.returncode == 0
    assert "Đã gán 2 câu của nhóm" in labelled.stdout
    examples = load_reviewed(Path(env["REVIEWED_DATA"]))
    assert {(e.intent, e.labelled_by) for e in examples} == {("giai_the_htx", "Lan")}
    skipped = coopbot(tmp_path, "review", "skip", str(lone), env=env)
    assert skipped.stdout.strip() == f"Đã bỏ qua 1 câu của nhóm #{lone}."
    assert "Không có câu hỏi" in coopbot(tmp_path, "review", "list", env=env).stdout
    assert "[đã bỏ qua]" in coopbot(tmp_path, "review", "list", "--all", env=env).stdout
    marked = coopbot(tmp_path, "review", "label", str(lone), "--new-entry", env=env)
    assert "cần mục mới" in marked.stdout
    needed = coopbot(tmp_path, "review", "list", "--status", "new_entry", env=env)
    first_line = needed.stdout.splitlines()[0]
    assert first_line == "Cần thêm mục mới vào cơ sở tri thức: 1 nhóm, 1 câu hỏi:"
    assert "«liên hệ [SĐT]»" in needed.stdout
    none = coopbot(tmp_path, "review", "list", "--status", "irrelevant", env=env)
    assert none.stdout.strip() == "Không liên quan: không có câu nào."
    bad = coopbot(tmp_path, "review", "list", "--status", "open", env=env)
    assert bad.returncode == 2


def test_retrain_with_nothing_new_trains_nothing_and_rollback_needs_a_model(tmp_path, env):
    assert "Chưa có mô hình nào" in coopbot(tmp_path, "nlu", "models", env=env).stdout
    rollback = coopbot(tmp_path, "nlu", "rollback", env=env)
    assert rollback.returncode == 1 and "Không có mô hình trước đó" in rollback.stderr
    # A model of the current data (its content is never read on this path).
    model = Path(env["MODEL_DIR"]) / f"nlu-{fingerprint(reviewed=None)}.tar.gz"
    model.write_bytes(b"model")
    result = coopbot(tmp_path, "nlu", "retrain", env=env)
    assert result.returncode == 0, result.stderr
    assert "Dữ liệu huấn luyện không đổi từ mô hình v1 đang dùng" in result.stdout
    models = coopbot(tmp_path, "nlu", "models", env=env)
    assert f"*v1   deployed     {fingerprint(reviewed=None)}" in models.stdout
