"""`ApiClient` against scripted `httpx.MockTransport` servers: retries, idempotency, errors, pacing hooks.

Time is simulated: the client and its limiter share a fake clock whose `sleep` only advances it, so
backoffs and `Retry-After` pauses cost nothing and can be asserted exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from zephyr_qtest.lib.http import (
    AdaptiveRateLimiter,
    AmbiguousWriteError,
    ApiClient,
    ApiError,
    AuthError,
    BearerToken,
    CallStats,
    ForeignUrlError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)

BASE = "http://zephyr.test/v2"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


Handler = Callable[[httpx.Request], httpx.Response]
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def scripted(*steps: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler that answers with `steps` in order (the last one repeats) and records every request."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = steps[min(len(seen) - 1, len(steps) - 1)]
        if isinstance(step, Exception):
            raise step
        return step

    return handler, seen


def client_for(handler: Handler, clock: FakeClock | None = None, **options: Any) -> ApiClient:
    clock = clock or FakeClock()
    options.setdefault("max_retries", 3)
    limiter = options.pop("rate_limiter", None) or AdaptiveRateLimiter(
        initial_rate=1000.0, clock=clock, sleep=clock.sleep
    )
    return ApiClient(
        BASE,
        auth=BearerToken("tok-123456"),
        transport=httpx.MockTransport(handler),
        rate_limiter=limiter,
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def ok(body: Any = None, **kwargs: Any) -> httpx.Response:
    return httpx.Response(200, json={"ok": True} if body is None else body, **kwargs)


async def get(client: ApiClient, path: str = "/things", **kwargs: Any) -> Any:
    async with client:
        return await client.get_json(path, **kwargs)


# ------------------------------------------------------------------------------------------ retries


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_get_is_retried_on_408_and_5xx(status: int) -> None:
    handler, seen = scripted(httpx.Response(status, json={"message": "busy"}), ok())
    client = client_for(handler)
    assert run(get(client)) == {"ok": True}
    assert len(seen) == 2
    assert client.stats.requests == 2
    assert client.stats.retries == 1
    assert client.stats.server_errors == 1


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("reset"),
    ],
)
def test_get_is_retried_on_transport_errors(error: Exception) -> None:
    handler, seen = scripted(error, ok())
    client = client_for(handler)
    assert run(get(client)) == {"ok": True}
    assert len(seen) == 2
    assert client.stats.transport_errors == 1
    assert client.stats.retries == 1


def test_server_errors_give_up_after_the_budget() -> None:
    handler, seen = scripted(httpx.Response(503, json={"errorCode": 503, "message": "down"}))
    clock = FakeClock()
    client = client_for(handler, clock, max_retries=3)
    with pytest.raises(ServerError) as caught:
        run(get(client))
    assert len(seen) == 4  # the first try and 3 retries
    assert caught.value.status == 503
    assert "GET /v2/things -> 503" in str(caught.value)
    assert "down" in str(caught.value)
    # capped, jittered exponential backoff between tries: 0.5, 1, 2 (each minus up to 25%)
    backoffs = clock.sleeps[-3:]
    assert all(0.75 * 0.5 * 2**i <= delay <= 0.5 * 2**i for i, delay in enumerate(backoffs))


def test_transport_errors_give_up_after_the_budget() -> None:
    handler, seen = scripted(httpx.ConnectError("refused"))
    client = client_for(handler, max_retries=2)
    with pytest.raises(TransportError) as caught:
        run(get(client))
    assert len(seen) == 3
    assert caught.value.status is None
    assert "ConnectError" in str(caught.value)


def test_backoff_is_capped() -> None:
    handler, _ = scripted(httpx.Response(500))
    clock = FakeClock()
    client = client_for(handler, clock, max_retries=8, backoff_max=2.0)
    with pytest.raises(ServerError):
        run(get(client))
    assert max(clock.sleeps) <= 2.0


def test_server_retry_after_on_503_is_honoured() -> None:
    handler, _ = scripted(httpx.Response(503, headers={"Retry-After": "7"}), ok())
    clock = FakeClock()
    run(get(client_for(handler, clock)))
    assert 7.0 in clock.sleeps


# ------------------------------------------------------------------------------- 429 and Retry-After


def test_429_is_retried_and_retry_after_pauses_every_send() -> None:
    handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "3"}), ok())
    clock = FakeClock()
    client = client_for(handler, clock)
    started = clock.now
    run(get(client))
    assert len(seen) == 2
    assert client.stats.rate_limited == 1
    assert client.stats.retries == 1
    assert clock.now - started >= 3.0
    assert client.limiter.paused_until == pytest.approx(started + 3.0)


@pytest.mark.parametrize("headers", [{"Retry-After": "0"}, {}], ids=["zero", "absent"])
def test_429_without_a_real_wait_still_backs_off(headers: dict[str, str]) -> None:
    handler, _ = scripted(httpx.Response(429, headers=headers), ok())
    clock = FakeClock()
    client = client_for(handler, clock)
    started = clock.now
    run(get(client))
    assert client.limiter.paused_until > started
    assert clock.now > started


def test_retry_after_is_capped() -> None:
    handler, _ = scripted(httpx.Response(429, headers={"Retry-After": "86400"}), ok())
    clock = FakeClock()
    started = clock.now
    run(get(client_for(handler, clock)))
    assert clock.now - started <= 121.0


def test_429s_give_up_after_their_own_larger_budget() -> None:
    handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "0"}))
    client = client_for(handler, max_retries=1, max_rate_limit_retries=5)
    with pytest.raises(RateLimitedError):
        run(get(client))
    assert len(seen) == 6


def test_429_decreases_the_rate_and_exhausted_budget_header_slows_down() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(initial_rate=100.0, clock=clock, sleep=clock.sleep)
    handler, _ = scripted(
        ok(headers={"x-ratelimit-remaining-minute": "0", "x-ratelimit-remaining-month": "9"})
    )
    run(get(client_for(handler, clock, rate_limiter=limiter)))
    assert limiter.rate < 100.0
    assert not limiter.slow_start


# ------------------------------------------------------------------------------------- idempotency


def test_post_is_not_resent_after_a_server_error() -> None:
    handler, seen = scripted(httpx.Response(500), ok())
    client = client_for(handler)

    async def post() -> None:
        async with client:
            await client.request_json("POST", "/things", json_body={"name": "x"})

    with pytest.raises(AmbiguousWriteError) as caught:
        run(post())
    assert len(seen) == 1
    assert caught.value.status == 500


@pytest.mark.parametrize("error", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")])
def test_post_is_not_resent_after_an_ambiguous_transport_error(error: Exception) -> None:
    handler, seen = scripted(error, ok())
    client = client_for(handler)

    async def post() -> None:
        async with client:
            await client.request("POST", "/things", json_body={"name": "x"})

    with pytest.raises(AmbiguousWriteError):
        run(post())
    assert len(seen) == 1


@pytest.mark.parametrize(
    "first",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("no answer"), httpx.Response(429)],
    ids=["connect-error", "connect-timeout", "429"],
)
def test_post_is_resent_when_it_certainly_did_not_reach_the_server(first: Any) -> None:
    handler, seen = scripted(first, httpx.Response(201, json={"id": 7}))
    client = client_for(handler)

    async def post() -> Any:
        async with client:
            return await client.request_json("POST", "/things", json_body={"name": "x"})

    assert run(post()) == {"id": 7}
    assert len(seen) == 2
    assert json.loads(seen[1].content) == {"name": "x"}


def test_retry_true_resends_a_post_the_caller_knows_is_safe() -> None:
    handler, seen = scripted(httpx.Response(502), ok())
    client = client_for(handler)

    async def search() -> Any:
        async with client:
            return await client.request_json("POST", "/search", json_body={}, retry=True)

    assert run(search()) == {"ok": True}
    assert len(seen) == 2


def test_retry_false_keeps_a_put_from_being_resent() -> None:
    handler, seen = scripted(httpx.Response(502), ok())
    client = client_for(handler)

    async def put() -> None:
        async with client:
            await client.request("PUT", "/things/1", json_body={}, retry=False)

    with pytest.raises(AmbiguousWriteError):
        run(put())
    assert len(seen) == 1


def test_put_and_delete_are_idempotent_by_default() -> None:
    handler, seen = scripted(httpx.Response(500), httpx.Response(204))
    client = client_for(handler)

    async def delete() -> None:
        async with client:
            await client.request("DELETE", "/things/1")

    run(delete())
    assert len(seen) == 2


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, NotFoundError), (401, AuthError), (403, AuthError), (400, ApiError), (422, ApiError)],
)
def test_status_errors_are_typed_and_not_retried(status: int, kind: type[ApiError]) -> None:
    body = {"errorCode": status, "message": "projectKey must not be null"}
    handler, seen = scripted(httpx.Response(status, json=body))
    with pytest.raises(kind) as caught:
        run(get(client_for(handler), params={"projectKey": "SA"}))
    assert len(seen) == 1
    error = caught.value
    assert (error.method, error.status) == ("GET", status)
    assert f"GET /v2/things?projectKey=SA -> {status}" in str(error)
    assert "projectKey must not be null" in str(error)


def test_error_excerpt_is_short() -> None:
    handler, _ = scripted(httpx.Response(400, text="x" * 10_000))
    with pytest.raises(ApiError) as caught:
        run(get(client_for(handler)))
    assert len(str(caught.value)) < 400


def test_invalid_json_is_fetched_again_then_malformed_response_error() -> None:
    handler, seen = scripted(httpx.Response(200, text='{"values": [1, 2'))
    client = client_for(handler, max_retries=2)
    with pytest.raises(MalformedResponseError) as caught:
        run(get(client))
    assert len(seen) == 3
    assert "/v2/things" in str(caught.value)


def test_a_malformed_body_once_is_recovered() -> None:
    handler, seen = scripted(httpx.Response(200, text="<html>"), ok())
    assert run(get(client_for(handler))) == {"ok": True}
    assert len(seen) == 2


def test_validator_failure_is_a_malformed_response() -> None:
    def needs_values(data: Any) -> None:
        if "values" not in data:
            raise ValueError("no values")

    handler, _ = scripted(ok({"nothing": []}))
    with pytest.raises(MalformedResponseError, match="no values"):
        run(get(client_for(handler, max_retries=0), validate=needs_values))


# --------------------------------------------------------------------------------------- URLs, auth


def test_paths_join_the_base_path_and_carry_the_token() -> None:
    handler, seen = scripted(ok())
    run(get(client_for(handler), "/testcases", params={"projectKey": "SA"}))
    run(get(client_for(handler), "testcases"))
    assert str(seen[0].url) == "http://zephyr.test/v2/testcases?projectKey=SA"
    assert str(seen[1].url) == "http://zephyr.test/v2/testcases"
    assert seen[0].headers["Authorization"] == "Bearer tok-123456"


def test_absolute_urls_on_the_same_origin_are_accepted() -> None:
    handler, seen = scripted(ok())
    run(get(client_for(handler), "http://zephyr.test/v2/testcases?startAt=10&maxResults=10"))
    assert seen[0].url.params["startAt"] == "10"


@pytest.mark.parametrize(
    "url",
    ["http://evil.test/v2/testcases", "https://zephyr.test/v2/testcases", "http://zephyr.test:8080/v2/x"],
)
def test_absolute_urls_elsewhere_are_refused_before_sending(url: str) -> None:
    handler, seen = scripted(ok())
    with pytest.raises(ForeignUrlError):
        run(get(client_for(handler), url))
    assert seen == []


def test_get_bytes_returns_content_and_headers() -> None:
    handler, _ = scripted(httpx.Response(200, content=b"\x89PNG", headers={"Content-Type": "image/png"}))
    client = client_for(handler)

    async def fetch() -> tuple[bytes, httpx.Headers]:
        async with client:
            return await client.get_bytes("/attachments/1")

    content, headers = run(fetch())
    assert content == b"\x89PNG"
    assert headers["content-type"] == "image/png"


# ------------------------------------------------------------------------------------------- stats


def test_stats_count_every_attempt_and_time_in_flight() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        clock.now += 0.25  # the server takes a quarter of a second
        return ok()

    client = client_for(handler, clock)

    async def many() -> None:
        async with client:
            await asyncio.gather(*(client.get_json(f"/things/{i}") for i in range(4)))

    run(many())
    assert client.stats.requests == 4
    assert client.stats.seconds == pytest.approx(1.0)
    metadata = client.stats.as_metadata()
    assert set(metadata) == {
        "requests",
        "retries",
        "rate_limited",
        "server_errors",
        "transport_errors",
        "seconds",
        "rate",
    }
    assert metadata["rate"] > 0


def test_call_stats_defaults() -> None:
    assert CallStats().as_metadata()["requests"] == 0
