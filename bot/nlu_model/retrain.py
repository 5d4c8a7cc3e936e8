"""Retrain, evaluate, compare, deploy: what ``coopbot nlu retrain`` and ``/huanluyen`` run.

1. train a model on the hand-written data plus the admins' labelled questions
   (``rasa train nlu`` in the NLU environment), named ``nlu-v<N>-<hash>``;
   meanwhile a scratch NLU service starts with the deployed model;
2. score the deployed model, then (swapped into the scratch service) the new
   one, on the held-out split and on the labelled questions;
3. deploy the new model in the registry only if it is not worse than the
   deployed one on any of held-out accuracy, held-out macro-F1 and accuracy
   on the labelled questions, by more than ``NLU_RETRAIN_TOLERANCE``
   (``force`` deploys anyway). The running assistant swaps it in
   (:mod:`bot.nlu_model.swap`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from bot.nlu_model.client import NLUError
from bot.nlu_model.evaluation import predict, split_pairs
from bot.nlu_model.registry import ModelRecord, ModelRegistry, RetrainBusy, busy_message
from bot.nlu_model.review_queue import person
from bot.nlu_model.service import NLUService
from bot.nlu_model.swap import ModelKeeper, serving_model
from bot.replies import Reply
from bot.sending import SendError, Senders
from bot.settings import Settings
from bot.store.members import MemberInfo
from bot.tasks import cancel_and_wait
from nlu.build import (
    NLUBuildError,
    fingerprint,
    train_model,
    training_set,
)
from nlu.evaluate import Report, evaluate

__all__ = ["ChatRetrain", "RetrainError", "RetrainOutcome", "Retrainer", "Scores", "compare"]

log = logging.getLogger(__name__)

_TICK_S = 15.0
_EVAL_CONCURRENCY = 4


class RetrainError(Exception):
    """Retraining failed; the message says why (Vietnamese)."""


@dataclass(frozen=True, slots=True)
class Scores:
    """One model's scores on the held-out split and on the labelled questions."""

    heldout: Report
    reviewed: Report

    def to_json(self) -> dict[str, Any]:
        """The figures stored in the registry."""
        return {
            "heldout": {
                "n": self.heldout.count,
                "accuracy": round(self.heldout.accuracy, 4),
                "macro_f1": round(self.heldout.macro_f1, 4),
            },
            "reviewed": {"n": self.reviewed.count, "accuracy": round(self.reviewed.accuracy, 4)},
        }


