"""What every chat-app webhook does before it parses an update.

Checks the platform's secret header in constant time (403 without it), reads the
body up to a limit (413 above it), and derives a stable secret from the bot token
when none is configured.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Final

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["MAX_BODY", "checked_body", "derived_secret", "read_body"]

log = logging.getLogger(__name__)

MAX_BODY: Final = 64 * 1024


def derived_secret(configured: SecretStr | None, token: SecretStr, label: str) -> str:
    """The configured webhook secret, or one derived from the token (stable across restarts)."""
    if configured is not None:
        return configured.get_secret_value()
    key = f"coopbot-{label}-webhook".encode()
    return hmac.new(key, token.get_secret_value().encode(), hashlib.sha256).hexdigest()


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes | None:
    """The request body, or None as soon as it grows over ``limit`` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def checked_body(
    request: Request, header: str, secret: str, platform: str
) -> bytes | Response:
    """The body of a webhook call carrying the right secret; else the error response."""
    given = request.headers.get(header, "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        log.warning("%s webhook call with a wrong or missing secret token refused", platform)
        return JSONResponse({"error": "forbidden"}, status_code=403)
    body = await read_body(request)
    if body is None:
        return JSONResponse({"error": "body too large"}, status_code=413)
    return body
