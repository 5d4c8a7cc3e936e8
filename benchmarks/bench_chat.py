"""Chat benchmark: members talking to the real bot through the fake Telegram and Zalo servers.

Run with `make bench-chat`. For each platform and run mode (Telegram and Zalo,
each by long polling and by webhook):

1. start the assistant as its own process (`coopbot run`, the NLU service
   started here once and shared), pointed at the fake Bot API server that
   runs in this process;
2. closed loop: 20 simulated members each send a held-out question, wait for
   the answer, pause (a think time, exponential with a mean of 1 s: faster than
   anyone types on a phone), send the next one; then again with no pause at all,
   which loads the bot flat out. End-to-end latency runs from the moment the
   update is handed to the fake server (queued for `getUpdates`, or about to be
   POSTed to the webhook) to the moment the bot's `sendMessage` arrives there;
3. burst: 1,000 questions from 100 members pushed at once; messages per
   second from the first push to the last answer;
4. the bot process's resident memory (peak, sampled every 100 ms).

With ``--baseline REF`` (``make bench-chat`` passes the last commit before the
durable inbox), the webhook modes are first run on that commit's code, from a
temporary git worktree sharing the environments and the model, so that the
inbox's cost shows in one run: both sets of figures are printed, then the
webhook throughput of this code as a share of the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import MemorySampler, cpu_seconds, describe
from bot.nlu_model.service import NLUService, free_port
from bot.settings import PROJECT_ROOT, load_settings
from nlu.build import TEST_DIR, current_model, load_examples
from tests.fakes import FakeTelegram, FakeZalo, ZaloCall
from tests.fakes.telegram import Call
from tests.processes import stop

TOKEN = "4242:bench-token"
ZALO_TOKEN = "4243:bench-zalo-token"
COOPBOT = PROJECT_ROOT / ".venv" / "bin" / "coopbot"


class Replies:
    """Counts the bot's successful sends per chat, as the fake server records them."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.by_chat: dict[str, list[float]] = defaultdict(list)
        self.total = 0
        self.last_at = 0.0

    def on_call(self, call: Call | ZaloCall) -> None:
        """Listener run by the fake server for each call it answered."""
        if call.method != "sendMessage" or call.status != 200:
            return
        with self.lock:
            self.by_chat[str(call.params["chat_id"])].append(call.at)
            self.total += 1
            self.last_at = max(self.last_at, call.at)
            self.lock.notify_all()

    def wait_chat(self, chat_id: str, count: int, timeout: float = 30.0) -> float:
        """Waits for the ``count``-th reply in a chat; returns when it arrived."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.by_chat[chat_id]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no reply #{count} in chat {chat_id}")
                self.lock.wait(left)
            return self.by_chat[chat_id][count - 1]

    def wait_total(self, count: int, timeout: float = 120.0) -> None:
        """Waits until ``count`` replies arrived in all."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.total < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"only {self.total} of {count} replies arrived")
                self.lock.wait(left)


class Platform:
    """One chat platform's fake server, as the benchmark drives it."""

    def __init__(self, name: str) -> None:
        """``telegram`` or ``zalo``."""
        self.name = name
        self.fake: FakeTelegram | FakeZalo = (
            FakeTelegram(tokens=(TOKEN,)) if name == "telegram" else FakeZalo(tokens=(ZALO_TOKEN,))
        )
        self.token = TOKEN if name == "telegram" else ZALO_TOKEN

    def env(self, webhook_url: str | None) -> dict[str, str]:
        """The bot's settings for this platform."""
        prefix = self.name.upper()
        env = {f"{prefix}_BOT_TOKEN": self.token, f"{prefix}_BASE_URL": self.fake.base_url}
        if webhook_url is not None:
            env[f"{prefix}_WEBHOOK_URL"] = f"{webhook_url}/{self.name}"
        return env

    def user(self, name: str) -> tuple[dict[str, Any], str]:
        """A new member and their chat id."""
        if isinstance(self.fake, FakeTelegram):
            user = self.fake.user(first_name=name)
        else:
            user = self.fake.user(display_name=name)
        return user, str(user["id"])

    def send(self, user: dict[str, Any], text: str) -> float:
        """Pushes a message from ``user``; returns when the fake queued it."""
        update = self.fake.send_user_message(self.token, user, text)
        if isinstance(self.fake, FakeTelegram):
            return self.fake.pushed_at(update["update_id"])
        return self.fake.pushed_at(update["message"]["message_id"])


