"""Client for the Zalo Bot Platform's HTTP API (Telegram-like: ``/bot{token}/{method}``).

One long-lived ``httpx.AsyncClient`` per client. Errors are mapped in one place
(``_raise_for``) into::

    ZaloError
     ├── ZaloBadToken       401/404: the token is wrong or revoked
     ├── ZaloForbidden      403: the user blocked the bot or cannot be messaged
     ├── ZaloRateLimited    429 (or ``parameters.retry_after``): wait ``retry_after`` s
     ├── ZaloTimeout        no answer in time (and getUpdates' own 408: nothing came)
     ├── ZaloBadRequest     400 and other 4xx: the request itself is wrong
     └── ZaloServerError    5xx, connection failures, bodies that are not the envelope

Retries: a request is retried only where repeating it cannot send a message
twice: every method except the sends (``sendMessage``, ``sendPhoto``) on connection
failures, timeouts, 5xx and 429; sends only when the server cannot have
acted on them (the connection was never made, or it answered 429).

The token is part of every URL: it never appears in an exception message or a
log line (``_redact``), and the ``httpx`` logger is kept at WARNING.
"""

from __future__ import annotations

import asyncio
import logging
import random
from types import TracebackType
from typing import Any, Final, NoReturn, Self

import httpx

__all__ = [
    "DEFAULT_ZALO_BASE_URL",
    "ZALO_TEXT_LIMIT",
    "ZaloBadRequest",
    "ZaloBadToken",
    "ZaloClient",
    "ZaloError",
    "ZaloForbidden",
    "ZaloRateLimited",
    "ZaloServerError",
    "ZaloTimeout",
]

log = logging.getLogger(__name__)

DEFAULT_ZALO_BASE_URL: Final = "https://bot-api.zaloplatforms.com"
ZALO_TEXT_LIMIT: Final = 2000
_SENDS: Final = frozenset({"sendMessage", "sendPhoto"})
_ATTEMPTS: Final = 3


class ZaloError(Exception):
    """Base class of every Zalo client error."""


class ZaloBadToken(ZaloError):
    """The bot token was refused (HTTP 401 or 404)."""


class ZaloForbidden(ZaloError):
    """The platform refused the action for this chat (HTTP 403)."""


