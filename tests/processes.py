"""Running `coopbot` commands as processes, and waiting for a condition, in tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

COOPBOT = Path(sys.executable).parent / "coopbot"
# Settings a `coopbot run` child gets from its test only, never from the test's environment.
_RUN_SETTINGS = ("TELEGRAM_", "ZALO_", "WEB_", "OUTBOX_", "INBOX_", "SCHEDULER_", "DATABASE_")


def run_env(**settings: str) -> dict[str, str]:
    """The environment of a `coopbot` child, its settings from the test alone.

    This process's environment without channel, web, outbox, inbox, scheduler or
    database settings, then quiet logs, this checkout on the path and ``settings``.
    """
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(_RUN_SETTINGS)},
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        **settings,
    }


def start_run(cwd: Path, env: dict[str, str], log: IO[str]) -> subprocess.Popen[str]:
    """`coopbot run` (this checkout's) as a child process, its output going to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def coopbot(
    tmp_path: Path,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Runs ``coopbot *args`` on the SQLite file ``tmp_path/cli.db``, in ``tmp_path``.

    No developer settings leak in; NLU_URL points where nothing answers (these
    commands never need the NLU service; NLU_TOKEN, the test service's, stays);
    ``env`` adds settings.
    """
    environment = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "NLU_", "ADMIN_")) or k == "NLU_TOKEN"
        },
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "LOG_LEVEL": "WARNING",
        "NLU_URL": "http://127.0.0.1:9",
        **(env or {}),
    }
    return subprocess.run(
        [str(COOPBOT), *args],
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        input=stdin,
        timeout=timeout,
        cwd=tmp_path,
        check=False,
    )


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    state: Callable[[], str] | None = None,
) -> None:
    """Polls ``predicate`` every 20 ms; fails naming ``what`` (and ``state()``) on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; {state() if state else ''}")
        time.sleep(0.02)


def stop(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if the process is still running after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
