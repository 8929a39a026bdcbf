"""The qTest Manager sandbox as an ASGI app (Starlette), faithful to the vendor's v3 swagger.

``create_app(state_dir, base_url=...)`` returns a ``QTestSandbox`` whose ``.asgi`` serves, under
``/api/v3``, the endpoints a migration into qTest uses (projects, users, field settings, execution
statuses, modules, test cases with versions and steps, releases, test cycles, test suites, test runs,
manual and automation test logs, the queued bulk submission, attachments, search), plus ``/oauth/token``,
``/oauth/status`` and ``/oauth/revoke``. State lives in SQLite under ``state_dir`` (the ``store``
package); the routes are one module per resource in the ``routes`` package, put together here.

Around the routes sits ``QTestMiddleware`` (pure ASGI): bearer auth, the rate-limit headers on every
answer, and the switches of ``faults.py`` (429, latency, 5xx, dropped connections, lost answers). Admin
endpoints under ``/_sandbox/`` (no auth, not part of the vendor API) expose request statistics, change
the switches, count and dump a project's objects, and reset the site.

Decisions the swagger leaves open are listed in docs/qtest-sandbox.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox import common
from zephyr_qtest.sandbox.common import send_json
from zephyr_qtest.sandbox.qtest import auth
from zephyr_qtest.sandbox.qtest.faults import FaultConfig, FaultConfigError, FaultInjector
from zephyr_qtest.sandbox.qtest.routes import all_routes
from zephyr_qtest.sandbox.qtest.routes.http import SERVER_ERROR_MESSAGE, error_body, json_response
from zephyr_qtest.sandbox.qtest.store import (
    DEFAULT_ATTACHMENT_MAX_BYTES,
    QTestError,
    QTestStore,
)
from zephyr_qtest.sandbox.qtest.template import DEFAULT_PASSWORD, DEFAULT_TEMPLATE_NAME

# The ASGI scope extension through which the server lets the app close a connection without answering
# (see serve.py); without it, a lost answer is sent as headers followed by a cut body.
ABORT_EXTENSION = "zephyr_qtest.abort"
# Settings that are not faults but can be changed through POST /_sandbox/faults as well.
STORE_SETTINGS: tuple[str, ...] = ("queue_polls", "queue_delay_s", "attachment_max_bytes", "token_ttl_s")


# ---------------------------------------------------------------------------- statistics


class RequestStats(common.RequestStats):
    """What the server saw, by ``METHOD /path/template``: the benchmark and the tests read it."""

    counters: ClassVar[tuple[str, ...]] = (*common.RequestStats.counters, "lost_answers")
    lost_answers: int


# ---------------------------------------------------------------------------- the sandbox


class QTestSandbox:
    """One running sandbox: the store, the token, the switches, the statistics, and the ASGI app."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        base_url: str,
        seed: int = 0,
        faults: FaultConfig | None = None,
        attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
        queue_polls: int = 2,
        queue_delay_s: float | None = 2.0,
        token_ttl_s: int = 3600,
        site_name: str | None = None,
        projects: Sequence[str] = (),
        template: str = DEFAULT_TEMPLATE_NAME,
    ) -> None:
        self.store = QTestStore(
            state_dir,
            base_url=base_url,
            seed=seed,
            attachment_max_bytes=attachment_max_bytes,
            token_ttl_s=token_ttl_s,
            queue_polls=queue_polls,
            queue_delay_s=queue_delay_s,
        )
        try:
            self.store.use_template(template)
        except ValueError:
            self.store.close()
            raise
        self.base_url = self.store.base_url
        self.api_url = self.store.api_url
        self.token = self.store.api_token
        admin = self.store.admin_user()
        self.username = admin["username"]
        self.password = DEFAULT_PASSWORD
        self.site_name = site_name
        self.initial_projects = tuple(projects)
        self.faults = FaultInjector(faults)
        self.stats = RequestStats()
        self.ensure_projects()
        self.app = self._build_app()
        self._templates = [
            (route.path_regex, route.path, route.methods or set())
            for route in self.app.routes
            if isinstance(route, Route)
        ]
        self.asgi = QTestMiddleware(self.app, self)

    def ensure_projects(self) -> None:
        """Create the start-up projects that do not exist yet (by name)."""
        existing = {p["name"].lower() for p in self.store.projects()}
        admin = self.store.admin_user()["id"]
        for name in self.initial_projects:
            if name.lower() not in existing:
                self.store.create_project({"name": name}, admin)

    def close(self) -> None:
        self.store.close()

    def template_for(self, method: str, path: str) -> str:
        """``METHOD /route/template`` of a request (how the statistics group requests)."""
        for regex, template, methods in self._templates:
            if regex.match(path) and (not methods or method in methods):
                return f"{method} {template}"
        return f"{method} (unmatched)"

    def settings(self) -> dict[str, Any]:
        store = self.store
        return {
            "template": store.template_name,
            "queue_polls": store.queue_polls,
            "queue_delay_s": store.queue_delay_s,
            "attachment_max_bytes": store.attachment_max_bytes,
            "token_ttl_s": store.token_ttl_s,
        }

    def apply_settings(self, changes: dict[str, Any]) -> None:
        store = self.store
        for name in STORE_SETTINGS:
            if name not in changes:
                continue
            value = changes.pop(name)
            if name == "queue_delay_s":
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float) or value < 0
                ):
                    raise FaultConfigError(f"queue_delay_s must be a number >= 0 or null, got {value!r}")
                store.queue_delay_s = None if value is None else float(value)
            else:
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or value < (0 if name == "queue_polls" else 1)
                ):
                    raise FaultConfigError(f"{name} must be a positive integer, got {value!r}")
                setattr(store, name, value)

    # ------------------------------------------------------------------ routes

    def _build_app(self) -> Starlette:
        async def on_api_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, QTestError)
            return json_response(error_body(exc.message), exc.status, raw=True)

        async def on_http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
            return json_response(error_body(message), exc.status_code, raw=True)

        return Starlette(
            routes=all_routes(self),
            exception_handlers={QTestError: on_api_error, HTTPException: on_http_error},
        )


