"""Secrets never reach logs or error messages: the registry, the logging filter, and the HTTP client.

The client tests run with httpx and httpcore logging at DEBUG. Two of them use a real server on
127.0.0.1 (so httpcore's connection logging is exercised too): one that echoes the token back in a 401
body, one that drops the connection before answering.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from zephyr_qtest.lib.http import AdaptiveRateLimiter, ApiError, AuthError, TransportError
from zephyr_qtest.lib.redaction import MASK, RedactingFilter, install_redaction, redact, register_secret
from zephyr_qtest.lib.zephyr import ZephyrClient

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtaWdyYXRpb24ifQ.c2VjcmV0LXNpZ25hdHVyZQ"


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def fast_client(base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> ZephyrClient:
    return ZephyrClient(
        base_url,
        TOKEN,
        max_retries=2,
        transport=transport,
        rate_limiter=AdaptiveRateLimiter(initial_rate=5000.0, sleep=_no_sleep),
        sleep=_no_sleep,
    )


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "zephyr_qtest"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


# --------------------------------------------------------------------------------------- the registry


def test_registered_secrets_are_masked_in_any_text() -> None:
    register_secret("s3cr3t-value-1")
    assert redact("token=s3cr3t-value-1; again s3cr3t-value-1") == f"token={MASK}; again {MASK}"
    assert redact(ValueError("bad s3cr3t-value-1")) == f"bad {MASK}"


def test_url_encoded_form_is_masked_too() -> None:
    register_secret("a/b+c=d&e")
    assert MASK in redact("GET /x?token=a%2Fb%2Bc%3Dd%26e")


def test_short_values_are_not_registered() -> None:
    register_secret("ab")
    register_secret("")
    register_secret(None)
    assert redact("about a tab") == "about a tab"


def test_authorization_values_are_masked_even_unregistered() -> None:
    for text in (
        "Authorization: Bearer not-registered-1",
        "{'authorization': 'bearer not-registered-1'}",
        "(b'Authorization', b'Basic not-registered-1')",
        "proxy-authorization=xyz-not-registered-1",
    ):
        assert "not-registered-1" not in redact(text), text
    assert redact("the Authorization header is missing") == "the Authorization header is missing"


# ------------------------------------------------------------------------------------------ the filter


def test_filter_masks_message_arguments_and_tracebacks() -> None:
    register_secret("filter-secret-42")
    logger = logging.getLogger("zephyr_qtest.tests.redaction")
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "sending %s", ("filter-secret-42",), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"sending {MASK}"
    try:
        raise RuntimeError("boom filter-secret-42")
    except RuntimeError:
        import sys

        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactingFilter().filter(record)
    assert record.exc_text is not None
    assert "filter-secret-42" not in record.exc_text


def test_install_reaches_named_loggers_their_children_and_handlers() -> None:
    parent = logging.getLogger("zq_redaction_test")
    child = logging.getLogger("zq_redaction_test.deeper")
    handler = logging.NullHandler()
    parent.addHandler(handler)
    try:
        installed = install_redaction(("zq_redaction_test",))
        install_redaction(("zq_redaction_test",))
        assert parent.filters.count(installed) == 1
        assert installed in child.filters
        assert installed in handler.filters
    finally:
        parent.removeHandler(handler)


def test_a_logged_token_is_masked(debug_logs: pytest.LogCaptureFixture) -> None:
    register_secret(TOKEN)
    install_redaction(("zephyr_qtest",))
    logging.getLogger("zephyr_qtest").debug("headers %s", {"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN not in debug_logs.text
    assert MASK in debug_logs.text


# ------------------------------------------------------------------------------------------ the client


def assert_clean(error: BaseException, logs: pytest.LogCaptureFixture) -> None:
    for text in (str(error), repr(error), *map(str, error.args), logs.text):
        assert TOKEN not in text
    if isinstance(error, ApiError):
        assert TOKEN not in error.url and TOKEN not in error.message


def test_401_reflecting_the_token_is_masked(debug_logs: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": f"invalid token {request.headers['Authorization']}"})

    async def call() -> None:
        async with fast_client("http://zephyr.test/v2", httpx.MockTransport(handler)) as client:
            await client.get_project("SA")

    with pytest.raises(AuthError) as caught:
        asyncio.run(call())
    assert "invalid token" in str(caught.value)
    assert_clean(caught.value, debug_logs)


def test_transport_error_is_masked(debug_logs: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect with {request.headers['Authorization']}")

    async def call() -> None:
        async with fast_client("http://zephyr.test/v2", httpx.MockTransport(handler)) as client:
            await client.get_project("SA")

    with pytest.raises(TransportError) as caught:
        asyncio.run(call())
    assert_clean(caught.value, debug_logs)
    assert caught.value.__cause__ is not None


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A real HTTP server that answers 401 with the Authorization header it received."""

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f'{{"error": "bad token: {self.headers.get("Authorization")}"}}'.encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2"
    finally:
        server.shutdown()
        server.server_close()


def test_real_server_401_with_httpcore_debug_logging(
    echo_server: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    async def call() -> None:
        async with fast_client(echo_server) as client:
            await client.get_project("SA")

    with pytest.raises(AuthError) as caught:
        asyncio.run(call())
    assert any(record.name.startswith("httpcore") for record in debug_logs.records)
    assert "bad token: Bearer" in str(caught.value)
    assert_clean(caught.value, debug_logs)


@pytest.fixture
def dropping_server() -> Iterator[str]:
    """A real server that reads each request and closes the connection without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v2"
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def test_real_dropped_connection_with_httpcore_debug_logging(
    dropping_server: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    async def call() -> None:
        async with fast_client(dropping_server) as client:
            await client.get_project("SA")

    with pytest.raises(TransportError) as caught:
        asyncio.run(call())
    assert "RemoteProtocolError" in str(caught.value)
    assert any(record.name.startswith("httpcore") for record in debug_logs.records)
    assert_clean(caught.value, debug_logs)
