"""`coopbot run` killed with -9 during a burst of Telegram updates loses none it acknowledged.

Webhook mode: the fake Bot API posts 120 updates to ``/telegram``, one at a
time; every 200 is an acknowledgement (Telegram never sends that update again).
Polling mode: a ``getUpdates`` call with a higher offset acknowledges the
updates before it. The fake holds the replies (``sendMessage``), so the process
is killed while most updates are still unanswered; after a restart every
acknowledged update is answered, and only an update whose reply was already on
its way at the kill may be answered twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.nlu_model.service import free_port
from bot.store.db import InboxEvent, create_db_engine
from tests.fakes import FakeTelegram
from tests.processes import run_env, start_run, wait_until

BURST = 120
QUESTION = "HTX cần tối thiểu bao nhiêu thành viên?"


def _answered(fake: FakeTelegram, token: str) -> Counter[str]:
    """Replies the fake has completed, per chat."""
    return Counter(str(c.params["chat_id"]) for c in fake.calls("sendMessage", token) if c.ok)


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _inbox(database: Path) -> dict[str, str]:
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(InboxEvent.event_key, InboxEvent.status)).all()
    finally:
        engine.dispose()
    return {key: status for key, status in rows}


@pytest.mark.parametrize("mode", ["webhook", "polling"])
def test_kill_minus_nine_during_a_burst_loses_no_acknowledged_update(
    nlu_url: str, tmp_path: Path, mode: str
):
    token = f"5{len(mode)}0077:inbox-burst"
    database = tmp_path / "bot.store.db"
    port = free_port()
    with contextlib.ExitStack() as stack, FakeTelegram(tokens=(token,)) as fake:
        env = run_env(
            NLU_URL=nlu_url,
            DATABASE_URL=f"sqlite:///{database}",
            TELEGRAM_BOT_TOKEN=token,
            TELEGRAM_BASE_URL=fake.base_url,
            WEB_PORT=str(port),
            INBOX_LEASE_SECONDS="3",
            INBOX_SWEEP_SECONDS="0.5",
            REMINDERS_ENABLED="false",
        )
        if mode == "webhook":
            env["TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/telegram"
        log = stack.enter_context((tmp_path / "run.log").open("a"))

        def start() -> subprocess.Popen[str]:
            return start_run(tmp_path, env, log)

        def state() -> str:
            return f"inbox {Counter(_inbox(database).values())}; see {tmp_path / 'run.log'}"

        process = start()
        try:
            wait_until(lambda: _up(port), 90, "the web server", state)
            if mode == "webhook":
                wait_until(lambda: fake.webhook(token) is not None, 90, "the webhook", state)
            else:
                fake.wait_for(lambda c: c.method == "getUpdates", timeout=90)
            fake.slow("sendMessage", 2.0, times=10 * BURST)  # replies take their time
            chat_of: dict[str, str] = {}
            for index in range(BURST):
                user = fake.user(first_name=f"Thành viên {index}")
                update = fake.send_user_message(token, user, QUESTION)
                chat_of[str(update["update_id"])] = str(user["id"])
            if mode == "webhook":
                deliveries = fake.wait_for_deliveries(BURST, timeout=60)
                assert [d.status for d in deliveries] == [200] * BURST  # all acknowledged
            else:  # acknowledged by a later getUpdates's offset
                wait_until(lambda: fake.unconfirmed(token) == 0, 60, "the burst confirmed", state)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
        time.sleep(2.5)  # replies held by the fake at the kill complete now
        before = _answered(fake, token)
        inbox = _inbox(database)
        assert len(inbox) == BURST, "every acknowledged update was stored before its 200"
        assert sum(before.values()) < BURST, "the kill came before the burst was answered"
        # Replies on their way at the kill: their updates were not marked handled.
        in_flight = {chat_of[key] for key, status in inbox.items() if status != "done"} & set(
            before
        )

        process = start()
        try:
            wait_until(
                lambda: (
                    set(_answered(fake, token)) == set(chat_of.values())
                    and all(s == "done" for s in _inbox(database).values())
                ),
                90,
                "every acknowledged update answered after the restart",
                state,
            )
        finally:
            process.terminate()
            process.wait(30)
    answered: dict[str, Any] = dict(_answered(fake, token))
    assert set(answered) == set(chat_of.values())
    twice = {chat for chat, count in answered.items() if count > 1}
    assert twice <= in_flight, "only a reply on its way at the kill is sent again"
