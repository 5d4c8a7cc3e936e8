"""The admin's loop end to end, with the real NLU service, real training and a running assistant.

Members ask through the web chat; an admin reviews in chat (/xemxet), retrains in chat
(/huanluyen) and rolls back on the command line; a steady stream of other members'
questions runs through every swap and each must get its right answer. Then a mislabelled
group makes a worse model, which `coopbot nlu retrain` refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.nlu_model.registry import ModelRegistry
from bot.nlu_model.retrain import Retrainer
from bot.nlu_model.review_queue import ReviewLog, ReviewQueue
from bot.settings import Settings
from bot.store.db import Member, MessageLog, create_db_engine, upgrade_db
from bot.store.members import MemberStore
from knowledge.base import load_knowledge_base
from nlu.build import TEST_DIR, TRAIN_DIR, load_examples
from tests.processes import coopbot
from tests.question_stream import Sent, Stream
from tests.running_bot import RunningBot

KB = load_knowledge_base()
ADMIN = "admin-session-000001"
# Asked by members; the deployed model falls back on it. The admin labels it with an
# entry (for the test; any intent would do) and the retrained model must answer with it.
NEW_QUESTIONS = (
    "htx nuôi cá cần giấy phép môi trường không",
    "HTX nuoi ca co can giay phep moi truong khong vay",
    "nuoi ca thi htx can giay phep moi truong ko",
)
LABEL = "ho_so_dang_ky_htx"


def say(client: httpx.Client, session: str, text: str = "", payload: str | None = None) -> Any:
    body: dict[str, Any] = {"session": session}
    body.update({"payload": payload} if payload else {"text": text})
    response = client.post("/chat/api/messages", json=body)
    assert response.status_code == 200, response.text
    return response.json()["replies"]


def answers_with(client: httpx.Client, text: str, session: str = "member-session-0002") -> str:
    return str(say(client, session, text)[0]["text"])


@pytest.fixture
def setup(tmp_path: Path, nlu_model: Path) -> Any:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(nlu_model, models / nlu_model.name)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'cli.db'}",
        nlu_url="http://127.0.0.1:9",  # nothing there: the bot starts its own NLU service
        model_dir=models,
        reviewed_data=tmp_path / "reviewed.yml",
        web_port=0,
        nlu_model_poll_seconds=0.5,
        reminders_enabled=False,
        web_messages_per_ip_minute=100_000,  # the stream's many members share one address
    )
    env = {
        "MODEL_DIR": str(models),
        "REVIEWED_DATA": str(tmp_path / "reviewed.yml"),
        "NLU_RETRAIN_TOLERANCE": "0",
    }
    return settings, env


def test_label_retrain_swap_rollback_and_refuse(setup, tmp_path):
    settings, env = setup
    engine = create_db_engine(settings.database_url)
    registry = ModelRegistry(engine, settings.model_dir)
    with RunningBot(settings) as bot, httpx.Client(base_url=bot.url, timeout=60) as client:
        (v1,) = registry.latest()
        assert v1.status == "deployed" and v1.loaded_at is not None  # recorded at start-up

        # Members ask something the deployed model cannot answer.
        for i, question in enumerate(NEW_QUESTIONS):
            answer = answers_with(client, question, f"m-session-{i:010d}")
            assert "chưa có câu trả lời chắc chắn" in answer
        before = answers_with(client, NEW_QUESTIONS[0])

        # The admin reviews in chat and labels the group.
        say(client, ADMIN, "/start")
        MemberStore(engine).set_role("web", ADMIN, "admin")
        (shown,) = say(client, ADMIN, "/xemxet")
        group = shown["text"].split("Nhóm #", 1)[1].split(":", 1)[0]
        assert "hỏi 4 lần" in shown["text"]  # the three wordings, one asked twice
        (labelled,) = say(client, ADMIN, f"/xemxet {group} {LABEL}")
        assert labelled["text"].startswith("✅ Đã gán 4 câu")

        # Retrain from chat while members keep asking.
        stream = Stream(bot.url)
        stream.start()
        (ack,) = say(client, ADMIN, "/huanluyen")
        assert ack["text"].startswith("⏳ Đã bắt đầu huấn luyện lại")
        result = ""
        # A guard against a hang, not a speed target (`make bench-retrain` measures that):
        # a full training run takes about 4 minutes on 2 idle cores, more on a loaded one.
        deadline = time.monotonic() + 900
        while "Đã triển khai" not in result and "Không triển khai" not in result:
            assert time.monotonic() < deadline, "no retrain result within 15 minutes"
            inbox = client.get("/chat/api/inbox", params={"session": ADMIN}).json()["replies"]
            result += "".join(r["text"] for r in inbox)
        v2 = registry.deployed()
        assert v2 is not None and v2.version == "v2", result
        assert "✅ Đã triển khai mô hình v2" in result and "chuyển sang mô hình mới" in result
        assert v2.metrics["reviewed"] == {"n": 3, "accuracy": 1.0}
        assert v2.metrics["compared_with"]["reviewed"]["accuracy"] == 0.0
        assert registry.by_id(v1.id).metrics["heldout"]["n"] == sum(  # type: ignore[union-attr]
            len(v) for v in load_examples(TEST_DIR).values()
        )
        time.sleep(1.0)
        _check_stream(stream.stop(), v2.loaded_at, "the swap to v2")

        # The labelled question is now answered with its entry.
        assert answers_with(client, NEW_QUESTIONS[0]).startswith(KB.entries[LABEL].title)

        # Rollback on the command line, members still asking.
        stream = Stream(bot.url)
        stream.start()
        time.sleep(1.0)
        rolled = coopbot(tmp_path, "nlu", "rollback", "--wait", "60", env=env)
        assert rolled.returncode == 0, rolled.stderr
        assert "Đã triển khai lại v1 thay cho v2" in rolled.stdout
        assert "Trợ lý đang trả lời bằng v1" in rolled.stdout
        time.sleep(1.0)
        v1_again = registry.deployed()
        assert v1_again is not None and v1_again.version == "v1"
        _check_stream(stream.stop(), v1_again.loaded_at, "the rollback to v1")
        assert answers_with(client, NEW_QUESTIONS[0]) == before  # the old answer is back

        # An admin mislabels a common question: the retrained model is worse and refused.
        held_out = load_examples(TEST_DIR)["so_thanh_vien_toi_thieu"]
        log = ReviewLog(engine)
        poison = [f"{lead}{text} {tail}" for text in held_out
                  for lead, tail in (("", "vậy"), ("cho hỏi ", "ạ"), ("", "nhỉ"))]  # fmt: skip
        for text in poison:
            log.record(channel="web", text=text, reason="thumbs_down", intent=None,
                       confidence=None)  # fmt: skip
        queue = ReviewQueue(engine, settings.reviewed_data, load_examples(TRAIN_DIR).keys())
        groups = [g for g in queue.groups() if set(g.texts) <= set(poison)]
        assert sum(g.count for g in groups) == len(poison)
        listed = coopbot(tmp_path, "review", "list", "--limit", "100", env=env)
        for group in groups:
            assert f"#{group.id} " in listed.stdout
            labelled_cli = coopbot(tmp_path, "review", "label", str(group.id), "von_gop_toi_da",
                                   "--by", "admin test", env=env)  # fmt: skip
            assert labelled_cli.returncode == 0, labelled_cli.stderr
            assert "vào von_gop_toi_da" in labelled_cli.stdout
        refused = coopbot(tmp_path, "nlu", "retrain", env=env, timeout=420)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "⛔ Không triển khai: độ chính xác trên tập kiểm tra giảm" in refused.stdout
        assert registry.deployed().version == "v1"  # type: ignore[union-attr]
        assert registry.get("v3").status == "refused"  # type: ignore[union-attr]
        assert answers_with(client, NEW_QUESTIONS[0]) == before
        models = coopbot(tmp_path, "nlu", "models", env=env)
        assert "*v1   deployed" in models.stdout and "v3   refused" in models.stdout

    with engine.connect() as connection:
        streamed = connection.execute(
            select(MessageLog.kind, MessageLog.intent)
            .join(Member, Member.id == MessageLog.member_id)
            .where(Member.external_id.like("stream-session-%"))
        ).all()  # fmt: skip
    engine.dispose()
    assert streamed and all(kind == "entry" and intent for kind, intent in streamed)


def _check_stream(sent: list[Sent], loaded_at: Any, what: str) -> None:
    """No question failed, and questions were in flight right around the swap."""
    failed = [s for s in sent if not s.ok]
    assert not failed, f"{len(failed)} of {len(sent)} questions failed during {what}: {failed[:3]}"
    assert loaded_at is not None
    swap = time.monotonic() - (time.time() - loaded_at.timestamp())
    near = [s for s in sent if s.started - 1.5 <= swap <= s.finished + 1.5]
    assert len(sent) >= 20 and near, f"no question near {what} ({len(sent)} sent)"


def test_a_retrain_stopped_midway_ends_training_at_once(setup):
    settings, _ = setup
    engine = create_db_engine(settings.database_url)
    upgrade_db(engine)
    lines: list[str] = []
    retrainer = Retrainer(settings, engine, progress=lines.append)

    async def stop_midway() -> float:
        task = asyncio.create_task(retrainer.run("cli:test", force=True))
        while not lines:
            await asyncio.sleep(0.05)
        # `rasa train` is starting (Rasa alone takes longer than this to import and
        # train) and so is the scratch NLU service.
        await asyncio.sleep(3.0)
        assert not task.done() and lines[0].startswith("Huấn luyện v2:")
        started = time.monotonic()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(stop_midway()) < 10.0
    registry = ModelRegistry(engine, settings.model_dir)
    record = registry.get("v2")
    assert record is not None and record.status == "failed"
    assert registry.deployed().version == "v1"  # type: ignore[union-attr]
    assert not list(settings.model_dir.glob("nlu-v2-*"))
    # Nothing left running: the next retrain may start.
    assert registry.start_training("cli:test").version == "v3"
    engine.dispose()
