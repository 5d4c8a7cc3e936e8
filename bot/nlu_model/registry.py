"""The NLU model registry: each model trained or deployed, its data hash, metrics, deployer.

The registry decides which model the assistant serves: the row with status
``deployed`` (the latest one deployed, should two ever be). A running
assistant swaps that model in (``bot/model_swap.py``) and stamps
``loaded_at``. A row with status ``training`` is also the lock that keeps a
second retrain from starting (one left by a crash goes stale after an hour).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.clock import aware, utcnow
from bot.store.db import NLUModel

__all__ = ["ModelRecord", "ModelRegistry", "RegistryError", "RetrainBusy", "busy_message"]

STALE_TRAINING = dt.timedelta(hours=1)


class RegistryError(Exception):
    """A registry request that cannot be done; the message says why (Vietnamese)."""


class RetrainBusy(RegistryError):
    """Another retrain is running."""


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A registry row, detached from its session."""

    id: int
    version: str
    file: str | None
    data_hash: str | None
    examples: int | None
    reviewed_examples: int | None
    status: str
    metrics: dict[str, Any]
    decision: str | None
    train_seconds: float | None
    created_by: str | None
    created_at: dt.datetime
    deployed_by: str | None
    deployed_at: dt.datetime | None
    loaded_at: dt.datetime | None

    @classmethod
    def of(cls, row: NLUModel) -> ModelRecord:
        """Copies a row."""
        return cls(
            row.id,
            row.version,
            row.file,
            row.data_hash,
            row.examples,
            row.reviewed_examples,
            row.status,
            json.loads(row.metrics) if row.metrics else {},
            row.decision,
            row.train_seconds,
            row.created_by,
            aware(row.created_at),
            row.deployed_by,
            aware(row.deployed_at) if row.deployed_at else None,
            aware(row.loaded_at) if row.loaded_at else None,
        )