class QTestMiddleware:
    """Auth, rate limits and their headers, switches and statistics around the vendor routes.

    Pure ASGI, so it can close a connection without answering (drops, lost answers), which a Starlette
    middleware cannot. Admin routes (``/_sandbox/``) pass straight through."""

    def __init__(self, app: Starlette, sandbox: QTestSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        sandbox = self.sandbox
        store = sandbox.store
        if not (path.startswith(("/api/", "/oauth/"))):
            store.process_due_jobs()
            await self.app(scope, receive, send)
            return

        faults = sandbox.faults
        stats = sandbox.stats
        method: str = scope["method"]
        key = sandbox.template_for(method, path)

        delay = faults.latency_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

        headers = dict(scope["headers"])
        raw_auth = headers.get(b"authorization")
        token = auth.bearer_token(raw_auth.decode("latin-1") if raw_auth is not None else None)
        budget_key = token or ("oauth" if path.startswith("/oauth/") else "anonymous")
        if path.startswith("/api/"):
            user_id = store.authenticate(token) if token else None
            if user_id is None:
                body = json.dumps(auth.invalid_token(token) if token else auth.MISSING_TOKEN).encode()
                minute, month = faults.remaining(budget_key)
                stats.record(key, 401)
                await send_json(send, 401, body, _budget_headers(minute, month))
                return
            scope.setdefault("state", {})["qtest_user_id"] = user_id

        decision = faults.check_rate(budget_key)
        budget = _budget_headers(decision.remaining_minute, decision.remaining_month)
        if decision.wait is not None:
            retry_after = faults.retry_after_header(decision.wait)
            extra = [(b"retry-after", retry_after.encode())] if retry_after is not None else []
            stats.record(key, 429)
            await send_json(send, 429, error_body("API rate limit exceeded"), [*budget, *extra])
            return

        fault_status = faults.draw_fault_status()
        if fault_status is not None:
            stats.injected_faults += 1
            stats.record(key, fault_status)
            await send_json(send, fault_status, error_body(SERVER_ERROR_MESSAGE), budget)
            return

        if faults.draw_drop():
            # Closed before the request reaches the routes: nothing was applied.
            stats.drops += 1
            stats.record(key, "dropped")
            await _close_without_answer(scope, send, 502)
            return

        store.process_due_jobs()
        if path.startswith("/api/") and faults.draw_lost_answer(method, path):
            # Applied and committed (the handler runs to the end), then the answer is thrown away.
            status_seen: list[int] = []

            async def discard(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status_seen.append(message["status"])

            await self.app(scope, receive, discard)
            stats.lost_answers += 1
            stats.record(key, f"lost:{status_seen[0] if status_seen else 500}")
            await _close_without_answer(scope, send, status_seen[0] if status_seen else 500)
            return

        status_seen = []

        async def send_with_budget(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(message["status"])
                message["headers"] = [*message.get("headers", []), *budget]
            await send(message)

        await self.app(scope, receive, send_with_budget)
        stats.record(key, status_seen[0] if status_seen else 500)


def _budget_headers(minute: int, month: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-remaining-minute", str(minute).encode()),
        (b"x-ratelimit-remaining-month", str(month).encode()),
    ]


async def _close_without_answer(scope: dict[str, Any], send: Any, status: int) -> None:
    """Close the connection without an answer: the client sees "server disconnected"."""
    abort = (scope.get("extensions") or {}).get(ABORT_EXTENSION, {}).get("abort")
    if abort is not None:
        abort()
        # Let the server notice the closed connection before the app returns, so it does not try to
        # answer a 500 on it.
        for _ in range(3):
            await asyncio.sleep(0)
        return
    # Served without the extension: promise a body that never comes, which no client can take as an answer.
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
        }
    )
    await send({"type": "http.response.body", "body": b"{", "more_body": True})


def create_app(
    state_dir: str | Path,
    *,
    base_url: str = "http://testserver",
    seed: int = 0,
    faults: FaultConfig | None = None,
    **options: Any,
) -> QTestSandbox:
    """Build a sandbox on ``state_dir``; serve ``.asgi`` (the ASGI callable) with any ASGI server.

    ``base_url`` is the site URL the sandbox is reachable at (the API is under ``{base_url}/api/v3``):
    every ``links`` and ``web_url`` is made on it. ``options``: see ``QTestSandbox``.
    """
    return QTestSandbox(state_dir, base_url=base_url, seed=seed, faults=faults, **options)
