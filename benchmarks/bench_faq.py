"""FAQ page benchmark: how long the server takes to render ``/faq/<id>`` and ``/faq``, warm.

Run with ``.venv/bin/python benchmarks/bench_faq.py``. The pages are served by
their real routes behind the real security headers (the ones ``create_web_app``
mounts) by uvicorn, configured as ``coopbot run`` configures it, in a child
process pinned to two cores. The full ``coopbot run`` is not started: it would
also start the NLU service, which these pages never ask (the search box does;
its answer time is the answer service's, measured by bench_chat).

Server time is measured inside the child, from the request reaching the app to
the response start (the page is rendered before that), and sent back in a
``Server-Timing`` header; the round trip over loopback HTTP is printed too.
After a warm-up, every entry's page is requested in turn until ``--requests``
requests, one at a time (keep-alive). Target: ``/faq/<id>`` p99 <= 30 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import percentile
from bot.nlu_model.service import free_port

TARGET_P99_MS = 30.0


def serve(port: int, cores: int) -> None:
    """The child: the FAQ routes behind the security headers and a timer, served by uvicorn."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.datastructures import MutableHeaders
    from starlette.middleware import Middleware
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from bot.app import Knowledge, build_answers
    from bot.settings import Settings
    from bot.web import SecurityHeaders
    from bot.web.faq import faq_routes

    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[:cores])

    class Timer:
        """Adds ``Server-Timing: app;dur=<ms>`` (request in to response start)."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            started = time.perf_counter()

            async def timed(message: Message) -> None:
                if message["type"] == "http.response.start":
                    spent = (time.perf_counter() - started) * 1000
                    MutableHeaders(scope=message).append("Server-Timing", f"app;dur={spent:.3f}")
                await send(message)

            await self.app(scope, receive, timed)

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, public_base_url="https://hoidap.example.vn", telegram_bot_username="HtxBot"
    )
    answers = build_answers(settings, Knowledge.load(), None, None)
    app = Starlette(
        routes=faq_routes(answers, settings),
        middleware=[Middleware(Timer), Middleware(SecurityHeaders)],
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    uvicorn.Server(config).run()


def _measure(client: httpx.Client, paths: list[str], count: int) -> tuple[list[float], list[float]]:
    server, round_trip = [], []
    for index in range(count):
        path = paths[index % len(paths)]
        started = time.perf_counter()
        response = client.get(path)
        round_trip.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
        timing = response.headers["server-timing"]
        server.append(float(timing.split("dur=", 1)[1]))
    return server, round_trip


def _line(label: str, server: list[float], round_trip: list[float]) -> str:
    return (
        f"{label:<22} n={len(server):>5}  server p50 {percentile(server, 50):6.2f} ms  "
        f"p99 {percentile(server, 99):6.2f} ms  max {max(server):6.2f} ms  |  round trip "
        f"p50 {percentile(round_trip, 50):6.2f} ms  p99 {percentile(round_trip, 99):6.2f} ms"
    )


def main() -> None:
    """Starts the child server, warms it up, measures, prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests to /faq/<id>")
    parser.add_argument("--cores", type=int, default=2, help="cores the server may use")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.cores)
        return

    from knowledge.base import load_knowledge_base

    entries = [f"/faq/{entry.id}" for entry in load_knowledge_base()]
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--cores", str(args.cores)]
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.get("/faq")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or child.poll() is not None:
                        raise SystemExit("the FAQ server did not start") from None
                    time.sleep(0.2)
            _measure(client, entries, 3 * len(entries))  # warm-up: each page and QR code once
            _measure(client, ["/faq"], 100)
            print(f"{len(entries)} entries, server on {args.cores} core(s), one request at a time")
            server, round_trip = _measure(client, entries, args.requests)
            print(_line("/faq/<id>", server, round_trip))
            p99 = percentile(server, 99)
            verdict = "met" if p99 <= TARGET_P99_MS else "MISSED"
            print(f"  target p99 <= {TARGET_P99_MS:.0f} ms: {verdict}")
            shared = [f"{path}?t=lop2026" for path in entries]
            print(_line("/faq/<id>?t=<code>", *_measure(client, shared, args.requests // 3)))
            print(_line("/faq", *_measure(client, ["/faq"], args.requests // 3)))
            print(_line("/luat/<doc>/<article>", *_measure(client, ["/luat/17-2023-qh15/33"], 500)))
    finally:
        child.terminate()
        child.wait(timeout=30)


if __name__ == "__main__":
    main()