class ModelRegistry:
    """Reads and changes the ``nlu_models`` table."""

    def __init__(self, engine: Engine, model_dir: Path) -> None:
        """Uses ``engine`` (migrated); model files live in ``model_dir``."""
        self._engine = engine
        self.model_dir = model_dir

    def path(self, record: ModelRecord) -> Path | None:
        """The model file of ``record`` when it is on disk."""
        if not record.file:
            return None
        path = self.model_dir / record.file
        return path if path.exists() else None

    # -- reading -----------------------------------------------------------------------

    def deployed(self) -> ModelRecord | None:
        """The model the assistant should serve."""
        with Session(self._engine) as session:
            row = session.scalar(
                select(NLUModel)
                .where(NLUModel.status == "deployed")
                .order_by(NLUModel.deployed_at.desc(), NLUModel.id.desc())
                .limit(1)
            )
            return ModelRecord.of(row) if row is not None else None

    def get(self, version: str) -> ModelRecord | None:
        """A model by version (``v3`` or ``3``)."""
        version = version.strip().lower()
        if version.isdigit():
            version = f"v{version}"
        with Session(self._engine) as session:
            row = session.scalar(select(NLUModel).where(NLUModel.version == version))
            return ModelRecord.of(row) if row is not None else None

    def by_id(self, model_id: int) -> ModelRecord | None:
        """A model by id."""
        with Session(self._engine) as session:
            row = session.get(NLUModel, model_id)
            return ModelRecord.of(row) if row is not None else None

    def latest(self, limit: int = 20) -> list[ModelRecord]:
        """The newest models first."""
        with Session(self._engine) as session:
            rows = session.scalars(select(NLUModel).order_by(NLUModel.id.desc()).limit(limit))
            return [ModelRecord.of(r) for r in rows]

    def by_file(self, name: str) -> ModelRecord | None:
        """The model whose file is ``name`` (a file name in MODEL_DIR)."""
        with Session(self._engine) as session:
            row = session.scalar(select(NLUModel).where(NLUModel.file == name).limit(1))
            return ModelRecord.of(row) if row is not None else None

    def running(self, *, now: dt.datetime | None = None) -> ModelRecord | None:
        """The retrain in progress, if any (one older than an hour is taken for dead)."""
        now = now or utcnow()
        with Session(self._engine) as session:
            rows = session.scalars(select(NLUModel).where(NLUModel.status == "training"))
            live = [ModelRecord.of(r) for r in rows if not _stale(r, now)]
        return live[0] if live else None

    def previous(self) -> ModelRecord | None:
        """The model deployed before the current one (not rolled back, file on disk)."""
        with Session(self._engine) as session:
            rows = session.scalars(
                select(NLUModel)
                .where(NLUModel.status == "retired", NLUModel.deployed_at.is_not(None))
                .order_by(NLUModel.deployed_at.desc(), NLUModel.id.desc())
            )
            for row in rows:
                record = ModelRecord.of(row)
                if self.path(record) is not None:
                    return record
        return None

    # -- training ----------------------------------------------------------------------

    def start_training(self, by: str, *, now: dt.datetime | None = None) -> ModelRecord:
        """Creates the row of a new model (status ``training``); raises RetrainBusy if one runs."""
        now = now or utcnow()
        with Session(self._engine) as session, session.begin():
            running = session.scalars(
                select(NLUModel).where(NLUModel.status == "training").with_for_update()
            ).all()
            for row in running:
                if not _stale(row, now):
                    raise RetrainBusy(busy_message(ModelRecord.of(row)))
                row.status = "failed"
                row.decision = "bị bỏ dở (tiến trình dừng giữa chừng)"
            row = _add(
                session, status="training", created_by=by, created_at=now, decision="bắt đầu"
            )
            return ModelRecord.of(row)

    def progress(self, model_id: int, step: str) -> None:
        """Notes what a running retrain is doing (shown by ``coopbot nlu models``)."""
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(NLUModel)
                .where(NLUModel.id == model_id, NLUModel.status == "training")
                .values(decision=step[:500])
            )

    def trained(
        self,
        model_id: int,
        *,
        file: str,
        data_hash: str,
        examples: int,
        reviewed_examples: int,
        seconds: float,
    ) -> None:
        """Records the trained file."""
        with Session(self._engine) as session, session.begin():
            row = session.get_one(NLUModel, model_id)
            row.file = file
            row.data_hash = data_hash
            row.examples = examples
            row.reviewed_examples = reviewed_examples
            row.train_seconds = seconds

    def finish(
        self, model_id: int, status: str, decision: str, metrics: dict[str, Any] | None = None
    ) -> ModelRecord:
        """Ends a retrain: ``candidate``, ``refused`` or ``failed``, with the reasons."""
        with Session(self._engine) as session, session.begin():
            row = session.get_one(NLUModel, model_id)
            row.status = status
            row.decision = decision[:2000]
            if metrics is not None:
                row.metrics = json.dumps(metrics, ensure_ascii=False)
            session.flush()
            return ModelRecord.of(row)

    # -- deploying ---------------------------------------------------------------------

    def deploy(self, model_id: int, by: str, *, retire_as: str = "retired") -> ModelRecord:
        """Makes ``model_id`` the deployed model; the one deployed before becomes ``retire_as``."""
        with Session(self._engine) as session, session.begin():
            row = session.get(NLUModel, model_id, with_for_update=True)
            if row is None or not row.file or not (self.model_dir / row.file).exists():
                raise RegistryError("Không tìm thấy tệp mô hình để triển khai.")
            session.execute(
                update(NLUModel)
                .where(NLUModel.status == "deployed", NLUModel.id != model_id)
                .values(status=retire_as)
            )
            row.status = "deployed"
            row.deployed_by = by
            row.deployed_at = utcnow()
            row.loaded_at = None
            session.flush()
            return ModelRecord.of(row)

    def rollback(self, by: str, to: str | None = None) -> tuple[ModelRecord | None, ModelRecord]:
        """Deploys the previous model (or version ``to``); returns (rolled back, now deployed)."""
        current = self.deployed()
        target = self.get(to) if to else self.previous()
        if target is None:
            raise RegistryError(
                f"Không có mô hình {to}." if to else "Không có mô hình trước đó để quay lại."
            )
        if current is not None and target.id == current.id:
            raise RegistryError(f"Mô hình {target.version} đang được dùng.")
        if target.status in ("training", "failed") or self.path(target) is None:
            raise RegistryError(f"Mô hình {target.version} không dùng được (chưa có tệp mô hình).")
        # A model rolled back is not offered by the next plain rollback; one replaced by
        # a chosen version (--to) stays available.
        return current, self.deploy(target.id, by, retire_as="retired" if to else "rolled_back")

    def register_existing(self, path: Path, by: str) -> ModelRecord:
        """Records a model trained outside a retrain (``coopbot nlu train``) as deployed."""
        with Session(self._engine) as session, session.begin():
            model_id = _add(
                session,
                file=path.name,
                data_hash=path.name.removeprefix("nlu-").removesuffix(".tar.gz"),
                status="candidate",
                created_by=by,
                decision="mô hình có sẵn khi khởi động, chưa đánh giá",
            ).id
        return self.deploy(model_id, by)

    def fill_metrics(self, model_id: int, metrics: dict[str, Any]) -> None:
        """Stores metrics for a model that has none yet (one recorded at first start)."""
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(NLUModel)
                .where(NLUModel.id == model_id, NLUModel.metrics.is_(None))
                .values(metrics=json.dumps(metrics, ensure_ascii=False))
            )

    def mark_loaded(self, model_id: int) -> None:
        """Stamps the moment a running assistant started answering with the model."""
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(NLUModel).where(NLUModel.id == model_id).values(loaded_at=utcnow())
            )


def busy_message(record: ModelRecord) -> str:
    """What an admin is told when a retrain is already running (Vietnamese)."""
    return (
        f"Đang huấn luyện mô hình {record.version} (do {record.created_by} bắt đầu); "
        "hãy đợi lần đó xong."
    )


def _stale(row: NLUModel, now: dt.datetime) -> bool:
    return now - aware(row.created_at) >= STALE_TRAINING


def _add(session: Session, **fields: Any) -> NLUModel:
    """Inserts a registry row and names it ``v<id>``."""
    row = NLUModel(version=f"tmp-{uuid.uuid4().hex[:12]}", **fields)
    session.add(row)
    session.flush()
    row.version = f"v{row.id}"
    session.flush()
    return row