@contextmanager
def running_bot(platform: Platform, mode: str, nlu_url: str, tmp: Path) -> Iterator[int]:
    """`coopbot run` as a child process in ``mode``; yields its pid, stops it with SIGTERM."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "WEB_"))},
        "NLU_URL": nlu_url,
        "DATABASE_URL": f"sqlite:///{tmp / f'{platform.name}-{mode}.db'}",
        "WEB_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **platform.env(f"http://127.0.0.1:{port}" if mode == "webhook" else None),
    }
    process = subprocess.Popen(
        [str(COOPBOT), "run"], env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=sys.stderr,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Web chat:"):
                break
        else:
            raise RuntimeError(f"coopbot run exited with {process.wait()}")
        threading.Thread(target=process.stdout.read, daemon=True).start()  # drain
        if mode == "webhook":
            while platform.fake.webhook(platform.token) is None:
                time.sleep(0.05)
        else:
            platform.fake.wait_for_request("getUpdates")
        yield process.pid
    finally:
        stop(process)


def closed_loop(
    platform: Platform,
    replies: Replies,
    questions: list[str],
    members: int,
    rounds: int,
    think: float = 0.0,
) -> tuple[list[float], float]:
    """Each member asks ``rounds`` questions one after another; returns latencies (ms), rate.

    After each answer a member pauses for a random think time (exponential, mean
    ``think`` seconds; 0: none, the members then load the bot flat out).
    """
    users = [platform.user(f"Thành viên {i} <&>") for i in range(members)]
    latencies: list[float] = []
    lock = threading.Lock()
    rng = random.Random(7)
    plans = [
        [
            (rng.choice(questions), rng.expovariate(1 / think) if think else 0.0)
            for _ in range(rounds)
        ]
        for _ in users
    ]

    def member(who: tuple[dict[str, Any], str], plan: list[tuple[str, float]]) -> None:
        user, chat_id = who
        for i, (question, pause) in enumerate(plan, start=1):
            time.sleep(pause)
            pushed = platform.send(user, question)
            arrived = replies.wait_chat(chat_id, i)
            with lock:
                latencies.append((arrived - pushed) * 1000)

    threads = [
        threading.Thread(target=member, args=(u, p)) for u, p in zip(users, plans, strict=True)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, len(latencies) / (time.perf_counter() - started)


def burst(
    platform: Platform, replies: Replies, questions: list[str], members: int, each: int
) -> float:
    """Pushes ``members * each`` questions at once; returns answered messages per second."""
    users = [platform.user(f"Thành viên {i}")[0] for i in range(members)]
    before = replies.total
    rng = random.Random(11)
    first = time.perf_counter()
    for _ in range(each):
        for user in users:
            platform.send(user, rng.choice(questions))
    replies.wait_total(before + members * each)
    return members * each / (replies.last_at - first)


def run_mode(
    name: str, nlu_url: str, nlu_pid: int, questions: list[str], args: argparse.Namespace
) -> str:
    """Benchmarks one platform in one receiving mode (``telegram-webhook``...); prints figures."""
    platform_name, _, mode = name.partition("-")
    platform = Platform(platform_name)
    with tempfile.TemporaryDirectory() as tmp, platform.fake as fake:
        replies = Replies()
        fake.add_listener(replies.on_call)
        with running_bot(platform, mode, nlu_url, Path(tmp)) as pid:
            memory = MemorySampler(pid)
            closed_loop(platform, replies, questions, args.members, 2)  # warm-up
            paced, _ = closed_loop(
                platform, replies, questions, args.members, args.rounds, think=args.think
            )
            pids = {"bot": pid, "NLU": nlu_pid, "fake server and members": os.getpid()}
            cpu_before = {name: cpu_seconds(p) for name, p in pids.items()}
            latencies, rate = closed_loop(platform, replies, questions, args.members, args.rounds)
            cpu = {name: (cpu_seconds(p) - cpu_before[name]) * 1000 / len(latencies)
                   for name, p in pids.items()}  # fmt: skip
            burst_rate = burst(platform, replies, questions, args.burst_members, args.burst_each)
            peak = memory.stop()
            rss_now = psutil.Process(pid).memory_info().rss / 2**20
        failed = [c for c in fake.calls("sendMessage") if c.status != 200]
        shares = ", ".join(f"{name} {ms:.1f}" for name, ms in cpu.items())
        total = args.burst_members * args.burst_each
        text = "\n".join([
            f"\n{name}: {args.members} concurrent members, {args.rounds} questions each",
            f"  think time {args.think:g} s      {describe(paced)}",
            f"  no think time       {describe(latencies)}; {rate:.0f} messages/s",
            f"  CPU ms per message  {shares}",
            f"  burst               {burst_rate:.0f} messages/s ({total} questions at once)",
            f"  bot process RSS     peak {peak:.0f} MB, at the end {rss_now:.0f} MB",
            f"  failed sends        {len(failed)}",
        ])  # fmt: skip
        print(text, flush=True)
        return text


def baseline_run(ref: str, modes: list[str], args: argparse.Namespace) -> str:
    """Runs this benchmark's ``modes`` on the code of git ``ref``; returns its printed figures."""
    with tempfile.TemporaryDirectory(prefix="bench-chat-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "add", "--detach", "-q",
                        str(tree), ref], check=True)  # fmt: skip
        try:
            for venv in (".venv", ".venv-nlu"):
                (tree / venv).symlink_to(PROJECT_ROOT / venv)
            env = {
                **os.environ,
                "PYTHONPATH": str(tree),
                "MODEL_DIR": str(PROJECT_ROOT / "models"),
                "NLU_VENV": str(PROJECT_ROOT / ".venv-nlu"),
            }
            env.pop("NLU_TOKEN", None)
            command = [sys.executable, str(tree / "benchmarks" / "bench_chat.py"),
                       "--modes", ",".join(modes), "--members", str(args.members),
                       "--rounds", str(args.rounds), "--think", str(args.think),
                       "--burst-members", str(args.burst_members),
                       "--burst-each", str(args.burst_each)]  # fmt: skip
            done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True,
                                  check=False)  # fmt: skip
            if done.returncode != 0:
                sys.exit(f"baseline run failed:\n{done.stderr[-2000:]}")
            return done.stdout
        finally:
            subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "remove", "--force",
                            str(tree)], check=False)  # fmt: skip
            shutil.rmtree(tree, ignore_errors=True)


