"""Runs the real assistant (``bot.web.serve``) in a background thread, for end-to-end tests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from bot.settings import Settings
from bot.web import serve


class RunningBot:
    """``serve(settings)`` on its own event loop in a thread; ``stop()`` shuts it down cleanly."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="coopbot", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def ready(url: str) -> None:
            self.url = url
            self._ready.set()

        await serve(self.settings, self._stop, on_ready=ready)

    def start(self, timeout: float = 60.0) -> RunningBot:
        """Starts the bot and waits until the web app answers."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the bot did not start in time")
        if self._error is not None:
            raise RuntimeError("the bot failed to start") from self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Asks the bot to shut down and waits for it; re-raises a crash."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the bot did not stop in time")
        if self._error is not None:
            raise RuntimeError("the bot crashed") from self._error

    def call(self, coroutine: Any, timeout: float = 30.0) -> Any:
        """Runs a coroutine on the bot's loop (e.g. to inspect its state) and returns its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def __enter__(self) -> RunningBot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
