"""Runs the Rasa NLU service as a child process on a free loopback port.

``ask``, ``chat`` and ``run`` use :func:`ensure_nlu_service`: when an NLU
service already answers at ``NLU_URL`` (with ``NLU_TOKEN``) it is used as is;
otherwise a child ``rasa run --enable-api`` is started with the current model
and stopped when the caller is done.

A child is started with ``--auth-token`` (``NLU_TOKEN``, else a random token
per start): nobody else on the machine can parse, load or delete its model. It
dies with its parent: it gets ``SIGTERM`` when the parent dies (Linux's
parent-death signal, also after a ``kill -9``), and each child is recorded in
``var/nlu-children/`` so that a later start-up ends a child whose parent is gone
(:func:`end_stale_children`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.nlu_model.client import NLUAuthError, NLUClient
from bot.settings import PROJECT_ROOT, Settings
from bot.tasks import cancel_and_wait
from nlu.build import (
    NLUBuildError,
    current_model,
    latest_model,
    nlu_env,
    rasa_executable,
    train_model,
)

__all__ = [
    "NLUEndpoint",
    "NLUService",
    "end_stale_children",
    "ensure_nlu_service",
    "free_port",
    "pick_model",
]

log = logging.getLogger(__name__)

CHILDREN_DIR = PROJECT_ROOT / "var" / "nlu-children"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class NLUEndpoint:
    """Where an NLU service answers, and its auth token (never logged)."""

    url: str
    token: str | None = None

    def client(self, timeout: float = 2.0) -> NLUClient:
        """A client of this service."""
        return NLUClient(self.url, timeout=timeout, token=self.token)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Asks Linux to send SIGTERM to this process when its parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _started(pid: int) -> int | None:
    """When the process started (clock ticks since boot): a pid reused later starts later."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def end_stale_children(folder: Path = CHILDREN_DIR) -> list[int]:
    """Ends the NLU children whose parent process is gone; returns their pids.

    A child whose recorded parent still runs (the same pid started at the same
    moment: pids are reused) is left alone, this process's own children too. A
    record is trusted only while its pid still runs ``rasa run --enable-api`` on
    the recorded port: anything else is left alone.
    """
    ended = []
    for record in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            child, parent, port = int(data["child"]), int(data["parent"]), str(data["port"])
            parent_started = data.get("parent_started")
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)
            continue
        if _alive(parent) and (parent_started is None or _started(parent) == parent_started):
            continue  # a running assistant's child (maybe this process's own)
        command = _cmdline(child)
        ours = "--enable-api" in command and port in command and any("rasa" in c for c in command)
        if _alive(child) and ours:
            log.warning("ending a stale NLU service (pid %s, port %s) left by pid %s",
                        child, port, parent)  # fmt: skip
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
            ended.append(child)
        record.unlink(missing_ok=True)
    return ended


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

    def __init__(
        self, settings: Settings, model: Path, port: int | None = None, token: str | None = None
    ) -> None:
        """Prepares (does not start) a service for ``model``.

        ``token``: its auth token (default: ``NLU_TOKEN``, else a random one).
        """
        self.settings = settings
        self.model = model
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        configured = settings.nlu_token.get_secret_value() if settings.nlu_token else None
        self.token = token or configured or secrets.token_urlsafe(32)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = PROJECT_ROOT / "var" / f"nlu-service-{self.port}.log"
        self._record = CHILDREN_DIR / f"{self.port}.json"

    @property
    def endpoint(self) -> NLUEndpoint:
        """Its URL and token."""
        return NLUEndpoint(self.url, self.token)

    def command(self) -> list[str]:
        """The command line of the service."""
        rasa = rasa_executable(self.settings.nlu_venv)
        return [
            str(rasa), "run", "--enable-api",
            "--model", str(self.model),
            "--interface", "127.0.0.1",
            "--port", str(self.port),
            "--auth-token", self.token,
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
                preexec_fn=_die_with_parent,
            )
        CHILDREN_DIR.mkdir(parents=True, exist_ok=True)
        record = {
            "child": self.process.pid,
            "parent": os.getpid(),
            "parent_started": _started(os.getpid()),
            "port": self.port,
        }
        self._record.write_text(json.dumps(record), encoding="utf-8")
        log.info("NLU service starting on %s (pid %s)", self.url, self.process.pid)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Waits until the service answers with its model loaded."""
        deadline = time.monotonic() + (timeout or self.settings.nlu_start_timeout)
        async with self.endpoint.client(timeout=2.0) as client:
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

    async def supervise(self, every: float = 1.0) -> None:
        """Starts the service again (same port and token) whenever it dies; runs until cancelled.

        The model watcher then finds it serving the deployed model (it starts with
        the model it was given; a newer deployed one is swapped in).
        """
        failures = 0
        while True:
            await asyncio.sleep(every)
            if self.process is None or self.process.poll() is None:
                continue
            log.error(
                "NLU service (pid %s) exited with code %s; starting it again",
                self.process.pid,
                self.process.returncode,
            )
            await asyncio.sleep(min(2.0**failures - 1, 30.0))
            try:
                self.start()
                await self.wait_ready()
                failures = 0
                log.info("NLU service on %s is back", self.url)
            except (NLUBuildError, OSError) as exc:
                failures += 1
                log.error("NLU service did not come back: %s", exc)

    def stop(self) -> None:
        """Stops the process: SIGTERM, then SIGKILL after five seconds."""
        if self.process is None or self.process.poll() is not None:
            self._record.unlink(missing_ok=True)
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
        self._record.unlink(missing_ok=True)
        log.info("NLU service on %s stopped", self.url)


@asynccontextmanager
async def ensure_nlu_service(
    settings: Settings,
    *,
    start: bool = True,
    model: Path | None = None,
    train_if_missing: bool = False,
    choose: Callable[[], Path] | None = None,
) -> AsyncIterator[NLUEndpoint]:
    """Yields an NLU service, starting a child one if none answers at NLU_URL.

    With ``train_if_missing`` (``coopbot run``), a model is trained first when
    ``MODEL_DIR`` holds none. ``choose`` picks the model to serve (``coopbot
    run``: the model registry's); by default the current data's model.
    """
    token = settings.nlu_token.get_secret_value() if settings.nlu_token else None
    given = NLUEndpoint(settings.nlu_base_url, token)
    async with given.client(timeout=1.0) as probe:
        try:
            ready = await probe.loaded_model() is not None
        except NLUAuthError as exc:
            raise NLUBuildError(
                f"the NLU service at {settings.nlu_base_url} refuses our token: set NLU_TOKEN "
                "to its --auth-token"
            ) from exc
        except Exception:  # nothing answers there
            ready = False
        if ready:
            yield given
            return
    if not start:
        yield given
        return
    await asyncio.to_thread(end_stale_children)
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
    supervisor: asyncio.Task[None] | None = None
    try:
        await service.wait_ready()
        supervisor = asyncio.create_task(service.supervise(), name="nlu-supervisor")
        yield service.endpoint
    finally:
        await cancel_and_wait(supervisor)
        service.stop()