def compare(new: Scores, old: Scores | None, tolerance: float) -> list[str]:
    """Why ``new`` is worse than ``old`` (Vietnamese); empty when it is not worse."""
    if old is None:
        return []
    reasons = []
    checks = [
        ("độ chính xác trên tập kiểm tra", new.heldout.accuracy, old.heldout.accuracy, "{:.1%}"),
        ("macro-F1 trên tập kiểm tra", new.heldout.macro_f1, old.heldout.macro_f1, "{:.3f}"),
    ]
    if new.reviewed.count:
        checks.append(
            (
                "độ chính xác trên câu hỏi đã gán nhãn",
                new.reviewed.accuracy,
                old.reviewed.accuracy,
                "{:.1%}",
            )
        )
    for name, mine, theirs, shown in checks:
        if mine < theirs - tolerance - 1e-9:
            reasons.append(f"{name} giảm từ {shown.format(theirs)} xuống {shown.format(mine)}")
    return reasons


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    """What a retrain did."""

    status: str  # deployed, refused, unchanged
    record: ModelRecord | None
    new: Scores | None = None
    old: Scores | None = None
    old_version: str | None = None
    reasons: tuple[str, ...] = ()
    forced: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the admin (Vietnamese)."""
        if self.status == "unchanged":
            assert self.record is not None
            return (
                f"Dữ liệu huấn luyện không đổi từ mô hình {self.record.version} đang dùng; "
                "không cần huấn luyện lại (dùng --force để vẫn huấn luyện)."
            )
        assert self.record is not None and self.new is not None
        lines = [f"Mô hình {self.record.version}: {_figures(self.new)}"]
        if self.old is not None:
            lines.append(f"Mô hình đang dùng {self.old_version}: {_figures(self.old)}")
        if self.status == "deployed":
            verdict = "✅ Đã triển khai"
            if self.forced and self.reasons:
                verdict += " (bắt buộc, dù " + "; ".join(self.reasons) + ")"
            lines.append(verdict + f" mô hình {self.record.version}.")
        else:
            lines.append("⛔ Không triển khai: " + "; ".join(self.reasons) + ".")
        timing = self.timings
        if timing:
            lines.append(
                f"Thời gian: huấn luyện {timing.get('train', 0):.0f} s, đánh giá "
                f"{timing.get('evaluate', 0):.0f} s, tổng {timing.get('total', 0):.0f} s."
            )
        return "\n".join(lines)


def _figures(scores: Scores) -> str:
    text = (
        f"tập kiểm tra {scores.heldout.accuracy:.1%} đúng (macro-F1 "
        f"{scores.heldout.macro_f1:.3f}, {scores.heldout.count} câu)"
    )
    if scores.reviewed.count:
        text += (
            f", câu hỏi đã gán nhãn {scores.reviewed.accuracy:.1%} đúng "
            f"({scores.reviewed.count} câu)"
        )
    return text


class Retrainer:
    """Runs one retrain from start to end."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """``progress`` receives a line (Vietnamese) at each step."""
        self.settings = settings
        self.registry = ModelRegistry(engine, settings.model_dir)
        self._progress = progress

    async def _say(self, record: ModelRecord, text: str) -> None:
        if self._progress is not None:
            self._progress(text)
        await asyncio.to_thread(self.registry.progress, record.id, text)

    async def run(self, by: str, *, force: bool = False) -> RetrainOutcome:
        """Retrains; raises RetrainBusy when another retrain runs, RetrainError when it fails."""
        started = time.monotonic()
        reviewed_path = self.settings.reviewed_data
        # File reading and hashing off the event loop: in `coopbot run` members are served on it.
        data_hash = await asyncio.to_thread(fingerprint, reviewed=reviewed_path)
        deployed = await asyncio.to_thread(self.registry.deployed)
        if deployed is None:
            # Never started with `coopbot run`: record the model in use, to compare with it.
            with contextlib.suppress(NLUBuildError):
                await asyncio.to_thread(serving_model, self.registry, reviewed_path)
                deployed = await asyncio.to_thread(self.registry.deployed)
        if not force and deployed is not None and deployed.data_hash == data_hash:
            return RetrainOutcome("unchanged", deployed)
        record = await asyncio.to_thread(self.registry.start_training, by)
        try:
            return await self._run(record, deployed, data_hash, force, started)
        except (NLUBuildError, NLUError, OSError) as exc:
            await asyncio.to_thread(self.registry.finish, record.id, "failed", str(exc)[:500])
            raise RetrainError(f"Huấn luyện {record.version} thất bại: {exc}") from exc
        except BaseException:
            await asyncio.to_thread(self.registry.finish, record.id, "failed", "bị dừng giữa chừng")
            raise

    async def _run(
        self,
        record: ModelRecord,
        deployed: ModelRecord | None,
        data_hash: str,
        force: bool,
        started: float,
    ) -> RetrainOutcome:
        settings = self.settings
        data = await asyncio.to_thread(training_set, settings.reviewed_data)
        total = sum(len(v) for v in data.examples.values())
        await self._say(
            record,
            f"Huấn luyện {record.version}: {total} câu mẫu, trong đó {data.reviewed_count} câu "
            f"đã gán nhãn ({data.reviewed_dropped} câu trùng bị bỏ qua).",
        )
        name = f"nlu-{record.version}-{data_hash}"
        processes: list[subprocess.Popen[str]] = []
        training = asyncio.create_task(
            asyncio.to_thread(
                train_model,
                settings.model_dir,
                settings.nlu_venv,
                name=name,
                reviewed=settings.reviewed_data,
                on_start=processes.append,
            )
        )
        old_path = self.registry.path(deployed) if deployed is not None else None
        scratch = NLUService(settings, old_path) if old_path is not None else None
        try:
            if scratch is not None:
                scratch.start()  # starts while training runs: both are ready sooner
            while not training.done():
                await asyncio.wait({training}, timeout=_TICK_S)
                if not training.done():
                    elapsed = time.monotonic() - started
                    await self._say(record, f"Đang huấn luyện {record.version}... {elapsed:.0f} s")
            result = training.result()
            train_seconds = result.seconds
            await asyncio.to_thread(
                self.registry.trained,
                record.id,
                file=result.model.name,
                data_hash=data_hash,
                examples=result.examples,
                reviewed_examples=data.reviewed_count,
                seconds=train_seconds,
            )
            done = f"Đã huấn luyện xong trong {train_seconds:.0f} s; đang đánh giá..."
            await self._say(record, done)
            eval_started = time.monotonic()
            heldout = await asyncio.to_thread(split_pairs)
            labelled = [(t, i) for i, texts in data.reviewed.items() for t in texts]
            old_scores = None
            if scratch is None:
                scratch = NLUService(settings, result.model)
                scratch.start()
                await scratch.wait_ready()
            else:
                await scratch.wait_ready()
                old_scores = await self._score(scratch, heldout, labelled)
                if deployed is not None and not deployed.metrics:
                    await asyncio.to_thread(
                        self.registry.fill_metrics, deployed.id, old_scores.to_json()
                    )
                async with scratch.endpoint.client(timeout=10.0) as client:
                    await client.swap_model(result.model)
            new_scores = await self._score(scratch, heldout, labelled)
            evaluate_seconds = time.monotonic() - eval_started
        finally:
            if not training.done():
                # Stopped (shutdown, Ctrl+C): end `rasa train` so its thread ends with it.
                for process in processes:
                    if process.poll() is None:
                        process.kill()
                training.cancel()
            if scratch is not None:
                await asyncio.to_thread(scratch.stop)
        reasons = compare(new_scores, old_scores, settings.nlu_retrain_tolerance)
        timings = {
            "train": round(train_seconds, 1),
            "evaluate": round(evaluate_seconds, 1),
            "total": round(time.monotonic() - started, 1),
        }
        metrics: dict[str, Any] = {**new_scores.to_json(), "timings": timings}
        if old_scores is not None and deployed is not None:
            metrics["compared_with"] = {"version": deployed.version, **old_scores.to_json()}
        deploy = force or not reasons
        decision = "không kém mô hình đang dùng" if not reasons else "; ".join(reasons)
        if force and reasons:
            decision = "triển khai bắt buộc (--force): " + decision
        record = await asyncio.to_thread(
            self.registry.finish,
            record.id,
            "candidate" if deploy else "refused",
            decision,
            metrics,
        )
        if deploy:
            by = record.created_by or ""
            record = await asyncio.to_thread(self.registry.deploy, record.id, by)
        return RetrainOutcome(
            "deployed" if deploy else "refused",
            record,
            new_scores,
            old_scores,
            deployed.version if deployed is not None else None,
            tuple(reasons),
            force,
            timings,
        )

    async def _score(
        self,
        service: NLUService,
        heldout: Sequence[tuple[str, str]],
        labelled: Sequence[tuple[str, str]],
    ) -> Scores:
        url, token = service.url, service.token
        options: dict[str, Any] = {"concurrency": _EVAL_CONCURRENCY, "timeout": 30.0}
        return Scores(
            evaluate(await predict(url, heldout, token=token, **options)),
            evaluate(await predict(url, labelled, token=token, **options)),
        )


class ChatRetrain:
    """``/huanluyen``: one retrain at a time in the running assistant, result sent when done."""

    def __init__(
        self, settings: Settings, engine: Engine, keeper: ModelKeeper, senders: Senders
    ) -> None:
        """Deploys through ``keeper`` and reports through ``senders``."""
        self.settings = settings
        self.engine = engine
        self.keeper = keeper
        self.senders = senders
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, member: MemberInfo) -> Reply:
        """Starts a retrain for ``member`` (an admin) and acknowledges it."""
        if self._task is not None and not self._task.done():
            return Reply("⏳ Đang huấn luyện lại mô hình; kết quả sẽ được báo khi xong.")
        registry = ModelRegistry(self.engine, self.settings.model_dir)
        running = await asyncio.to_thread(registry.running)
        if running is not None:
            return Reply(f"⏳ {busy_message(running)}")
        self._task = asyncio.create_task(self._run(member), name="nlu-retrain")
        return Reply(
            "⏳ Đã bắt đầu huấn luyện lại mô hình NLU từ dữ liệu hiện có và các câu hỏi đã gán "
            "nhãn (thường vài phút). Mình sẽ báo kết quả khi xong; trợ lý vẫn trả lời bình "
            "thường trong lúc đó."
        )

    async def _run(self, member: MemberInfo) -> None:
        try:
            outcome = await Retrainer(self.settings, self.engine).run(person(member))
            text = outcome.summary()
            if outcome.status == "deployed":
                current = await self.keeper.sync()
                if current is not None and current.file == self.keeper.loaded_file:
                    text += "\nTrợ lý đã chuyển sang mô hình mới."
                else:
                    text += "\n⚠️ Chưa nạp được mô hình mới vào dịch vụ NLU; xem nhật ký."
        except RetrainBusy as exc:
            text = f"⏳ {exc}"
        except RetrainError as exc:
            text = f"⚠️ {exc}"
        except Exception:
            log.exception("retrain from chat failed")
            text = "⚠️ Huấn luyện lại gặp lỗi ngoài dự kiến; xem nhật ký của hệ thống."
        try:
            await self.senders.send(member.channel, member.chat_id, Reply(text))
        except SendError as exc:
            log.warning("could not report the retrain result to %s: %s", member.channel, exc)

    async def stop(self) -> None:
        """Stops a retrain in progress (its registry row is marked failed)."""
        if self._task is not None and not self._task.done():
            await cancel_and_wait(self._task)

    async def wait(self) -> None:
        """Waits for the retrain in progress (tests)."""
        if self._task is not None:
            await self._task
