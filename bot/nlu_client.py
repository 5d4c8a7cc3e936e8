"""Client for the Rasa NLU service's HTTP API (``POST /model/parse``, ``GET /status``).

One long-lived ``httpx.AsyncClient`` per client object: every question reuses
the same keep-alive connection. Errors are translated in one place into::

    NLUError
     ├── NLUUnavailable        nothing answers, or no model is loaded
     │    └── NLUTimeout       the service did not answer in time
     └── NLUResponseError      an HTTP error status or a body that is not a parse result
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

__all__ = [
    "IntentScore",
    "NLUClient",
    "NLUError",
    "NLUResponseError",
    "NLUTimeout",
    "NLUUnavailable",
    "ParseResult",
]


class NLUError(Exception):
    """Base class of every NLU client error."""


class NLUUnavailable(NLUError):
    """The NLU service cannot be reached or has no model loaded."""


class NLUTimeout(NLUUnavailable):
    """The NLU service did not answer within the timeout."""


class NLUResponseError(NLUError):
    """The NLU service answered with an error status or an unexpected body."""


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


class NLUClient:
    """Asks the NLU service what a text means."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Creates the client; ``transport`` lets unit tests inject one."""
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=8, max_connections=16),
        )

    async def parse(self, text: str) -> ParseResult:
        """Returns the intent ranking of ``text``."""
        with _mapped_errors():
            response = await self._client.post("/model/parse", json={"text": text})
            response.raise_for_status()
            return _parse_body(response.json())

    async def status(self) -> dict[str, Any]:
        """Returns the service's ``/status`` document (raises when no model is loaded)."""
        with _mapped_errors():
            response = await self._client.get("/status")
            response.raise_for_status()
            body = response.json()
        if not isinstance(body, dict) or not body.get("model_file"):
            raise NLUUnavailable("NLU service has no model loaded")
        return body

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
