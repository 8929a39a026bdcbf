"""The qTest Manager sandbox as an ASGI app (Starlette), faithful to the vendor's v3 swagger.

``create_app(state_dir, base_url=...)`` returns a ``QTestSandbox`` whose ``.asgi`` serves, under
``/api/v3``, the endpoints a migration into qTest uses (projects, users, field settings, execution
statuses, modules, test cases with versions and steps, releases, test cycles, test suites, test runs,
manual and automation test logs, the queued bulk submission, attachments, search), plus ``/oauth/token``,
``/oauth/status`` and ``/oauth/revoke``. State lives in SQLite under ``state_dir`` (``store.py``).

Around the routes sits ``QTestMiddleware`` (pure ASGI): bearer auth, the rate-limit headers on every
answer, and the switches of ``faults.py`` (429, latency, 5xx, dropped connections, lost answers). Admin
endpoints under ``/_sandbox/`` (no auth, not part of the vendor API) expose request statistics, change
the switches, count and dump a project's objects, and reset the site.

Decisions the swagger leaves open are listed in docs/qtest-sandbox.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.qtest import auth
from zephyr_qtest.sandbox.qtest.faults import FaultConfig, FaultConfigError, FaultInjector
from zephyr_qtest.sandbox.qtest.store import (
    DEFAULT_ATTACHMENT_MAX_BYTES,
    QTestError,
    QTestStore,
    parse_time,
)
from zephyr_qtest.sandbox.qtest.template import DEFAULT_PASSWORD

logger = logging.getLogger(__name__)

API = "/api/v3"
# The ASGI scope extension through which the server lets the app close a connection without answering
# (see serve.py); without it, a lost answer is sent as headers followed by a cut body.
ABORT_EXTENSION = "zephyr_qtest.abort"
MAX_PAGE_SIZE = 999  # "You can specify your custom number (up to 999)"
MAX_USER_PAGE_SIZE = 100
SERVER_ERROR_MESSAGE = "Internal Server Error - Unexpected error"
# Settings that are not faults but can be changed through POST /_sandbox/faults as well.
STORE_SETTINGS: tuple[str, ...] = ("queue_polls", "queue_delay_s", "attachment_max_bytes", "token_ttl_s")


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, *, raw: bool = False
) -> Response:
    content = body if raw else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}, ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------------------- request parsing


def _int_query(request: Request, name: str, default: int | None, *, low: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QTestError(400, f"{name} must be an integer, got '{raw}'") from None
    if low is not None and value < low:
        raise QTestError(400, f"{name} must be >= {low}, got {value}")
    return value


def _page(
    request: Request, *, size_name: str = "pageSize", default_size: int = 100, cap: int = MAX_PAGE_SIZE
) -> tuple[int, int]:
    """``page`` (1-based: page 0 is an error, not the first page) and the effective page size."""
    page = _int_query(request, "page", 1)
    assert page is not None
    if page < 1:
        raise QTestError(400, f"page must be >= 1 (pages are numbered from 1), got {page}")
    size = _int_query(request, size_name, default_size, low=1)
    assert size is not None
    return page, min(size, cap)


def _bool_query(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise QTestError(400, f"{name} must be true or false, got '{raw}'")


def _path_int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    try:
        return int(raw)
    except ValueError:
        raise QTestError(400, f"{name} must be a number, got '{raw}'") from None


def _parent_type(request: Request) -> str | None:
    raw = request.query_params.get("parentType")
    return raw.lower() if raw else None


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise QTestError(400, "the request body is required (JSON)")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QTestError(400, f"the request body is not valid JSON: {exc}") from None


def _paged(page: int, size: int, total: int, items: Sequence[Any]) -> dict[str, Any]:
    """The wrapped page shape ``{links, page, page_size, total, items}`` (PagedResource and its kin)."""
    return {"links": [], "page": page, "page_size": size, "total": total, "items": list(items)}


def _file_name(header: str | None) -> str | None:
    """The File-Name header as text: UTF-8 bytes are accepted as such (Starlette hands headers over as
    latin-1); anything else is taken verbatim. Percent-encoding is not decoded."""
    if header is None:
        return None
    raw = header.encode("latin-1", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return header


def _user_id(request: Request) -> int:
    return int(request.scope["state"]["qtest_user_id"])


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name RFC 5987-encoded."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# ---------------------------------------------------------------------------- statistics


class RequestStats:
    """What the server saw, by ``METHOD /path/template``: the benchmark and the tests read it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.time()
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_path_status: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.rate_limited = 0
        self.unauthorized = 0
        self.server_errors = 0
        self.injected_faults = 0
        self.drops = 0
        self.lost_answers = 0

    def record(self, key: str, status: int | str) -> None:
        self.requests += 1
        self.by_path[key] += 1
        self.by_status[str(status)] += 1
        self.by_path_status[key][str(status)] += 1
        if status == 429:
            self.rate_limited += 1
        elif status == 401:
            self.unauthorized += 1
        elif isinstance(status, int) and status >= 500:
            self.server_errors += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.started,
            "elapsed_s": round(time.time() - self.started, 3),
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": dict(self.by_status),
            "by_path_status": {path: dict(counts) for path, counts in self.by_path_status.items()},
            "rate_limited": self.rate_limited,
            "unauthorized": self.unauthorized,
            "server_errors": self.server_errors,
            "injected_faults": self.injected_faults,
            "drops": self.drops,
            "lost_answers": self.lost_answers,
        }


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
            "queue_polls": store.queue_polls,
            "queue_delay_s": store.queue_delay_s,
            "attachment_max_bytes": store.attachment_max_bytes,
            "token_ttl_s": store.token_ttl_s,
        }

    def _apply_settings(self, changes: dict[str, Any]) -> None:
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
        store = self.store

        # -- auth --------------------------------------------------------------------------------------
        async def oauth_token(request: Request) -> Response:
            client = auth.basic_client(request.headers.get("authorization"))
            allowed = {self.site_name, auth.REFRESH_CLIENT} if self.site_name else None
            if client is None or (allowed is not None and client not in allowed):
                return json_response(
                    {"error": "unauthorized", "error_description": "Missing or invalid Authorization header"},
                    401,
                )
            form = auth.parse_form(await request.body())
            grant = form.get("grant_type", "password")
            try:
                if grant == "password":
                    return json_response(store.login(form.get("username"), form.get("password")))
                if grant == "refresh_token":
                    return json_response(store.refresh(form.get("refresh_token")))
            except QTestError as exc:
                return json_response({"error": "invalid_grant", "error_description": exc.message}, 400)
            return json_response(
                {"error": "unsupported_grant_type", "error_description": f"Unsupported grant type: {grant}"},
                400,
            )

        def _header_token(request: Request) -> str | None:
            header = request.headers.get("authorization")
            token = auth.bearer_token(header)
            if token is None and header and " " not in header.strip():
                token = header.strip()  # "The qTest access token you want to check", bare
            return token

        async def oauth_status(request: Request) -> Response:
            token = _header_token(request)
            status = store.token_status(token) if token else None
            if status is None:
                return json_response(auth.invalid_token(token or ""), 401)
            return json_response(status)

        async def oauth_revoke(request: Request) -> Response:
            token = _header_token(request)
            if not token or store.authenticate(token) is None:
                return json_response(auth.invalid_token(token or ""), 401)
            store.revoke(token)
            return Response(b"", status_code=200)

        # -- projects and users ------------------------------------------------------------------------
        async def projects(request: Request) -> Response:
            if request.method == "POST":
                return json_response(store.create_project(await _json_body(request), _user_id(request)), 201)
            page, size = _page(request)
            items = store.projects()
            return json_response(
                items[(page - 1) * size : page * size], headers={"X-Item-Total": str(len(items))}
            )

        async def project(request: Request) -> Response:
            return json_response(store.project(_path_int(request, "projectId")))

        async def project_users(request: Request) -> Response:
            store.require_project(_path_int(request, "projectId"))
            return json_response(store.users(include_inactive=_bool_query(request, "inactive", True)))

        async def users_search(request: Request) -> Response:
            page, size = _page(request, cap=MAX_USER_PAGE_SIZE)
            found = store.search_users(
                request.query_params.get("username"),
                include_inactive=_bool_query(request, "includeInactiveUsers", False),
            )
            if not _bool_query(request, "pagination", True):
                return json_response(_paged(1, len(found), len(found), found))
            return json_response(_paged(page, size, len(found), found[(page - 1) * size : page * size]))

        async def user(request: Request) -> Response:
            found = store.user(_path_int(request, "userId"))
            if found is None:
                raise QTestError(404, f"User {request.path_params['userId']} does not exist")
            return json_response(store.render_user(found))

        # -- field settings ----------------------------------------------------------------------------
        async def fields(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            object_type = request.path_params["objectType"]
            if request.method == "POST":
                return json_response(
                    store.create_field(project_id, object_type, await _json_body(request)), 201
                )
            include = _bool_query(request, "includeInactive", False)
            return json_response(store.fields(project_id, object_type, include_inactive=include))

        async def field(request: Request) -> Response:
            return json_response(
                store.field(
                    _path_int(request, "projectId"),
                    request.path_params["objectType"],
                    _path_int(request, "fieldId"),
                )
            )

        async def allowed_values(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            object_type = request.path_params["objectType"]
            field_id = _path_int(request, "fieldId")
            if request.method == "POST":
                body = await _json_body(request)
                return json_response(store.add_allowed_values(project_id, object_type, field_id, body), 201)
            page, size = _page(request)
            values = store.allowed_values(project_id, object_type, field_id)
            return json_response(
                values[(page - 1) * size : page * size], headers={"X-Item-Total": str(len(values))}
            )

        async def execution_statuses(request: Request) -> Response:
            return json_response(store.execution_statuses(_path_int(request, "projectId")))

        # -- modules -----------------------------------------------------------------------------------
        async def modules(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            parent_id = _int_query(request, "parentId", None)
            if request.method == "POST":
                return json_response(
                    store.create_module(project_id, await _json_body(request), parent_id), 201
                )
            return json_response(
                store.modules(
                    project_id,
                    parent_id=parent_id,
                    search=request.query_params.get("search"),
                    descendants=request.query_params.get("expand") == "descendants",
                )
            )

        async def module(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            module_id = _path_int(request, "moduleId")
            if request.method == "PUT":
                parent_id = _int_query(request, "parentId", None)
                body = await _json_body(request) if parent_id is None else None
                return json_response(store.update_module(project_id, module_id, body, parent_id))
            if request.method == "DELETE":
                return json_response(
                    store.delete_module(project_id, module_id, force=_bool_query(request, "force", False))
                )
            descendants = request.query_params.get("expand") == "descendants"
            return json_response(store.module(project_id, module_id, descendants=descendants))

        # -- test cases --------------------------------------------------------------------------------
        async def test_cases(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            if request.method == "POST":
                return json_response(
                    store.create_test_case(project_id, await _json_body(request), _user_id(request))
                )
            page, size = _page(request, size_name="size", default_size=20)
            raw_after = request.query_params.get("modifiedAfter")
            modified_after = None
            if raw_after:
                modified_after = parse_time(raw_after)
                if modified_after is None:
                    raise QTestError(400, f"modifiedAfter must be an ISO 8601 date-time, got '{raw_after}'")
            return json_response(
                store.test_cases(
                    project_id,
                    parent_id=_int_query(request, "parentId", None),
                    page=page,
                    size=size,
                    expand_props=_bool_query(request, "expandProps", True),
                    expand_steps=_bool_query(request, "expandSteps", False),
                    modified_after=modified_after,
                )
            )

        async def test_case(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            ref = request.path_params["testCaseId"]
            if request.method == "PUT":
                body = await _json_body(request)
                return json_response(store.update_test_case(project_id, ref, body, _user_id(request)))
            if request.method == "DELETE":
                return json_response(store.delete_test_case(project_id, ref))
            return json_response(
                store.test_case(
                    project_id,
                    ref,
                    version_id=_int_query(request, "versionId", None),
                    steps=request.query_params.get("expand") == "teststep",
                )
            )

        async def approve(request: Request) -> Response:
            return json_response(
                store.approve_test_case(_path_int(request, "projectId"), request.path_params["testCaseId"])
            )

        async def versions(request: Request) -> Response:
            return json_response(
                store.test_case_versions(_path_int(request, "projectId"), request.path_params["testCaseId"])
            )

        async def version(request: Request) -> Response:
            return json_response(
                store.test_case_version(
                    _path_int(request, "projectId"),
                    request.path_params["testCaseId"],
                    _path_int(request, "versionId"),
                )
            )

        async def version_steps(request: Request) -> Response:
            return json_response(
                store.test_steps(
                    _path_int(request, "projectId"),
                    request.path_params["testCaseId"],
                    _path_int(request, "versionId"),
                )
            )

        async def test_steps(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            ref = request.path_params["testCaseId"]
            if request.method == "POST":
                return json_response(store.add_test_step(project_id, ref, await _json_body(request)))
            return json_response(store.test_steps(project_id, ref))

        async def test_step(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            ref = request.path_params["testCaseId"]
            step_id = _path_int(request, "stepId")
            if request.method == "PUT":
                body = await _json_body(request)
                return json_response(store.update_test_step(project_id, ref, step_id, body))
            if request.method == "DELETE":
                return json_response(store.delete_test_step(project_id, ref, step_id))
            return json_response(store.test_step(project_id, ref, step_id))

        # -- releases, cycles, suites ------------------------------------------------------------------
        async def releases(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            if request.method == "POST":
                return json_response(store.create_release(project_id, await _json_body(request)), 201)
            return json_response(
                store.releases(project_id, include_closed=_bool_query(request, "includeClosed", False))
            )

        async def release(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            release_id = _path_int(request, "releaseId")
            if request.method == "PUT":
                return json_response(store.update_release(project_id, release_id, await _json_body(request)))
            if request.method == "DELETE":
                return json_response(store.delete_release(project_id, release_id))
            return json_response(store.release(project_id, release_id))

        async def test_cycles(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            parent_id = _int_query(request, "parentId", None)
            if request.method == "POST":
                body = await _json_body(request)
                return json_response(
                    store.create_cycle(project_id, body, parent_id, _parent_type(request)), 201
                )
            page = _int_query(request, "page", 1)
            page_size = _int_query(request, "pageSize", 100)
            assert page is not None and page_size is not None
            if page < 1:
                raise QTestError(400, f"page must be >= 1 (pages are numbered from 1), got {page}")
            return json_response(
                store.test_cycles(
                    project_id,
                    parent_id=parent_id,
                    parent_type=_parent_type(request),
                    descendants=request.query_params.get("expand") == "descendants",
                    page=page,
                    page_size=min(page_size, MAX_PAGE_SIZE) if page_size > 0 else -1,
                )
            )

        async def test_cycle(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            cycle_id = _path_int(request, "testCycleId")
            if request.method == "PUT":
                parent_id = _int_query(request, "parentId", None)
                parent_type = _parent_type(request)
                body = await _json_body(request) if parent_id is None and parent_type is None else None
                return json_response(store.update_cycle(project_id, cycle_id, body, parent_id, parent_type))
            if request.method == "DELETE":
                return json_response(
                    store.delete_cycle(project_id, cycle_id, force=_bool_query(request, "force", False))
                )
            descendants = request.query_params.get("expand") == "descendants"
            return json_response(store.test_cycle(project_id, cycle_id, descendants=descendants))

        async def test_suites(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            parent_id = _int_query(request, "parentId", None)
            if request.method == "POST":
                body = await _json_body(request)
                return json_response(store.create_suite(project_id, body, parent_id, _parent_type(request)))
            return json_response(
                store.test_suites(project_id, parent_id=parent_id, parent_type=_parent_type(request))
            )

        async def test_suite(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            suite_id = _path_int(request, "testSuiteId")
            if request.method == "PUT":
                body = await _json_body(request)
                parent_id = _int_query(request, "parentId", None)
                return json_response(
                    store.update_suite(project_id, suite_id, body, parent_id, _parent_type(request))
                )
            if request.method == "DELETE":
                return json_response(store.delete_suite(project_id, suite_id))
            return json_response(store.test_suite(project_id, suite_id))

        # -- test runs and logs ------------------------------------------------------------------------
        async def test_runs(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            parent_id = _int_query(request, "parentId", None)
            if request.method == "POST":
                body = await _json_body(request)
                run = store.create_run(project_id, body, parent_id, _parent_type(request), _user_id(request))
                return json_response(run, 201)
            page, size = _page(request)
            total, items = store.test_runs(
                project_id,
                parent_id=parent_id,
                parent_type=_parent_type(request),
                descendants=request.query_params.get("expand") == "descendants",
                page=page,
                page_size=size,
            )
            return json_response(_paged(page, size, total, items))

        async def test_run(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            run_id = _path_int(request, "testRunId")
            if request.method == "PUT":
                parent_id = _int_query(request, "parentId", None)
                parent_type = _parent_type(request)
                body = await _json_body(request) if parent_id is None and parent_type is None else None
                return json_response(store.update_run(project_id, run_id, body, parent_id, parent_type))
            if request.method == "DELETE":
                return json_response(store.delete_run(project_id, run_id))
            return json_response(
                store.test_run(project_id, run_id, expand=request.query_params.get("expand"))
            )

        async def test_logs(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            run_id = _path_int(request, "testRunId")
            if request.method == "POST":
                body = await _json_body(request)
                return json_response(store.create_log(project_id, run_id, body, _user_id(request)), 201)
            page, size = _page(request)
            total, items = store.test_logs(project_id, run_id, page=page, page_size=size)
            return json_response(_paged(page, size, total, items))

        async def last_log(request: Request) -> Response:
            return json_response(
                store.last_log(_path_int(request, "projectId"), _path_int(request, "testRunId"))
            )

        async def test_log(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            run_id = _path_int(request, "testRunId")
            log_id = _path_int(request, "id")
            if request.method == "PUT":
                body = await _json_body(request)
                return json_response(store.update_log(project_id, run_id, log_id, body, _user_id(request)))
            return json_response(store.test_log(project_id, run_id, log_id))

        async def run_auto_log(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            run_id = _path_int(request, "testRunId")
            suite_date = None
            if _bool_query(request, "suitePerDay", False):
                raw = request.query_params.get("suiteDate") or ""
                if len(raw) != 8 or not raw.isdigit():
                    raise QTestError(
                        400, f"suiteDate is required with suitePerDay=true, as yyyymmdd; got '{raw}'"
                    )
                suite_date = f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
            body = await _json_body(request)
            return json_response(
                store.create_auto_log(project_id, run_id, body, _user_id(request), suite_date=suite_date), 201
            )

        async def bulk_auto_logs(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            if request.query_params.get("type") != "automation":
                raise QTestError(400, "type is required and must be 'automation'")
            body = await _json_body(request)
            return json_response(store.submit_auto_logs(project_id, body, _user_id(request)), 201)

        async def queue_processing(request: Request) -> Response:
            return json_response(store.poll_job(_path_int(request, "id")))

        # -- search ------------------------------------------------------------------------------------
        async def search(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            page, size = _page(request)
            body = await _json_body(request)
            total, items = store.search(
                project_id,
                body,
                page=page,
                page_size=size,
                append_steps=_bool_query(request, "appendTestSteps", False),
                include_log_properties=_bool_query(request, "includeTestLogProperties", False),
            )
            return json_response(_paged(page, size, total, items))

        # -- attachments -------------------------------------------------------------------------------
        async def attachment_search(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            object_type = request.query_params.get("type")
            if not object_type:
                raise QTestError(400, "type is required")
            ids: list[int] = []
            for raw in request.query_params.getlist("ids"):
                for part in raw.split(","):
                    if part.strip():
                        if not part.strip().isdigit():
                            raise QTestError(400, f"ids must be numbers, got '{part}'")
                        ids.append(int(part))
            page, size = _page(request)
            total, items = store.search_attachments(
                project_id, object_type, ids, _int_query(request, "author", None), page, size
            )
            return json_response(_paged(page, size, total, items))

        async def attachments(request: Request) -> Response:
            return json_response(
                store.attachments(
                    _path_int(request, "projectId"),
                    request.path_params["objectType"],
                    _path_int(request, "objectId"),
                )
            )

        async def attachment(request: Request) -> Response:
            name, content_type, data = store.attachment_content(
                _path_int(request, "projectId"),
                request.path_params["objectType"],
                _path_int(request, "objectId"),
                _path_int(request, "attachmentId"),
            )
            disposition = "attachment" if _bool_query(request, "forceDownload", False) else "inline"
            # The content type exactly as uploaded (media_type= would append a charset to text/*).
            return Response(
                data,
                headers={
                    "Content-Type": content_type,
                    "Content-Disposition": content_disposition(name).replace("attachment", disposition, 1),
                },
            )

        async def blob_handles(request: Request) -> Response:
            project_id = _path_int(request, "projectId")
            object_type = request.path_params["objectType"]
            object_id = _path_int(request, "objectId")
            # The target is checked before the bytes are read: a wrong type or id costs no upload.
            store.check_attachment_target(project_id, object_type, object_id)
            name = _file_name(request.headers.get("file-name"))
            content_type = request.headers.get("content-type")
            if not name:
                raise QTestError(400, "the File-Name header is required")
            if not content_type:
                raise QTestError(400, "the Content-Type header is required")
            cap = store.attachment_max_bytes
            chunks: list[bytes] = []
            size = 0
            # An oversized body is still read to its end (and dropped): answering while the client is
            # still sending would reach it as a reset connection, not as the 413.
            async for chunk in request.stream():
                size += len(chunk)
                if size <= cap:
                    chunks.append(chunk)
            if size > cap:
                chunks.clear()
                raise QTestError(413, f"The attachment is too large ({size} bytes; the limit is {cap})")
            created = store.upload(
                project_id, object_type, object_id, name, content_type, b"".join(chunks), _user_id(request)
            )
            return json_response(created, 201)

        async def delete_blob(request: Request) -> Response:
            return json_response(
                store.delete_attachment(
                    _path_int(request, "projectId"),
                    request.path_params["objectType"],
                    _path_int(request, "objectId"),
                    _path_int(request, "blobHandleId"),
                )
            )

        # -- admin (not part of the vendor API) ---------------------------------------------------------
        async def admin_info(request: Request) -> Response:
            return json_response(
                {
                    "base_url": self.base_url,
                    "api_url": self.api_url,
                    "token": self.token,
                    "username": self.username,
                    "password": self.password,
                    "state_dir": str(store.state_dir),
                    "site_seed": store.site_seed,
                    "faults": self.faults.config.to_json(),
                    "settings": self.settings(),
                    "counts": store.counts(),
                }
            )

        async def admin_stats(request: Request) -> Response:
            return json_response(self.stats.to_json())

        async def admin_stats_reset(request: Request) -> Response:
            self.stats.reset()
            return json_response(self.stats.to_json())

        async def admin_faults(request: Request) -> Response:
            if request.method == "POST":
                try:
                    changes = json.loads(await request.body() or b"{}")
                except json.JSONDecodeError as exc:
                    raise QTestError(400, f"body is not valid JSON: {exc}") from None
                if not isinstance(changes, dict):
                    raise QTestError(400, "body must be a JSON object of switches")
                try:
                    self._apply_settings(changes)
                    self.faults.update(changes)
                except FaultConfigError as exc:
                    raise QTestError(400, str(exc)) from None
            return json_response({**self.faults.config.to_json(), **self.settings()})

        async def admin_counts(request: Request) -> Response:
            raw = request.path_params.get("projectId")
            return json_response(store.counts(None if raw is None else _path_int(request, "projectId")))

        async def admin_dump(request: Request) -> Response:
            return json_response(store.dump(_path_int(request, "projectId")))

        async def admin_reset(request: Request) -> Response:
            store.reset()
            self.ensure_projects()
            return json_response(store.counts())

        p = f"{API}/projects/{{projectId}}"
        routes = [
            _route("/oauth/token", oauth_token, ["POST"]),
            _route("/oauth/status", oauth_status, ["GET"]),
            _route("/oauth/revoke", oauth_revoke, ["POST"]),
            _route(f"{API}/projects", projects, ["GET", "POST"]),
            _route(f"{API}/projects/queue-processing/{{id}}", queue_processing, ["GET"]),
            _route(p, project, ["GET"]),
            _route(f"{p}/users", project_users, ["GET"]),
            _route(f"{API}/users/search", users_search, ["GET"]),
            _route(f"{API}/users/{{userId}}", user, ["GET"]),
            _route(f"{p}/settings/{{objectType}}/fields", fields, ["GET", "POST"]),
            _route(f"{p}/settings/{{objectType}}/fields/{{fieldId}}", field, ["GET"]),
            _route(
                f"{p}/settings/{{objectType}}/fields/{{fieldId}}/allowed-values",
                allowed_values,
                ["GET", "POST"],
            ),
            _route(f"{p}/modules", modules, ["GET", "POST"]),
            _route(f"{p}/modules/{{moduleId}}", module, ["GET", "PUT", "DELETE"]),
            _route(f"{p}/test-cases", test_cases, ["GET", "POST"]),
            _route(f"{p}/test-cases/{{testCaseId}}", test_case, ["GET", "PUT", "DELETE"]),
            _route(f"{p}/test-cases/{{testCaseId}}/approve", approve, ["PUT"]),
            _route(f"{p}/test-cases/{{testCaseId}}/versions", versions, ["GET"]),
            _route(f"{p}/test-cases/{{testCaseId}}/versions/{{versionId}}", version, ["GET"]),
            _route(
                f"{p}/test-cases/{{testCaseId}}/versions/{{versionId}}/test-steps", version_steps, ["GET"]
            ),
            _route(f"{p}/test-cases/{{testCaseId}}/test-steps", test_steps, ["GET", "POST"]),
            _route(
                f"{p}/test-cases/{{testCaseId}}/test-steps/{{stepId}}", test_step, ["GET", "PUT", "DELETE"]
            ),
            _route(f"{p}/releases", releases, ["GET", "POST"]),
            _route(f"{p}/releases/{{releaseId}}", release, ["GET", "PUT", "DELETE"]),
            _route(f"{p}/test-cycles", test_cycles, ["GET", "POST"]),
            _route(f"{p}/test-cycles/{{testCycleId}}", test_cycle, ["GET", "PUT", "DELETE"]),
            _route(f"{p}/test-suites", test_suites, ["GET", "POST"]),
            _route(f"{p}/test-suites/{{testSuiteId}}", test_suite, ["GET", "PUT", "DELETE"]),
            # Literal segments before the {testRunId} routes they would otherwise match.
            _route(f"{p}/test-runs/execution-statuses", execution_statuses, ["GET"]),
            _route(f"{p}/test-runs", test_runs, ["GET", "POST"]),
            _route(f"{p}/test-runs/{{testRunId}}", test_run, ["GET", "PUT", "DELETE"]),
            _route(f"{p}/test-runs/{{testRunId}}/test-logs", test_logs, ["GET", "POST"]),
            _route(f"{p}/test-runs/{{testRunId}}/test-logs/last-run", last_log, ["GET"]),
            _route(f"{p}/test-runs/{{testRunId}}/test-logs/{{id}}", test_log, ["GET", "PUT"]),
            _route(f"{p}/test-runs/{{testRunId}}/auto-test-logs", run_auto_log, ["POST"]),
            _route(f"{p}/auto-test-logs", bulk_auto_logs, ["POST"]),
            _route(f"{p}/search", search, ["POST"]),
            _route(f"{p}/attachments", attachment_search, ["GET"]),
            _route(f"{p}/{{objectType}}/{{objectId}}/attachments", attachments, ["GET"]),
            _route(f"{p}/{{objectType}}/{{objectId}}/attachments/{{attachmentId}}", attachment, ["GET"]),
            _route(f"{p}/{{objectType}}/{{objectId}}/blob-handles", blob_handles, ["POST"]),
            _route(f"{p}/{{objectType}}/{{objectId}}/blob-handles/{{blobHandleId}}", delete_blob, ["DELETE"]),
            _route("/_sandbox/info", admin_info, ["GET"]),
            _route("/_sandbox/stats", admin_stats, ["GET"]),
            _route("/_sandbox/stats/reset", admin_stats_reset, ["POST"]),
            _route("/_sandbox/faults", admin_faults, ["GET", "POST"]),
            _route("/_sandbox/counts", admin_counts, ["GET"]),
            _route("/_sandbox/counts/{projectId}", admin_counts, ["GET"]),
            _route("/_sandbox/dump/{projectId}", admin_dump, ["GET"]),
            _route("/_sandbox/reset", admin_reset, ["POST"]),
        ]

        async def on_api_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, QTestError)
            return json_response(error_body(exc.message), exc.status, raw=True)

        async def on_http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
            return json_response(error_body(message), exc.status_code, raw=True)

        return Starlette(
            routes=routes,
            exception_handlers={QTestError: on_api_error, HTTPException: on_http_error},
        )


def _route(path: str, handler: Callable[[Request], Awaitable[Response]], methods: list[str]) -> Route:
    """A route whose unexpected failures answer a 500 ``{"message"}`` (and are logged): a sandbox bug must
    look like a server error to the client, not like a protocol one."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except QTestError:
            raise
        except Exception:
            logger.exception(
                "qTest sandbox: unexpected error serving %s %s", request.method, request.url.path
            )
            return json_response(error_body(SERVER_ERROR_MESSAGE), 500, raw=True)

    return Route(path, guarded, methods=methods)


# ---------------------------------------------------------------------------- the outer layer


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
                await _send_simple(send, 401, body, _budget_headers(minute, month))
                return
            scope.setdefault("state", {})["qtest_user_id"] = user_id

        decision = faults.check_rate(budget_key)
        budget = _budget_headers(decision.remaining_minute, decision.remaining_month)
        if decision.wait is not None:
            retry_after = faults.retry_after_header(decision.wait)
            extra = [(b"retry-after", retry_after.encode())] if retry_after is not None else []
            stats.record(key, 429)
            await _send_simple(send, 429, error_body("API rate limit exceeded"), [*budget, *extra])
            return

        fault_status = faults.draw_fault_status()
        if fault_status is not None:
            stats.injected_faults += 1
            stats.record(key, fault_status)
            await _send_simple(send, fault_status, error_body(SERVER_ERROR_MESSAGE), budget)
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


async def _send_simple(
    send: Any, status: int, body: bytes, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