class ZaloRateLimited(ZaloError):
    """Too many requests: wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message}; retry after {retry_after:g} s")
        self.retry_after = retry_after


class ZaloTimeout(ZaloError):
    """No answer in time; for ``getUpdates``, the long poll ended with nothing new."""


class ZaloBadRequest(ZaloError):
    """The platform rejected the request as malformed (HTTP 400 and other 4xx)."""


class ZaloServerError(ZaloError):
    """The platform failed (5xx), could not be reached, or answered something unexpected."""


class ZaloClient:
    """Calls Bot API methods; ``async with`` closes the connection pool."""

    def __init__(
        self, token: str, base_url: str = DEFAULT_ZALO_BASE_URL, *, timeout: float = 10.0
    ) -> None:
        """Prepares a client for ``token`` (nothing is sent until a method is called)."""
        self._token = token
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=f"{base_url.rstrip('/')}/bot{token}/",
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            headers={"User-Agent": "tro-ly-htx"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self._http.aclose()

    # -- methods ------------------------------------------------------------------

    async def get_me(self) -> dict[str, Any]:
        """The bot's own account."""
        result = await self.call("getMe")
        if not isinstance(result, dict):
            raise ZaloServerError("getMe returned no account object")
        return result

    async def get_updates(self, timeout: int = 30) -> list[dict[str, Any]]:
        """Long-polls for updates; returns them (an empty list when the poll timed out)."""
        try:
            result = await self.call(
                "getUpdates", {"timeout": str(timeout)}, read_timeout=timeout + 10
            )
        except ZaloTimeout:
            return []
        if result is None:
            return []
        items = result if isinstance(result, list) else [result]
        return [item for item in items if isinstance(item, dict)]

    async def set_webhook(self, url: str, secret_token: str) -> None:
        """Sends updates to ``url`` with ``secret_token`` in ``X-Bot-Api-Secret-Token``."""
        await self.call("setWebhook", {"url": url, "secret_token": secret_token})

    async def delete_webhook(self) -> None:
        """Switches back to getUpdates (the two exclude each other)."""
        await self.call("deleteWebhook")

    async def send_message(self, chat_id: str, text: str) -> str:
        """Sends a text (1 to 2000 characters); returns the message id."""
        result = await self.call("sendMessage", {"chat_id": chat_id, "text": text})
        return _message_id(result)

    async def send_photo(self, chat_id: str, photo_url: str, caption: str | None = None) -> str:
        """Sends the image at ``photo_url`` (Zalo fetches it: a public URL); returns the id.

        ``caption``: at most 2000 characters, or none.
        """
        params = {"chat_id": chat_id, "photo": photo_url}
        if caption:
            params["caption"] = caption
        return _message_id(await self.call("sendPhoto", params))

    # -- transport ---------------------------------------------------------------------

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        read_timeout: float | None = None,
    ) -> Any:
        """Calls ``method`` with a JSON body; returns ``result``; raises a ``ZaloError``."""
        is_send = method in _SENDS
        timeout = httpx.Timeout(self._timeout, read=read_timeout or self._timeout)
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await self._call_once(method, params or {}, timeout)
            except ZaloRateLimited as exc:  # the server did not act on it: always safe
                if attempt == _ATTEMPTS or exc.retry_after > 30:
                    raise
                delay = exc.retry_after
            except _NotSent as exc:  # the request never reached the server
                if attempt == _ATTEMPTS:
                    raise ZaloServerError(str(exc)) from None
                delay = _backoff(attempt)
            except (ZaloServerError, ZaloTimeout):
                if is_send or attempt == _ATTEMPTS or method == "getUpdates":
                    raise  # a send may have gone through: never repeat it
                delay = _backoff(attempt)
            log.info("Zalo %s: retrying in %.1f s (attempt %d)", method, delay, attempt + 1)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _call_once(self, method: str, params: dict[str, Any], timeout: httpx.Timeout) -> Any:
        try:
            response = await self._http.post(method, json=params, timeout=timeout)
        except httpx.ConnectError as exc:
            raise _NotSent(f"Zalo {method}: cannot connect: {self._redact(exc)}") from None
        except httpx.ConnectTimeout as exc:
            raise _NotSent(f"Zalo {method}: connect timeout: {self._redact(exc)}") from None
        except httpx.TimeoutException as exc:
            raise ZaloTimeout(f"Zalo {method}: timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ZaloServerError(
                f"Zalo {method}: {type(exc).__name__}: {self._redact(exc)}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict) and body.get("ok") is True:
            return body.get("result")
        _raise_for(method, response.status_code, body)

    def _redact(self, exc: BaseException) -> str:
        return str(exc).replace(self._token, "<token>")


def _message_id(result: Any) -> str:
    message_id = result.get("message_id") if isinstance(result, dict) else None
    return str(message_id) if message_id is not None else ""


class _NotSent(Exception):
    """Internal: the request never reached the server (safe to repeat)."""


def _backoff(attempt: int) -> float:
    return float(min(0.5 * 2 ** (attempt - 1), 5.0)) * (0.8 + 0.4 * random.random())


def _raise_for(method: str, status: int, body: Any) -> NoReturn:
    """Maps an error answer to the ``ZaloError`` hierarchy (the one place that does)."""
    envelope = body if isinstance(body, dict) else {}
    code = envelope.get("error_code")
    code = code if isinstance(code, int) else status
    description = str(envelope.get("description") or f"HTTP {status}")[:300]
    parameters = envelope.get("parameters")
    retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    message = f"Zalo {method}: {description} (HTTP {status}, error {code})"
    if isinstance(retry_after, int | float) or code == 429 or status == 429:
        raise ZaloRateLimited(float(retry_after or 1), message)
    if status == 200 or not isinstance(body, dict):
        raise ZaloServerError(f"Zalo {method}: unexpected answer (HTTP {status})")
    if code in (401, 404) or status in (401, 404):
        raise ZaloBadToken(message)
    if code == 403 or status == 403:
        raise ZaloForbidden(message)
    if code == 408 or status == 408:
        raise ZaloTimeout(message)
    if 400 <= status < 500:
        raise ZaloBadRequest(message)
    raise ZaloServerError(message)
