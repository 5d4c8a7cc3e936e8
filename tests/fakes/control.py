"""The shared state of a fake Bot API server and the test API that steers and observes it.

`FakeControls` holds what the server thread and the test thread share, behind one
lock: the record of calls, the failures and delays queued for methods, the blocked
chats, the webhook deliveries. Its methods are what tests call from their own
thread: ``calls``, ``wait_for``, ``fail_next``, ``slow``, ``wait_for_request``,
``add_listener``, ``block``, ``webhook``, ``wait_for_deliveries``, ``reset``.
`tests.fakes.server.FakeBotServer` adds the HTTP server on top.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from tests.fakes.wire import BotT, Context, Failure, JSONDict, RecordedCall

CallT = TypeVar("CallT", bound=RecordedCall)
DeliveryT = TypeVar("DeliveryT")
Handler = Callable[[Context[Any]], Any]


class FakeControls(Generic[CallT, DeliveryT, BotT]):
    """The shared state and test API of a fake Bot API server.

    Args:
        label: The platform's name, for thread names and error messages.
        call_type: The class of the recorded calls.
        bots: The bot accounts by token.
        methods: The Bot API method handlers by canonical name; a request names a
            method case-insensitively. A handler runs under the lock and returns the
            ``result`` (or a `tests.fakes.wire.Later` to await outside the lock), or
            raises `tests.fakes.wire.ApiError`.
    """

    def __init__(
        self,
        label: str,
        call_type: type[CallT],
        bots: dict[str, BotT],
        methods: Mapping[str, Handler],
    ) -> None:
        """Sets up the shared state."""
        self._label = label
        self._call_type = call_type
        self._bots = bots
        self._methods = {name.lower(): (name, handler) for name, handler in methods.items()}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._calls: list[CallT] = []
        self._failures: dict[str, deque[Failure]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._received: dict[str, int] = {}
        self._deliveries: list[DeliveryT] = []
        self._listeners: list[Callable[[CallT], None]] = []
        self._blocked: set[int | str] = set()
        self._pushed_at: dict[int | str, float] = {}

    # ------------------------------------------------------------- test API

    def _bot(self, token: str) -> BotT:
        try:
            return self._bots[token]
        except KeyError:
            raise ValueError(f"the fake does not know the token {token!r}") from None

    def _method_name(self, method: str) -> str:
        known = self._methods.get(method.lower())
        if known is None:
            raise ValueError(f"the fake does not implement {method!r}")
        return known[0]

    def _summary(self, limit: int = 15) -> str:
        lines = []
        for call in self._calls[-limit:]:
            params = json.dumps(call.params, ensure_ascii=False, default=str)
            if len(params) > 160:
                params = params[:157] + "..."
            outcome = "ok" if call.ok else call.response.get("description")
            lines.append(f"  {call.method} -> {call.status} {outcome} {params}")
        return "\n".join(lines) or "  (no calls)"

    def fail_next(
        self,
        method: str,
        status: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Makes the next ``times`` calls of ``method`` answer this error.

        ``retry_after`` goes to ``parameters.retry_after``, as in a 429 answer.
        """
        name = self._method_name(method)
        with self._lock:
            failures = self._failures.setdefault(name, deque())
            failures.extend(Failure(status, description, retry_after) for _ in range(times))

    def slow(self, method: str, seconds: float, times: int = 1) -> None:
        """Holds the answers to the next ``times`` calls of ``method`` for ``seconds``."""
        name = self._method_name(method)
        with self._lock:
            self._delays.setdefault(name, deque()).extend([seconds] * times)

    def block(self, chat_id: int | str) -> None:
        """Makes sends to ``chat_id`` fail with 403, as for a user who blocked the bot."""
        with self._lock:
            self._blocked.add(chat_id)

    def add_listener(self, listener: Callable[[CallT], None]) -> None:
        """Calls ``listener(call)`` on the server thread after each call is recorded."""
        with self._lock:
            self._listeners.append(listener)

    def calls(self, method: str | None = None, token: str | None = None) -> list[CallT]:
        """The requests answered so far, oldest first, optionally filtered."""
        wanted = method.lower() if method else None
        with self._lock:
            return [
                call
                for call in self._calls
                if (wanted is None or call.method.lower() == wanted)
                and (token is None or call.token == token)
            ]

    def pushed_at(self, key: int | str) -> float:
        """``time.perf_counter()`` when an update was (first) pushed, by its key.

        The key is the ``update_id`` for Telegram, the message id for Zalo.
        """
        with self._lock:
            return self._pushed_at[key]

    def webhook(self, token: str) -> JSONDict | None:
        """The webhook set for ``token`` (``url``, ``secret_token``, ...), or None."""
        bot = self._bot(token)
        with self._lock:
            return dict(bot.webhook) if bot.webhook is not None else None

    def webhook_deliveries(self) -> list[DeliveryT]:
        """Every webhook delivery so far, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def wait_for(
        self, predicate: Callable[[CallT], bool], timeout: float = 10.0, count: int = 1
    ) -> list[CallT]:
        """Waits until at least ``count`` calls match ``predicate``; returns the matches.

        Raises:
            AssertionError: Fewer calls matched within ``timeout`` seconds; the message
                lists the latest calls.
        """
        deadline = time.monotonic() + timeout
        matches: list[CallT] = []
        seen = 0
        calls = self._calls
        with self._changed:
            while True:
                if calls is not self._calls:  # reset() replaced the list
                    calls, seen, matches = self._calls, 0, []
                for index in range(seen, len(calls)):
                    if predicate(calls[index]):
                        matches.append(calls[index])
                seen = len(calls)
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{len(matches)} of {count} expected calls after {timeout} s; "
                        f"latest calls:\n{self._summary()}"
                    )
                self._changed.wait(remaining)

    def wait_for_deliveries(self, count: int = 1, timeout: float = 10.0) -> list[DeliveryT]:
        """Waits until at least ``count`` webhook deliveries were made; returns them all."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._deliveries) >= count, timeout):
                raise AssertionError(
                    f"{len(self._deliveries)} of {count} webhook deliveries after "
                    f"{timeout} s; latest calls:\n{self._summary()}"
                )
            return list(self._deliveries)

    def wait_for_request(self, method: str, count: int = 1, timeout: float = 10.0) -> None:
        """Waits until ``count`` requests of ``method`` arrived (answered or not)."""
        known = self._methods.get(method.lower())
        name = known[0] if known is not None else method
        with self._changed:
            if not self._changed.wait_for(lambda: self._received.get(name, 0) >= count, timeout):
                raise AssertionError(f"no {name} request #{count} within {timeout} s")

    def reset(self) -> None:
        """Forgets calls, queued updates, webhooks, failures, delays, blocks and deliveries.

        Listeners stay. Subclasses forget their own state too.
        """
        with self._lock:
            self._calls = []
            self._pushed_at.clear()
            self._failures.clear()
            self._delays.clear()
            self._received.clear()
            self._blocked.clear()
            self._deliveries = []
            for bot in self._bots.values():
                bot.updates.clear()
                bot.webhook = None
            self._changed.notify_all()
