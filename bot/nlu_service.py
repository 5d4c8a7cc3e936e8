"""Runs the Rasa NLU service as a child process on a free loopback port.

``ask``, ``chat`` and (later) ``run`` use :func:`ensure_nlu_service`: when an
NLU service already answers at ``NLU_URL`` it is used as is; otherwise a child
``rasa run --enable-api`` is started with the current model and stopped when
the caller is done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from bot.nlu_client import NLUClient
from bot.settings import PROJECT_ROOT, Settings
from nlu.build import (
    NLUBuildError,
    current_model,
    latest_model,
    nlu_env,
    rasa_executable,
    train_model,
)

__all__ = ["NLUService", "ensure_nlu_service", "free_port", "pick_model"]

log = logging.getLogger(__name__)


def free_port() -> int:
    """Returns a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pick_model(model_dir: Path, reviewed: Path | None = None) -> Path:
    """Returns the model for the current data, else the newest one; explains when none exists."""
    model = current_model(model_dir, reviewed=reviewed) or latest_model(model_dir)
    if model is None:
        raise NLUBuildError(f"no trained model in {model_dir}: run `coopbot nlu train`")
    return model


class NLUService:
    """A child ``rasa run`` process serving one model on 127.0.0.1."""

    def __init__(self, settings: Settings, model: Path, port: int | None = None) -> None:
        """Prepares (does not start) a service for ``model``."""
        self.settings = settings
        self.model = model
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = PROJECT_ROOT / "var" / f"nlu-service-{self.port}.log"

    def command(self) -> list[str]:
        """The command line of the service."""
        rasa = rasa_executable(self.settings.nlu_venv)
        return [
            str(rasa), "run", "--enable-api",
            "--model", str(self.model),
            "--interface", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip

    def start(self) -> None:
        """Starts the process (returns at once; see :meth:`wait_ready`)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as logfile:
            self.process = subprocess.Popen(
                self.command(),
                cwd=PROJECT_ROOT,
                env=nlu_env(),
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # our Ctrl-C is ours to handle, not Rasa's
            )
        log.info("NLU service starting on %s (pid %s)", self.url, self.process.pid)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Waits until the service answers with its model loaded."""
        deadline = time.monotonic() + (timeout or self.settings.nlu_start_timeout)
        async with NLUClient(self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise NLUBuildError(
                        f"NLU service exited with code {self.process.returncode}; "
                        f"see {self.log_path}"
                    )
                if await client.is_ready():
                    return
                await asyncio.sleep(0.25)
        self.stop()
        raise NLUBuildError(f"NLU service not ready after {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        """Stops the process: SIGTERM, then SIGKILL after five seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
        log.info("NLU service on %s stopped", self.url)


@asynccontextmanager
async def ensure_nlu_service(
    settings: Settings,
    *,
    start: bool = True,
    model: Path | None = None,
    train_if_missing: bool = False,
    choose: Callable[[], Path] | None = None,
) -> AsyncIterator[str]:
    """Yields the URL of an NLU service, starting a child one if none answers at NLU_URL.

    With ``train_if_missing`` (``coopbot run``), a model is trained first when
    ``MODEL_DIR`` holds none. ``choose`` picks the model to serve (``coopbot
    run``: the model registry's); by default the current data's model.
    """
    async with NLUClient(settings.nlu_base_url, timeout=1.0) as probe:
        if await probe.is_ready():
            yield settings.nlu_base_url
            return
    if not start:
        yield settings.nlu_base_url
        return
    if model is None and train_if_missing and latest_model(settings.model_dir) is None:
        log.warning(
            "no trained NLU model in %s: training one now (a few minutes)", settings.model_dir
        )
        await asyncio.to_thread(
            train_model, settings.model_dir, settings.nlu_venv, reviewed=settings.reviewed_data
        )
    if model is None:
        if choose is not None:
            model = await asyncio.to_thread(choose)
        else:
            model = pick_model(settings.model_dir, settings.reviewed_data)
    service = NLUService(settings, model)
    service.start()
    try:
        await service.wait_ready()
        yield service.url
    finally:
        service.stop()