def flat_out_rates(output: str) -> dict[str, float]:
    """``{mode: messages/s}`` of the no-think-time runs in a printed report."""
    rates, mode = {}, None
    for line in output.splitlines():
        if header := re.match(r"^(\w+-\w+): ", line):
            mode = header.group(1)
        elif mode and (rate := re.search(r"no think time .*; (\d+) messages/s", line)):
            rates[mode] = float(rate.group(1))
    return rates


def main() -> None:
    """Starts the NLU service once and benchmarks polling, then webhook."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20, help="questions per member")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause after an answer, s")
    parser.add_argument("--burst-members", type=int, default=100)
    parser.add_argument("--burst-each", type=int, default=10)
    parser.add_argument(
        "--modes", default="telegram-polling,telegram-webhook,zalo-polling,zalo-webhook"
    )
    parser.add_argument("--baseline", help="git ref whose webhook modes run first, to compare")
    args = parser.parse_args()
    modes = args.modes.split(",")
    baseline = ""
    if args.baseline:
        hooks = [m for m in modes if m.endswith("-webhook")]
        print(f"baseline: {', '.join(hooks)} on {args.baseline} (before the durable inbox)")
        baseline = baseline_run(args.baseline, hooks, args)
        print(baseline)
        print("this code:")

    settings = load_settings()
    model = current_model(settings.model_dir)
    if model is None:
        sys.exit("no trained model: run `make model` first")
    questions = [q for items in load_examples(TEST_DIR).values() for q in items]
    service = NLUService(settings, model)
    os.environ["NLU_TOKEN"] = service.token  # each `coopbot run` below sends it
    service.start()
    report: list[str] = []
    try:
        asyncio.run(service.wait_ready(timeout=180))
        print(f"NLU service ready ({model.name}); {os.cpu_count()} CPUs")
        for mode in modes:
            assert service.process is not None
            report.append(run_mode(mode, service.url, service.process.pid, questions, args))
    finally:
        service.stop()
    if baseline:
        before, now = flat_out_rates(baseline), flat_out_rates("\n".join(report))
        for mode, rate in before.items():
            if mode in now:
                print(f"{mode} with the durable inbox: {now[mode]:.0f} messages/s, "
                      f"{now[mode] / rate:.0%} of {rate:.0f} before it")  # fmt: skip


if __name__ == "__main__":
    main()
