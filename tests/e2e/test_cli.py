"""The `coopbot ask` command line: its JSON contract, batch mode and self-started NLU service."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cli.ask import read_batch
from bot.nlu_model.service import free_port
from bot.store.db import ReviewQuestion, create_db_engine
from tests.processes import COOPBOT, coopbot

KEYS = {"text", "intent", "confidence", "entry_id", "answer", "sources", "fallback"}


def run_cli(args: list[str], nlu_url: str, tmp_path: Path, timeout: float = 120):
    return coopbot(tmp_path, *args, env={"NLU_URL": nlu_url}, timeout=timeout)


def test_ask_json_contract_for_a_law_question(nlu_url, tmp_path):
    result = run_cli(["ask", "--json", "htx can toi thieu bao nhieu thanh vien"], nlu_url, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data.keys() >= KEYS
    assert data["text"] == "htx can toi thieu bao nhieu thanh vien"
    assert data["entry_id"] == "so_thanh_vien_toi_thieu"
    assert data["intent"] == "so_thanh_vien_toi_thieu"
    assert isinstance(data["confidence"], float) and 0 < data["confidence"] <= 1
    assert data["fallback"] is False
    assert data["sources"] and {"document", "article", "clause_id"} == set(data["sources"][0])
    assert "Luật HTX 2023 (17/2023/QH15)" in data["sources"][0]["document"]
    assert "Căn cứ" in data["answer"]


def test_ask_json_chitchat_and_fallback(nlu_url, tmp_path):
    hello = json.loads(run_cli(["ask", "--json", "xin chào"], nlu_url, tmp_path).stdout)
    assert hello["fallback"] is False and hello["entry_id"] is None and hello["sources"] == []
    weather = json.loads(
        run_cli(["ask", "--json", "ngày mai trời có mưa không"], nlu_url, tmp_path).stdout
    )
    assert weather["fallback"] is True and weather["entry_id"] is None


def test_ask_batch_answers_each_line_in_order(nlu_url, tmp_path):
    questions = [
        "Hạn nộp tờ khai thuế tháng là ngày nào?",
        "",
        "xin chao",
        "vốn góp tối đa của một thành viên",
        "bóng đá tối nay",
    ]
    batch = tmp_path / "questions.txt"
    batch.write_text("\n".join(questions) + "\n", encoding="utf-8")
    result = run_cli(["ask", "--json", "--batch", str(batch)], nlu_url, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == questions
    assert rows[0]["entry_id"] == "han_khai_thue_thang"
    assert rows[3]["entry_id"] == "von_gop_toi_da"
    assert rows[4]["fallback"] is True
    assert all(r.keys() >= KEYS for r in rows)


def _review_rows(tmp_path: Path) -> list[str]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        with Session(engine) as session:
            return list(session.scalars(select(ReviewQuestion.text)))
    finally:
        engine.dispose()


def test_cli_questions_enter_the_review_queue_only_with_review(nlu_url, tmp_path):
    result = run_cli(["ask", "--no-nlu", "bóng đá tối nay"], nlu_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _review_rows(tmp_path) == []
    result = run_cli(["ask", "--no-nlu", "--review", "bóng đá tối nay"], nlu_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _review_rows(tmp_path) == ["bóng đá tối nay"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("htx là gì\n".encode() + b"v\xf4n g\xf3p\n", "questions.txt:2: not UTF-8 text (byte 2"),
        (b"htx\n\n" + b"x" * 9000 + b"\n", "questions.txt:3: line longer than 8192 bytes"),
    ],
)
def test_a_bad_batch_line_is_named_and_nothing_is_answered(tmp_path, content, message):
    batch = tmp_path / "questions.txt"
    batch.write_bytes(content)
    result = coopbot(tmp_path, "ask", "--no-nlu", "--json", "--batch", str(batch))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_batch_lines_keep_blank_lines_and_lose_the_bom_and_carriage_returns(tmp_path):
    batch = tmp_path / "questions.txt"
    batch.write_bytes("\ufeffhtx là gì\r\n\r\nvốn góp\n".encode() + b"x" * 8192)
    assert read_batch(batch) == ["htx là gì", "", "vốn góp", "x" * 8192]


def test_ask_plain_text_shows_basis_and_options(nlu_url, tmp_path):
    result = run_cli(["ask", "Đại hội thành viên thường niên phải họp khi nào?"], nlu_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "04 tháng" in result.stdout
    assert "Căn cứ:" in result.stdout and "[1]" in result.stdout


def test_ask_without_question_is_a_usage_error(nlu_url, tmp_path):
    result = run_cli(["ask"], nlu_url, tmp_path)
    assert result.returncode == 2
    assert "give a question" in result.stderr


def test_ask_starts_its_own_nlu_service_when_none_answers(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_cli(["ask", "--json", "htx là gì"], closed, tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["intent"] is not None  # the classifier answered, not only the search
    assert data["entry_id"] == "htx_la_gi"


@pytest.mark.parametrize(
    "bad", ["NLU_CONFIDENCE_THRESHOLD=2", "LOG_LEVEL=LOUD", "DATABASE_URL=mysql://x"]
)
def test_invalid_settings_fail_clearly(tmp_path, bad):
    key, value = bad.split("=", 1)
    env = {**os.environ, key: value}
    result = subprocess.run(
        [str(COOPBOT), "ask", "--no-nlu", "htx"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "invalid settings" in result.stderr and key.lower() in result.stderr.lower()


def test_nlu_test_reports_accented_and_unaccented_figures(nlu_url, tmp_path):
    result = run_cli(["nlu", "test", "--json"], nlu_url, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"all", "accented", "unaccented"}
    assert report["accented"]["n"] + report["unaccented"]["n"] == report["all"]["n"]
    assert report["all"]["n"] >= 3 * 80
    # A trained model must be far better than chance over ~86 intents.
    assert report["all"]["accuracy"] > 0.8
    assert report["unaccented"]["accuracy"] > 0.75
    assert all(len(pair) == 3 for pair in report["all"]["confused"])


def test_chat_answers_and_follows_a_numbered_choice(nlu_url, tmp_path):
    env = {
        **os.environ,
        "NLU_URL": nlu_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [str(COOPBOT), "chat"],
        input="Đại hội thành viên thường niên họp khi nào?\n2\n99\n/lienhe\n/thoat\n",
        env=env, capture_output=True, text=True, encoding="utf-8", timeout=120,
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    turns = result.stdout.split("Trợ lý: ")
    assert "04 tháng" in turns[1] and "[1] 📜 Nguyên văn" in turns[1]
    # "2" opens the first related entry ("1" is the law verbatim), with its own basis.
    assert "Căn cứ:" in turns[2] and turns[2].split("\n")[0] != turns[1].split("\n")[0]
    assert "Hãy chọn một số từ 1 đến" in turns[3]
    assert "cán bộ" in turns[4]
