"""The outer layer of the Zephyr sandbox: auth, switches, CORS and statistics around the routes.

Pure ASGI, so it can cut a connection mid-body, which a Starlette middleware cannot.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette

from zephyr_qtest.sandbox.common import send_json
from zephyr_qtest.sandbox.zephyr.api import SERVER_ERROR_MESSAGE, error_body, json_bytes
from zephyr_qtest.sandbox.zephyr.auth import AuthResult, check_authorization

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox

CORS_HEADERS: list[tuple[bytes, bytes]] = [
    (b"access-control-allow-origin", b"*"),
    (
        b"access-control-allow-headers",
        b"Content-Type,Authorization,X-Amz-Date,X-Api-Key,X-Amz-Security-Token",
    ),
    (b"access-control-allow-methods", b"DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"),
]


class SandboxMiddleware:
    """Auth, switches, CORS and statistics around the API routes (pure ASGI, so it can cut a
    connection mid-body, which a Starlette middleware cannot)."""

    def __init__(self, app: Starlette, sandbox: ZephyrSandbox) -> None:
        self.app = app
        self.sandbox = sandbox
        self._accepted: dict[bytes, AuthResult] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *CORS_HEADERS]
            await send(message)

        if not (path == "/v2" or path.startswith("/v2/")):
            await self.app(scope, receive, send_with_cors)
            return
        if scope["method"] == "OPTIONS":
            await _send_simple(send, 200, b"", b"text/plain")
            return

        sandbox = self.sandbox
        faults = sandbox.faults
        stats = sandbox.stats
        template = sandbox.template_for(path)

        delay = faults.latency_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

        headers = dict(scope["headers"])
        raw_auth = headers.get(b"authorization")
        auth = self._accepted.get(raw_auth) if raw_auth is not None else None
        if auth is None:
            auth = check_authorization(
                raw_auth.decode("latin-1") if raw_auth is not None else None, sandbox.secret
            )
            if auth.error is None and raw_auth is not None and len(self._accepted) < 1024:
                # Checking a signature costs more than serving a page; a client reuses one token.
                self._accepted[raw_auth] = auth
        if auth.error is not None:
            body = json.dumps({"error": auth.error}).encode()
            stats.record(template, 401, len(body))
            await _send_simple(send, 401, body)
            return

        wait = faults.rate_limit_wait(auth.token or "")
        if wait is not None:
            body = error_body(429, "Rate limit exceeded")
            retry_after = faults.retry_after_header(wait)
            extra = [(b"retry-after", retry_after.encode())] if retry_after is not None else []
            stats.record(template, 429, len(body))
            await _send_simple(send, 429, body, extra_headers=extra)
            return

        fault_status = faults.draw_fault_status()
        if fault_status is not None:
            body = error_body(fault_status, SERVER_ERROR_MESSAGE)
            stats.injected_faults += 1
            stats.record(template, fault_status, len(body))
            await _send_simple(send, fault_status, body)
            return

        drop = faults.draw_drop()
        may_break = any(rule.count > 0 and path.startswith(rule.prefix) for rule in faults.config.malformed)
        if not drop and not may_break:
            status_seen: list[int] = []
            size = [0]

            async def send_counted(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status_seen.append(message["status"])
                elif message["type"] == "http.response.body":
                    size[0] += len(message.get("body", b""))
                await send_with_cors(message)

            await self.app(scope, receive, send_counted)
            stats.record(template, status_seen[0] if status_seen else 500, size[0])
            return

        # Buffer the whole answer, then cut it or break it.
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        status = start.get("status", 500)
        response_headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if drop:
            # Promise more bytes than will come, send half, and return: uvicorn closes the
            # connection, and the client sees a transport error mid-body.
            stats.drops += 1
            stats.record(template, "dropped", len(body) // 2)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        *response_headers,
                        *CORS_HEADERS,
                        (b"content-length", str(len(body) + 512).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            return
        content_type = dict(response_headers).get(b"content-type", b"")
        kind = (
            faults.take_malformed(path)
            if status == 200 and content_type.startswith(b"application/json")
            else None
        )
        if kind is not None:
            stats.malformed += 1
            body = _break_page(body, kind)
        stats.record(template, status, len(body))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*response_headers, *CORS_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _break_page(body: bytes, kind: str) -> bytes:
    if kind == "invalid_json":
        # A page cut off mid-way, as a truncating proxy would leave it.
        return body[: max(1, len(body) // 2)] + b'\x00{"'
    try:
        page = json.loads(body)
    except json.JSONDecodeError:
        return body
    if isinstance(page, dict):
        page.pop("values", None)
    return json_bytes(json.dumps(page, ensure_ascii=False))


async def _send_simple(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send_json(send, status, body, [*CORS_HEADERS, *(extra_headers or [])], content_type)
