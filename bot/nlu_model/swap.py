"""Keeps the running NLU service on the model the registry deploys (hot swap, no question lost).

A running assistant checks the registry and the NLU service's ``GET /status``
every ``NLU_MODEL_POLL_SECONDS`` (and right away after ``/huanluyen``); when
the deployed model is not the one the service really serves (another model,
or none after a ``DELETE /model`` or a restart of the service), it swaps it in
with ``PUT /model`` between questions
(:class:`bot.nlu_model.client.SwapGate`) and stamps ``loaded_at`` in the registry.
``coopbot nlu retrain`` and ``coopbot nlu rollback`` only change the registry
and wait for that stamp.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from bot.nlu_model.client import NLUClient, NLUError
from bot.nlu_model.registry import ModelRecord, ModelRegistry
from bot.nlu_model.service import pick_model
from bot.tasks import cancel_and_wait

__all__ = ["ModelKeeper", "serving_model"]

log = logging.getLogger(__name__)

_RETRY_FAILED_S = 60.0


def serving_model(registry: ModelRegistry, reviewed: Path | None, *, record: bool = True) -> Path:
    """The model to start the NLU service with: the registry's, else the current one.

    With an empty registry (first start), the model of the current data (else
    the newest file) becomes the first deployed model (when ``record``).
    Raises NLUBuildError when there is no model at all.
    """
    deployed = registry.deployed()
    if deployed is not None:
        path = registry.path(deployed)
        if path is not None:
            current = pick_model(registry.model_dir, reviewed)
            if current.name != path.name and registry.by_file(current.name) is None:
                log.warning(
                    "%s was trained from the current data but the registry deploys %s (%s); "
                    "run `coopbot nlu retrain` to evaluate and deploy the current data",
                    current.name,
                    deployed.version,
                    path.name,
                )
            return path
        log.error("deployed model %s: file %s is missing", deployed.version, deployed.file)
    model = pick_model(registry.model_dir, reviewed)
    if record:
        first = registry.register_existing(model, "khởi động")
        log.info("model registry: %s recorded as %s (deployed)", model.name, first.version)
    return model


class ModelKeeper:
    """Swaps the deployed model into the NLU service when the registry changes."""

    def __init__(self, registry: ModelRegistry, nlu: NLUClient, poll_seconds: float = 5.0) -> None:
        """Watches ``registry`` for the service behind ``nlu``."""
        self.registry = registry
        self.nlu = nlu
        self.poll_seconds = poll_seconds
        self.loaded_file: str | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failed: dict[str, float] = {}

    async def start(self) -> None:
        """Syncs once, then keeps watching."""
        await self.sync()
        self._task = asyncio.create_task(self._watch(), name="nlu-model-keeper")

    async def stop(self) -> None:
        """Stops watching (a swap in progress finishes first)."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.sync()
            except Exception:  # the watch must survive a database hiccup
                log.exception("model registry check failed")

    async def sync(self) -> ModelRecord | None:
        """Swaps in the deployed model if the service serves another; returns the deployed one."""
        async with self._lock:
            try:  # what the service serves now, never what we think we loaded
                self.loaded_file = await self.nlu.loaded_model()
            except NLUError as exc:
                log.warning("cannot read the NLU service's model: %s", exc)
                return None
            deployed = await asyncio.to_thread(self.registry.deployed)
            if deployed is None or deployed.file is None:
                return deployed
            if self.loaded_file is None:
                log.warning("the NLU service has no model loaded: loading %s", deployed.version)
            if deployed.file == self.loaded_file:
                if deployed.loaded_at is None:
                    await asyncio.to_thread(self.registry.mark_loaded, deployed.id)
                return deployed
            failed_at = self._failed.get(deployed.file)
            if failed_at is not None and time.monotonic() - failed_at < _RETRY_FAILED_S:
                return deployed
            path = self.registry.path(deployed)
            if path is None:
                log.error("deployed model %s: file %s is missing", deployed.version, deployed.file)
                self._failed[deployed.file] = time.monotonic()
                return deployed
            started = time.perf_counter()
            try:
                await self.nlu.swap_model(path)
            except NLUError as exc:
                log.error("could not swap in model %s (%s): %s", deployed.version, path.name, exc)
                self._failed[deployed.file] = time.monotonic()
                return deployed
            self._failed.pop(deployed.file, None)
            self.loaded_file = deployed.file
            await asyncio.to_thread(self.registry.mark_loaded, deployed.id)
            log.info(
                "NLU model %s (%s) swapped in after %.0f ms",
                deployed.version,
                path.name,
                (time.perf_counter() - started) * 1000,
            )
            return deployed
