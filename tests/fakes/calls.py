"""Calling a fake Bot API server as a client would, for the fakes' own tests."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["assert_error", "post", "result"]


def post(client: httpx.Client, method: str, **params: Any) -> httpx.Response:
    """POSTs ``params`` as a JSON body to ``method``."""
    return client.post(method, json=params)


def result(client: httpx.Client, method: str, **params: Any) -> Any:
    """The ``result`` of a successful call (fails the test on anything else)."""
    response = post(client, method, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True
    return body["result"]


def assert_error(response: httpx.Response, status: int, description: str) -> dict[str, Any]:
    """Checks an error envelope: the HTTP status, ``error_code`` and the description's text."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["ok"] is False
    assert body["error_code"] == status
    assert description in body["description"]
    return body
