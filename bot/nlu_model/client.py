"""Client for the Rasa NLU service's HTTP API (``POST /model/parse``, ``GET /status``).

One long-lived ``httpx.AsyncClient`` per client object: every question reuses
the same keep-alive connection. Errors are translated in one place into::

    NLUError
     ├── NLUUnavailable        nothing answers, or no model is loaded
     │    └── NLUTimeout       the service did not answer in time
     └── NLUResponseError      an HTTP error status or a body that is not a parse result
          └── NLUAuthError     the service refuses our token (HTTP 401/403)

The service runs with ``--auth-token``; the client sends the token as Rasa
expects it, in the ``token`` query parameter, and never puts it in a message.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

__all__ = [
    "IntentScore",
    "NLUAuthError",
    "NLUClient",
    "NLUError",
    "NLUResponseError",
    "NLUTimeout",
    "NLUUnavailable",
    "ParseResult",
    "SwapGate",
]


class NLUError(Exception):
    """Base class of every NLU client error."""


class NLUUnavailable(NLUError):
    """The NLU service cannot be reached or has no model loaded."""


class NLUTimeout(NLUUnavailable):
    """The NLU service did not answer within the timeout."""


class NLUResponseError(NLUError):
    """The NLU service answered with an error status or an unexpected body."""


class NLUAuthError(NLUResponseError):
    """The NLU service refuses the token (wrong or missing ``NLU_TOKEN``)."""


@dataclass(frozen=True, slots=True)
class IntentScore:
    """One intent with the classifier's confidence."""

    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The classifier's verdict on one text: best intent first in ``ranking``."""

    intent: str | None
    confidence: float
    ranking: tuple[IntentScore, ...]


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise NLUTimeout(f"NLU service timed out: {exc!r}") from exc
    except httpx.TransportError as exc:
        raise NLUUnavailable(f"NLU service unreachable: {exc!r}") from exc
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        if status in (409, 502, 503, 504):  # 409: Rasa has no model loaded
            raise NLUUnavailable(f"NLU service not ready (HTTP {status})") from exc
        if status in (401, 403):
            raise NLUAuthError(f"NLU service refused the token (HTTP {status})") from exc
        raise NLUResponseError(f"NLU service answered HTTP {status}") from exc
    except ValueError as exc:  # JSON decoding
        raise NLUResponseError(f"NLU service sent a malformed body: {exc}") from exc


def _parse_body(body: Any) -> ParseResult:
    if not isinstance(body, dict):
        raise NLUResponseError("parse result is not a JSON object")
    intent = body.get("intent") or {}
    ranking_raw = body.get("intent_ranking") or []
    try:
        ranking = tuple(IntentScore(str(r["name"]), float(r["confidence"])) for r in ranking_raw)
        name = intent.get("name")
        confidence = float(intent.get("confidence") or 0.0)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NLUResponseError(f"parse result has an unexpected shape: {exc}") from exc
    return ParseResult(str(name) if name else None, confidence, ranking)


class SwapGate:
    """Lets questions through, except while a model is being swapped in.

    A swap waits for the questions in flight, holds new ones back, loads the
    model, then lets them through to the new model: none fails for the swap.
    A question held back longer than ``max_wait`` goes on (and may time out).
    """

    def __init__(self, max_wait: float = 30.0) -> None:
        """``max_wait``: the longest a question is held back, in seconds."""
        self.max_wait = max_wait
        self._active = 0
        self._closed = False
        self._condition: asyncio.Condition | None = None

    def _cond(self) -> asyncio.Condition:
        if self._condition is None:
            self._condition = asyncio.Condition()
        return self._condition

    @asynccontextmanager
    async def passage(self) -> AsyncIterator[None]:
        """Held around each question."""
        cond = self._cond()
        async with cond:
            if self._closed:
                with suppress(TimeoutError):
                    await asyncio.wait_for(cond.wait_for(lambda: not self._closed), self.max_wait)
            self._active += 1
        try:
            yield
        finally:
            async with cond:
                self._active -= 1
                cond.notify_all()

    @asynccontextmanager
    async def closed(self) -> AsyncIterator[None]:
        """Held around a swap: waits for the questions in flight, holds new ones back."""
        cond = self._cond()
        async with cond:
            await cond.wait_for(lambda: not self._closed)
            self._closed = True
            await cond.wait_for(lambda: self._active == 0)
        try:
            yield
        finally:
            async with cond:
                self._closed = False
                cond.notify_all()


class NLUClient:
    """Asks the NLU service what a text means."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 2.0,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Creates the client; ``token``: the service's auth token; ``transport``: unit tests."""
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            params={"token": token} if token else None,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=8, max_connections=16),
        )
        self.gate = SwapGate()
        self.calls: Counter[str] = Counter()  # parse calls by result: "ok", "error" (metrics)

    async def parse(self, text: str) -> ParseResult:
        """Returns the intent ranking of ``text``."""
        async with self.gate.passage():
            try:
                with _mapped_errors():
                    response = await self._client.post("/model/parse", json={"text": text})
                    response.raise_for_status()
                    result = _parse_body(response.json())
            except NLUError:
                self.calls["error"] += 1
                raise
            self.calls["ok"] += 1
            return result

    async def swap_model(self, model: Path, *, timeout: float = 120.0) -> None:
        """Loads ``model`` into the running service (Rasa's ``PUT /model``) between questions.

        Questions asked meanwhile wait and then go to the new model. Raises
        NLUError when the service refuses the model (it keeps the old one).
        """
        async with self.gate.closed():
            with _mapped_errors():
                response = await self._client.put(
                    "/model", json={"model_file": str(model)}, timeout=timeout
                )
                if response.status_code in (401, 403):
                    raise NLUAuthError(
                        f"NLU service refused the token (HTTP {response.status_code})"
                    )
                if response.status_code >= 400:
                    raise NLUResponseError(
                        f"NLU service refused {model.name} (HTTP {response.status_code}): "
                        f"{response.text[:300]}"
                    )
            loaded = (await self.status()).get("model_file")
        if loaded != model.name:
            raise NLUResponseError(f"NLU service reports {loaded!r} after loading {model.name}")

    async def status(self) -> dict[str, Any]:
        """Returns the service's ``/status`` document (raises when no model is loaded)."""
        with _mapped_errors():
            response = await self._client.get("/status")
            response.raise_for_status()
            body = response.json()
        if not isinstance(body, dict) or not body.get("model_file"):
            raise NLUUnavailable("NLU service has no model loaded")
        return body

    async def loaded_model(self) -> str | None:
        """The file name of the model the service serves; None when it has none loaded."""
        try:
            return str((await self.status())["model_file"])
        except NLUUnavailable:
            return None

    async def is_ready(self) -> bool:
        """Tells whether the service answers with a model loaded."""
        try:
            await self.status()
        except NLUError:
            return False
        return True

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
