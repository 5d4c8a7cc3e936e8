"""The NLU service is closed to strangers, heals when its model is deleted and dies with us.

Reproduced on main before: ``PUT /model`` and ``DELETE /model`` without a token
succeeded; after a ``DELETE`` the assistant answered from search alone for good
(the model watcher trusted its own idea of what was loaded); ``kill -9`` of the
parent left the Rasa child running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from bot.nlu_model.registry import ModelRegistry
from bot.nlu_model.service import CHILDREN_DIR, _started, end_stale_children
from bot.settings import PROJECT_ROOT
from bot.store.db import create_db_engine, upgrade_db
from tests.conftest import bot_settings
from tests.processes import wait_until
from tests.running_bot import RunningBot

QUESTION = "htx can toi thieu bao nhieu thanh vien"


def test_calls_without_the_token_are_refused(nlu_url: str, nlu_model: Path):
    token = os.environ["NLU_TOKEN"]
    with httpx.Client(base_url=nlu_url, timeout=30) as client:
        assert client.post("/model/parse", json={"text": QUESTION}).status_code == 401
        assert client.put("/model", json={"model_file": "/etc/passwd"}).status_code == 401
        assert client.delete("/model").status_code == 401
        assert client.delete("/model", params={"token": "guess"}).status_code == 401
        status = client.get("/status", params={"token": token})
    assert status.status_code == 200 and status.json()["model_file"] == nlu_model.name


def _ask(url: str) -> dict:
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post(
            "/chat/api/messages", json={"session": "nlu-heal-session-01", "text": QUESTION}
        )
    response.raise_for_status()
    return response.json()["replies"][0]


def test_answers_come_back_from_the_model_after_its_deletion(
    nlu_url: str, nlu_model: Path, tmp_path: Path
):
    database = tmp_path / "bot.store.db"
    engine = create_db_engine(f"sqlite:///{database}")
    upgrade_db(engine)
    ModelRegistry(engine, nlu_model.parent).register_existing(nlu_model, "test")
    engine.dispose()
    settings = bot_settings(
        nlu_url, database, model_dir=nlu_model.parent, nlu_model_poll_seconds=0.5
    )
    token = os.environ["NLU_TOKEN"]
    with RunningBot(settings) as bot:
        before = _ask(bot.url)
        assert "📘 Căn cứ:" in before["text"]
        with httpx.Client(base_url=nlu_url, timeout=30) as client:
            assert client.delete("/model", params={"token": token}).status_code == 204
            assert client.get("/status", params={"token": token}).status_code == 409
            deleted = time.monotonic()

            def loaded() -> bool:  # the keeper put the deployed model back
                return client.get("/status", params={"token": token}).status_code == 200

            wait_until(loaded, 15, "the model reloaded by the keeper")
        healed = time.monotonic() - deleted
        after = _ask(bot.url)
    assert healed < 15
    assert after["text"] == before["text"]  # the same answer, from the model again


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bot.nlu_model.service import NLUService
    from bot.settings import Settings
    service = NLUService(Settings(_env_file=None), Path(sys.argv[1]))
    service.start()
    print(service.process.pid, flush=True)
    time.sleep(600)
    """
)


def test_the_rasa_child_dies_when_its_parent_is_killed(nlu_model: Path):
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(nlu_model)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _running(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_until(lambda: not _running(child), 20, "the Rasa child to end with its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has ended; only its parent has not reaped it


@pytest.fixture
def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_a_stale_child_of_ours_is_ended_and_nothing_else(tmp_path: Path, dead_pid: int):
    sleeper = "import time; time.sleep(120)"

    def rasa_like(port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", sleeper, "rasa", "run", "--enable-api", "--port", str(port)],
            start_new_session=True,
        )

    stale, reused, guarded, own = (
        rasa_like(45671),
        rasa_like(45674),
        rasa_like(45673),
        rasa_like(45675),
    )
    stranger = subprocess.Popen([sys.executable, "-c", sleeper, "--port", "45672"])
    alive_parent = subprocess.Popen([sys.executable, "-c", sleeper])
    parent_started = _started(alive_parent.pid)
    assert parent_started is not None
    records = {
        "45671": {"child": stale.pid, "parent": dead_pid, "port": 45671},
        "45672": {"child": stranger.pid, "parent": dead_pid, "port": 45672},  # pid reused
        "45673": {"child": guarded.pid, "parent": alive_parent.pid, "port": 45673,
                  "parent_started": parent_started},
        # The parent's pid now names another process, started later.
        "45674": {"child": reused.pid, "parent": alive_parent.pid, "port": 45674,
                  "parent_started": parent_started - 1},
        "45675": {"child": own.pid, "parent": os.getpid(), "port": 45675,
                  "parent_started": _started(os.getpid())},
    }  # fmt: skip
    for port, record in records.items():
        (tmp_path / f"{port}.json").write_text(json.dumps(record))
    (tmp_path / "broken.json").write_text("{not json")
    processes = (stale, reused, guarded, own, stranger, alive_parent)
    try:
        assert end_stale_children(tmp_path) == [stale.pid, reused.pid]
        stale.wait(10)
        reused.wait(10)
        assert all(p.poll() is None for p in (stranger, guarded, own, alive_parent))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["45673.json", "45675.json"]
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_killed_nlu_child_is_started_again_and_answers_come_back(nlu_model: Path, tmp_path: Path):
    token = "child-token-0123456789"
    settings = bot_settings(
        "http://127.0.0.1:9",  # nothing there: the assistant starts its own child
        tmp_path / "bot.store.db",
        nlu_token=token,
        model_dir=nlu_model.parent,
        nlu_model_poll_seconds=0.5,
        reminders_enabled=False,
    )
    before = {p.name for p in CHILDREN_DIR.glob("*.json")}  # the session's own NLU service
    with RunningBot(settings) as bot:
        records = [
            json.loads(p.read_text())
            for p in CHILDREN_DIR.glob("*.json")
            if p.name not in before and json.loads(p.read_text())["parent"] == os.getpid()
        ]
        (record,) = records
        child_url = f"http://127.0.0.1:{record['port']}"
        before = _ask(bot.url)
        os.kill(record["child"], signal.SIGKILL)
        killed = time.monotonic()

        def serving() -> bool:
            try:
                status = httpx.get(f"{child_url}/status", params={"token": token}, timeout=2)
            except httpx.HTTPError:
                return False
            return status.status_code == 200 and status.json()["model_file"] == nlu_model.name

        wait_until(serving, 60, "the NLU child started again")
        back = time.monotonic() - killed
        health = httpx.get(f"{bot.url.rstrip('/')}/healthz", timeout=10).json()
        after = _ask(bot.url)
    assert health["nlu"] is True
    assert after["text"] == before["text"]
    assert back < 30, f"the model answered again {back:.1f} s after the kill"
    print(f"NLU child back {back:.1f} s after kill -9")
