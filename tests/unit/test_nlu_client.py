"""The NLU client's parsing and its error hierarchy (unit tests with an injected transport)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.nlu_model.client import (
    NLUAuthError,
    NLUClient,
    NLUResponseError,
    NLUTimeout,
    NLUUnavailable,
)
from bot.nlu_model.service import free_port

PARSE = {
    "text": "htx",
    "intent": {"name": "htx_la_gi", "confidence": 0.91},
    "intent_ranking": [
        {"name": "htx_la_gi", "confidence": 0.91},
        {"name": "to_hop_tac", "confidence": 0.05},
    ],
}


def _client(handler) -> NLUClient:
    return NLUClient("http://nlu.test", transport=httpx.MockTransport(handler))


def _run(coro):
    return asyncio.run(coro)


def test_parse_reads_intent_and_ranking():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["path"] = request.url.path
        seen["body"] = request.content
        return httpx.Response(200, json=PARSE)

    async def go():
        async with _client(handler) as client:
            return await client.parse("htx là gì")

    result = _run(go())
    assert seen["path"] == "/model/parse"
    assert "htx" in seen["body"].decode()
    assert result.intent == "htx_la_gi"
    assert result.confidence == pytest.approx(0.91)
    assert [s.name for s in result.ranking] == ["htx_la_gi", "to_hop_tac"]


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(500, text="boom"), NLUResponseError),
        (httpx.Response(400, json={"error": "x"}), NLUResponseError),
        (httpx.Response(409, json={"error": "no model"}), NLUUnavailable),
        (httpx.Response(503), NLUUnavailable),
        (httpx.Response(200, text="not json"), NLUResponseError),
        (httpx.Response(200, json=["a list"]), NLUResponseError),
        (
            httpx.Response(200, json={"intent": {"name": "x", "confidence": "high"}}),
            NLUResponseError,
        ),
    ],
)
def test_error_statuses_and_bodies_are_mapped(response, error):
    async def go():
        async with _client(lambda _r: response) as client:
            await client.parse("x")

    with pytest.raises(error):
        _run(go())


def test_timeout_is_mapped():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async def go():
        async with _client(handler) as client:
            await client.parse("x")

    with pytest.raises(NLUTimeout):
        _run(go())


def test_refused_connection_is_unavailable():
    async def go():
        async with NLUClient(f"http://127.0.0.1:{free_port()}", timeout=1.0) as client:
            assert not await client.is_ready()
            await client.parse("x")

    with pytest.raises(NLUUnavailable):
        _run(go())


def test_status_without_model_is_unavailable():
    async def go():
        async with _client(lambda _r: httpx.Response(200, json={"model_file": None})) as c:
            return await c.is_ready()

    assert _run(go()) is False


def test_the_token_goes_with_every_call_and_a_refusal_is_an_auth_error():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.url.params.get("token")))
        if request.url.params.get("token") != "s3cret":
            return httpx.Response(401, json={"message": "User is not authenticated."})
        if request.url.path == "/status":
            return httpx.Response(200, json={"model_file": "m.tar.gz"})
        return httpx.Response(200, json=PARSE)

    async def go():
        async with NLUClient("http://nlu.test", token="s3cret",
                             transport=httpx.MockTransport(handler)) as client:  # fmt: skip
            await client.parse("htx")
            assert await client.loaded_model() == "m.tar.gz"
        async with _client(handler) as client:  # no token
            with pytest.raises(NLUAuthError) as refused:
                await client.parse("htx")
            assert "s3cret" not in str(refused.value)

    _run(go())
    assert seen[:2] == [("POST", "/model/parse", "s3cret"), ("GET", "/status", "s3cret")]
    assert seen[2] == ("POST", "/model/parse", None)
