"""The model registry, the not-worse rule, and the gate that holds questions during a swap."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from bot.nlu_model.client import SwapGate
from bot.nlu_model.registry import ModelRegistry, RegistryError, RetrainBusy
from bot.nlu_model.retrain import Scores, compare
from bot.nlu_model.swap import serving_model
from nlu.evaluate import Prediction, evaluate


def trained(registry: ModelRegistry, name: str, by: str = "admin") -> int:
    record = registry.start_training(by)
    (registry.model_dir / f"{name}.tar.gz").write_bytes(b"model")
    registry.trained(record.id, file=f"{name}.tar.gz", data_hash=name, examples=10,
                     reviewed_examples=1, seconds=1.5)  # fmt: skip
    registry.finish(record.id, "candidate", "ok", {"heldout": {"accuracy": 0.9}})
    return record.id


def test_versions_deploy_and_roll_back(db_engine, tmp_path):
    registry = ModelRegistry(db_engine, tmp_path)
    (tmp_path / "nlu-abc.tar.gz").write_bytes(b"model")
    first = registry.register_existing(tmp_path / "nlu-abc.tar.gz", "khởi động")
    assert (first.version, first.status, first.data_hash) == ("v1", "deployed", "abc")
    second = trained(registry, "nlu-v2-x")
    deployed = registry.deploy(second, "telegram:1 (Lan)")
    assert (deployed.version, deployed.deployed_by, deployed.loaded_at) == (
        "v2",
        "telegram:1 (Lan)",
        None,
    )
    assert registry.deployed() == deployed
    assert registry.get("1").status == "retired"  # type: ignore[union-attr]
    assert registry.by_id(second).metrics == {"heldout": {"accuracy": 0.9}}  # type: ignore[union-attr]

    registry.mark_loaded(second)
    assert registry.deployed().loaded_at is not None  # type: ignore[union-attr]

    old, now = registry.rollback("cli:root")
    assert (old.version, now.version) == ("v2", "v1")  # type: ignore[union-attr]
    assert registry.get("v2").status == "rolled_back"  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="Không có mô hình trước đó"):
        registry.rollback("cli:root")  # v2 was rolled back: not offered again
    old, now = registry.rollback("cli:root", to="v2")  # but can be chosen by name
    assert (old.version, now.version) == ("v1", "v2")  # type: ignore[union-attr]
    assert registry.previous().version == "v1"  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="đang được dùng"):
        registry.rollback("cli:root", to="v2")
    with pytest.raises(RegistryError, match="Không có mô hình v9"):
        registry.rollback("cli:root", to="v9")
    (tmp_path / "nlu-abc.tar.gz").unlink()
    with pytest.raises(RegistryError, match="không dùng được"):
        registry.rollback("cli:root", to="v1")
    assert [r.version for r in registry.latest()] == ["v2", "v1"]


def test_one_retrain_at_a_time_and_a_crashed_one_goes_stale(db_engine, tmp_path):
    registry = ModelRegistry(db_engine, tmp_path)
    first = registry.start_training("a")
    with pytest.raises(RetrainBusy, match=f"Đang huấn luyện mô hình {first.version}"):
        registry.start_training("b")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    second = registry.start_training("b", now=later)
    assert registry.by_id(first.id).status == "failed"  # type: ignore[union-attr]
    registry.progress(second.id, "Đang huấn luyện v2... 30 s")
    assert registry.by_id(second.id).decision == "Đang huấn luyện v2... 30 s"  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="Không tìm thấy tệp"):
        registry.deploy(second.id, "b")  # not trained yet: no file


def test_the_first_start_records_the_model_it_serves(db_engine, tmp_path):
    registry = ModelRegistry(db_engine, tmp_path)
    model = tmp_path / "nlu-0123456789ab.tar.gz"
    model.write_bytes(b"model")
    assert serving_model(registry, None, record=False) == model
    assert registry.deployed() is None
    assert serving_model(registry, None) == model
    assert registry.deployed().file == model.name  # type: ignore[union-attr]
    newer = trained(registry, "nlu-v2-y")
    registry.deploy(newer, "a")
    assert serving_model(registry, None) == tmp_path / "nlu-v2-y.tar.gz"  # the registry's choice


def scores(heldout: list[bool], reviewed: list[bool]) -> Scores:
    def report(outcomes: list[bool]):  # type: ignore[no-untyped-def]
        return evaluate(
            [Prediction(str(i), "a", "a" if ok else "b") for i, ok in enumerate(outcomes)]
        )

    return Scores(report(heldout), report(reviewed))


def test_not_worse_rule():
    old = scores([True] * 95 + [False] * 5, [False] * 4)
    assert compare(scores([True] * 95 + [False] * 5, [True] * 4), old, 0.0) == []
    assert compare(scores([True] * 95 + [False] * 5, [True] * 4), None, 0.0) == []
    worse = compare(scores([True] * 94 + [False] * 6, [True] * 4), old, 0.0)
    assert worse == [
        "độ chính xác trên tập kiểm tra giảm từ 95.0% xuống 94.0%",
        "macro-F1 trên tập kiểm tra giảm từ 0.974 xuống 0.969",
    ]
    assert compare(scores([True] * 94 + [False] * 6, [True] * 4), old, 0.01) == []
    labelled_worse = compare(scores([True] * 95 + [False] * 5, [False] * 4),
                             scores([True] * 95 + [False] * 5, [True] * 4), 0.01)  # fmt: skip
    assert labelled_worse == ["độ chính xác trên câu hỏi đã gán nhãn giảm từ 100.0% xuống 0.0%"]


def test_the_gate_holds_questions_while_a_model_is_swapped_in():
    async def scenario() -> list[str]:
        gate = SwapGate()
        events: list[str] = []
        release_first = asyncio.Event()

        async def question(name: str, hold: asyncio.Event | None = None) -> None:
            async with gate.passage():
                events.append(f"{name} in")
                if hold is not None:
                    await hold.wait()
            events.append(f"{name} out")

        async def swap() -> None:
            async with gate.closed():
                events.append("swap start")
                await asyncio.sleep(0.05)
                events.append("swap end")

        first = asyncio.create_task(question("q1", release_first))
        await asyncio.sleep(0.01)
        swapping = asyncio.create_task(swap())
        await asyncio.sleep(0.01)
        second = asyncio.create_task(question("q2"))
        await asyncio.sleep(0.01)
        assert events == ["q1 in"]  # the swap waits for q1; q2 waits for the swap
        release_first.set()
        await asyncio.gather(first, swapping, second)
        return events

    assert asyncio.run(scenario()) == [
        "q1 in",
        "q1 out",
        "swap start",
        "swap end",
        "q2 in",
        "q2 out",
    ]


def test_a_question_is_not_held_forever():
    async def scenario() -> float:
        gate = SwapGate(max_wait=0.1)
        async with gate.closed():
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with gate.passage():
                return loop.time() - started

    assert 0.09 <= asyncio.run(scenario()) < 1.0


def test_registry_path_needs_the_file(db_engine, tmp_path: Path):
    registry = ModelRegistry(db_engine, tmp_path)
    record = registry.start_training("a")
    assert registry.path(record) is None
