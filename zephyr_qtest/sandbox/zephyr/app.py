"""The Zephyr Scale Cloud sandbox as an ASGI app (Starlette), faithful to the vendor's v2 spec.

``create_app(fixture, base_url=..., token_secret=...)`` returns an app serving, under ``/v2``,
every GET the migration uses (offset pages and 2026 cursor "nextgen" pages, test scripts and
steps, executions and their step results, links, versions, 2026 attachments), with Bearer-JWT
auth, CORS headers on every answer, and the switches of ``faults.py``. Admin endpoints under
``/_sandbox/`` (no auth, not part of the vendor API) expose request statistics, change the
switches at run time, and edit or delete objects mid-run.

Decisions the spec leaves open are listed in docs/zephyr-sandbox.md; the client is written to
the same rules.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.common import RequestStats, content_disposition, send_json
from zephyr_qtest.sandbox.zephyr.auth import AuthResult, check_authorization, mint_token
from zephyr_qtest.sandbox.zephyr.faults import FaultConfig, FaultConfigError, FaultInjector
from zephyr_qtest.sandbox.zephyr.store import (
    FOLDER_TYPES,
    STATUS_TYPES,
    Record,
    Selection,
    StoreError,
    ZephyrStore,
    parse_timestamp,
)

# Caps on maxResults / limit. The spec: "the maximum value that can be requested is 1000";
# test steps: "a paged response, with 100 items per page".
MAX_PAGE = 1000
STEP_PAGE = 100
MAX_START_AT = 1_000_000

CORS_HEADERS: list[tuple[bytes, bytes]] = [
    (b"access-control-allow-origin", b"*"),
    (
        b"access-control-allow-headers",
        b"Content-Type,Authorization,X-Amz-Date,X-Api-Key,X-Amz-Security-Token",
    ),
    (b"access-control-allow-methods", b"DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"),
]
logger = logging.getLogger(__name__)
SERVER_ERROR_MESSAGE = "backend returned a 5xx or could not be reached"

_PROJECT_KEY = re.compile(r"[A-Z][A-Z_0-9]+")
_PROJECT_REF = re.compile(r"[0-9]+|[A-Z][A-Z_0-9]+")
_CASE_KEY = re.compile(r".+-T[0-9]+")
_CASE_REF = re.compile(r"[0-9]+|.+-T[0-9]+")
_CYCLE_REF = re.compile(r"[0-9]+|.+-[RC][0-9]+")
_PLAN_REF = re.compile(r"[0-9]+|.+-P[0-9]+")
_EXECUTION_REF = re.compile(r"[0-9]+|.+-E[0-9]+")

# Singular and plural spellings accepted by POST /_sandbox/mutate.
_KIND_NAMES = {
    **{kind: kind for kind in ("testcases", "testcycles", "testplans", "testexecutions", "folders")},
    **{kind: kind for kind in ("statuses", "priorities", "environments")},
    "testcase": "testcases",
    "testcycle": "testcycles",
    "testplan": "testplans",
    "testexecution": "testexecutions",
    "folder": "folders",
    "status": "statuses",
    "priority": "priorities",
    "environment": "environments",
}

_LABELS = {
    "projects": "Project",
    "folders": "Folder",
    "statuses": "Status",
    "priorities": "Priority",
    "environments": "Environment",
    "testcases": "Test case",
    "testcycles": "Test cycle",
    "testplans": "Test plan",
    "testexecutions": "Test execution",
}


class ApiError(Exception):
    """An error answer in the spec's shape ``{"errorCode": N, "message": "..."}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(body: str | bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = body.encode("utf-8") if isinstance(body, str) else body
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def error_body(status: int, message: str) -> bytes:
    return json.dumps({"errorCode": status, "message": message}).encode("utf-8")


def _not_found(kind: str, ref: Any) -> ApiError:
    return ApiError(404, f"{_LABELS[kind]} '{ref}' does not exist or you do not have access to it")


# ---------------------------------------------------------------------------- request parsing


def _int_query(
    request: Request, name: str, default: int | None, *, low: int, high: int | None = None
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got '{raw}'") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"greater than or equal to {low}"
        raise ApiError(400, f"{name} must be {bound}")
    return value


def _bool_query(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ApiError(400, f"{name} must be true or false, got '{raw}'")


def _time_query(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    moment = parse_timestamp(raw)
    if moment is None:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time such as 2024-05-20T13:15:13Z, got '{raw}'")
    return moment


def _path_param(request: Request, name: str, pattern: re.Pattern[str], shape: str) -> str:
    value = request.path_params[name]
    if not pattern.fullmatch(value):
        raise ApiError(400, f"{name} '{value}' does not match the pattern {shape}")
    return value


def _numeric_path_param(request: Request, name: str) -> int:
    value = request.path_params[name]
    if not value.isdigit() or int(value) < 1:
        raise ApiError(400, f"{name} must be a number greater than 0, got '{value}'")
    return int(value)


# ---------------------------------------------------------------------------- statistics


class ZephyrRequestStats(RequestStats):
    """What the server saw: the benchmark reads it to learn how many requests a client really made."""

    counters = (
        "rate_limited",
        "server_errors",
        "injected_faults",
        "drops",
        "malformed",
        "unauthorized",
        "bytes_sent",
    )
    malformed: int
    bytes_sent: int

    def record(self, key: str, status: int | str, size: int = 0) -> None:
        """Count one request under its route template, with the bytes its answer carried."""
        super().record(key, status)
        self.bytes_sent += size


# ---------------------------------------------------------------------------- the sandbox


class ZephyrSandbox:
    """Everything one running sandbox holds: data, token, switches, statistics, and its ASGI app."""

    def __init__(
        self,
        fixture: Mapping[str, Any],
        *,
        base_url: str,
        token_secret: bytes,
        faults: FaultConfig | None = None,
    ) -> None:
        self.store = ZephyrStore(fixture, base_url=base_url)
        self.base_url = self.store.base_url
        self.secret = token_secret
        self.token = mint_token(token_secret)
        self.faults = FaultInjector(faults)
        self.stats = ZephyrRequestStats()
        self.app = self._build_app()
        self._templates = [
            (route.path_regex, route.path) for route in self.app.routes if isinstance(route, Route)
        ]
        self.asgi = SandboxMiddleware(self.app, self)

    # ------------------------------------------------------------------ paging

    def _cap(self, endpoint_cap: int) -> int:
        page_cap = self.faults.config.page_cap
        return min(endpoint_cap, page_cap) if page_cap else endpoint_cap

    def _next_url(self, request: Request, replace: Mapping[str, Any]) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k not in replace]
        params.extend((k, str(v)) for k, v in replace.items())
        api_path = request.url.path[len("/v2") :]
        return f"{self.base_url}{api_path}?{urlencode(params)}"

    def offset_page(
        self,
        request: Request,
        items: Sequence[Any],
        render: Callable[[Any], str],
        *,
        endpoint_cap: int = MAX_PAGE,
    ) -> Response:
        """A ``PagedList``: ``maxResults`` is the effective one, ``next`` null on the last page."""
        requested = _int_query(request, "maxResults", 10, low=1)
        start_at = _int_query(request, "startAt", 0, low=0, high=MAX_START_AT)
        assert requested is not None and start_at is not None
        max_results = min(requested, self._cap(endpoint_cap))
        total = len(items)
        chunk = items[start_at : start_at + max_results]
        is_last = start_at + max_results >= total
        next_url = (
            None
            if is_last
            else self._next_url(request, {"startAt": start_at + max_results, "maxResults": max_results})
        )
        body = (
            f'{{"next":{json.dumps(next_url)},"startAt":{start_at},"maxResults":{max_results},'
            f'"total":{total},"isLast":{"true" if is_last else "false"},"values":['
            + ",".join(render(item) for item in chunk)
            + "]}"
        )
        return json_response(body)

    def cursor_page(self, request: Request, selection: Selection) -> Response:
        """A 2026 "nextgen" page: items with id >= startAtId in id order; ``next`` null on the last."""
        limit = _int_query(request, "limit", 10, low=1, high=MAX_PAGE)
        start_at_id = _int_query(request, "startAtId", 0, low=0)
        assert limit is not None and start_at_id is not None
        limit = min(limit, self._cap(MAX_PAGE))
        # Objects without an id (bad fixtures) cannot be reached by a cursor; they sort last.
        end = bisect.bisect_left(selection.ids, 2**63)
        first = bisect.bisect_left(selection.ids, start_at_id, 0, end)
        chunk = selection.records[first : min(first + limit, end)]
        next_id = selection.ids[first + limit] if first + limit < end else None
        next_url = (
            None if next_id is None else self._next_url(request, {"startAtId": next_id, "limit": limit})
        )
        body = (
            f'{{"next":{json.dumps(next_url)},"nextStartAtId":{json.dumps(next_id)},"limit":{limit},"values":['
            + ",".join(self.store.render(record) for record in chunk)
            + "]}"
        )
        return json_response(body)

    # ------------------------------------------------------------------ lookups shared by handlers

    def _project_filter(self, request: Request) -> int | None:
        key = request.query_params.get("projectKey")
        if key is None or key == "":
            return None
        if not _PROJECT_KEY.fullmatch(key):
            raise ApiError(400, f"projectKey '{key}' does not match the pattern ([A-Z][A-Z_0-9]+)")
        project_id = self.store.project_id_for_key(key)
        if project_id is None:
            raise ApiError(400, f"Cannot access projects '{key}'")
        return project_id

    def _case(self, request: Request, name: str = "testCaseKey") -> Record:
        key = _path_param(request, name, _CASE_KEY, "(.+-T[0-9]+)")
        record = self.store.test_case(key)
        if record is None:
            raise _not_found("testcases", key)
        return record

    def _case_by_ref(self, request: Request) -> Record:
        ref = _path_param(request, "testCaseIdOrKey", _CASE_REF, "([0-9]+)|(.+-T[0-9]+)")
        record = self.store.get("testcases", ref)
        if record is None:
            raise _not_found("testcases", ref)
        return record

    def _object(self, request: Request, kind: str, name: str, pattern: re.Pattern[str], shape: str) -> Record:
        ref = _path_param(request, name, pattern, shape)
        record = self.store.get(kind, ref)
        if record is None:
            raise _not_found(kind, ref)
        return record

    def _by_numeric_id(self, request: Request, kind: str, name: str) -> Record:
        ident = _numeric_path_param(request, name)
        record = self.store.collections[kind].by_id.get(ident)
        if record is None:
            raise _not_found(kind, ident)
        return record

    def _execution(self, request: Request) -> Record:
        return self._object(
            request, "testexecutions", "testExecutionIdOrKey", _EXECUTION_REF, "([0-9]+)|(.+-E[0-9]+)"
        )

    def _cycle(self, request: Request) -> Record:
        return self._object(request, "testcycles", "testCycleIdOrKey", _CYCLE_REF, "([0-9]+)|(.+-R[0-9]+)")

    def _plan(self, request: Request) -> Record:
        return self._object(request, "testplans", "testPlanIdOrKey", _PLAN_REF, "([0-9]+)|(.+-P[0-9]+)")

    def _execution_filters(self, request: Request) -> dict[str, Any]:
        filters: dict[str, Any] = {"project_id": self._project_filter(request)}
        cycle_ref = request.query_params.get("testCycle")
        if cycle_ref:
            if not _CYCLE_REF.fullmatch(cycle_ref):
                raise ApiError(
                    400, f"testCycle '{cycle_ref}' does not match the pattern ([0-9]+)|(.+-R[0-9]+)"
                )
            cycle = self.store.get("testcycles", cycle_ref)
            filters["cycle_id"] = cycle.oid if cycle is not None and cycle.oid is not None else -1
        case_ref = request.query_params.get("testCase")
        if case_ref:
            if not _CASE_REF.fullmatch(case_ref):
                raise ApiError(400, f"testCase '{case_ref}' does not match the pattern ([0-9]+)|(.+-T[0-9]+)")
            case = self.store.get("testcases", case_ref)
            # A deleted or unknown case still filters (to whatever executions name that key).
            filters["case_key"] = case.key if case is not None else ("" if case_ref.isdigit() else case_ref)
        filters["end_after"] = _time_query(request, "actualEndDateAfter")
        filters["end_before"] = _time_query(request, "actualEndDateBefore")
        filters["jira_version_id"] = _int_query(request, "jiraProjectVersionId", None, low=1)
        filters["only_last"] = _bool_query(request, "onlyLastExecutions") or None
        _bool_query(request, "includeStepLinks")  # accepted and validated; steps carry no links here
        return filters

    def _step(self, steps: Sequence[Mapping[str, Any]], step_id: int, what: str) -> None:
        if not any(step.get("id") == step_id for step in steps):
            raise ApiError(404, f"{what} step '{step_id}' does not exist or you do not have access to it")

    # ------------------------------------------------------------------ the app

    def _build_app(self) -> Starlette:
        store = self.store

        def render(record: Record) -> str:
            return store.render(record)

        def raw(text: str) -> str:
            return text

        def one(record: Record) -> Response:
            return json_response(store.render(record))

        # -- simple collections -------------------------------------------------------------
        async def healthcheck(request: Request) -> Response:
            return Response(status_code=200)

        async def list_projects(request: Request) -> Response:
            return self.offset_page(request, store.select("projects").records, render)

        async def get_project(request: Request) -> Response:
            return one(
                self._object(
                    request, "projects", "projectIdOrKey", _PROJECT_REF, "([0-9]+)|([A-Z][A-Z_0-9]+)"
                )
            )

        async def list_folders(request: Request) -> Response:
            folder_type = request.query_params.get("folderType") or None
            if folder_type is not None and folder_type not in FOLDER_TYPES:
                raise ApiError(
                    400, f"folderType must be one of {', '.join(FOLDER_TYPES)}, got '{folder_type}'"
                )
            selection = store.select(
                "folders", project_id=self._project_filter(request), folder_type=folder_type
            )
            return self.offset_page(request, selection.records, render)

        async def list_statuses(request: Request) -> Response:
            status_type = request.query_params.get("statusType") or None
            if status_type is not None and status_type not in STATUS_TYPES:
                raise ApiError(
                    400, f"statusType must be one of {', '.join(STATUS_TYPES)}, got '{status_type}'"
                )
            selection = store.select(
                "statuses", project_id=self._project_filter(request), status_type=status_type
            )
            return self.offset_page(request, selection.records, render)

        def lister(kind: str) -> Callable[[Request], Awaitable[Response]]:
            async def handler(request: Request) -> Response:
                selection = store.select(kind, project_id=self._project_filter(request))
                return self.offset_page(request, selection.records, render)

            return handler

        def getter(kind: str, name: str) -> Callable[[Request], Awaitable[Response]]:
            async def handler(request: Request) -> Response:
                return one(self._by_numeric_id(request, kind, name))

            return handler

        # -- test cases -------------------------------------------------------------------------
        def case_filters(request: Request) -> dict[str, Any]:
            return {
                "project_id": self._project_filter(request),
                "folder_id": _int_query(request, "folderId", None, low=1),
            }

        async def list_cases(request: Request) -> Response:
            return self.offset_page(
                request, store.select("testcases", **case_filters(request)).records, render
            )

        async def nextgen_cases(request: Request) -> Response:
            updated_after = _time_query(request, "updatedAfter")
            return self.cursor_page(
                request, store.select("testcases", **case_filters(request), updated_after=updated_after)
            )

        async def get_case(request: Request) -> Response:
            return one(self._case(request))

        async def case_links(request: Request) -> Response:
            record = self._case(request)
            links = record.obj.get("links") if isinstance(record.obj.get("links"), dict) else {}
            body = {
                "self": f"{self.base_url}/testcases/{record.key}/links",
                "issues": links.get("issues") or [],
                "webLinks": links.get("webLinks") or [],
            }
            return json_response(store.to_json(body))

        async def case_versions(request: Request) -> Response:
            record = self._case(request)
            versions = store.version_records(record.key or "")
            # Most recent first, as the spec says.
            links = [
                {"id": version.oid, "self": f"{self.base_url}/testcases/{record.key}/versions/{number}"}
                for number, version in reversed(list(enumerate(versions, start=1)))
            ]
            return self.offset_page(request, links, store.to_json)

        async def case_version(request: Request) -> Response:
            record = self._case(request)
            raw_number = request.path_params["version"]
            if not raw_number.isdigit() or int(raw_number) < 1:
                raise ApiError(400, f"version must be a number greater than 0, got '{raw_number}'")
            versions = store.version_records(record.key or "")
            number = int(raw_number)
            if number > len(versions):
                raise ApiError(
                    404,
                    f"Test case version '{record.key}' {number} does not exist or you do not have access to it",
                )
            return one(versions[number - 1])

        async def case_script(request: Request) -> Response:
            record = self._case(request)
            script = store.scripts.get(record.key or "")
            if script is None:
                # Step-by-step and scriptless cases have no plain/BDD script (the rule the client follows).
                raise ApiError(
                    404,
                    f"Test script for test case '{record.key}' does not exist or is not a plain text or BDD script",
                )
            return json_response(store.to_json(script))

        async def case_steps(request: Request) -> Response:
            record = self._case(request)
            key = record.key or ""
            # Plain/BDD (and scriptless) cases answer an empty page, not an error.
            steps = store.rendered_list(("teststeps", key), store.steps.get(key, []))
            return self.offset_page(request, steps, raw, endpoint_cap=STEP_PAGE)

        # -- cycles, plans ------------------------------------------------------------------------
        def cycle_filters(request: Request) -> dict[str, Any]:
            return {
                "project_id": self._project_filter(request),
                "folder_id": _int_query(request, "folderId", None, low=1),
                "jira_version_id": _int_query(request, "jiraProjectVersionId", None, low=1),
            }

        async def list_cycles(request: Request) -> Response:
            return self.offset_page(
                request, store.select("testcycles", **cycle_filters(request)).records, render
            )

        async def nextgen_cycles(request: Request) -> Response:
            updated_after = _time_query(request, "updatedAfter")
            return self.cursor_page(
                request, store.select("testcycles", **cycle_filters(request), updated_after=updated_after)
            )

        async def get_cycle(request: Request) -> Response:
            return one(self._cycle(request))

        async def cycle_links(request: Request) -> Response:
            record = self._cycle(request)
            links = record.obj.get("links") if isinstance(record.obj.get("links"), dict) else {}
            body = {
                "self": f"{self.base_url}/testcycles/{record.oid}/links",
                "issues": links.get("issues") or [],
                "webLinks": links.get("webLinks") or [],
                "testPlans": links.get("testPlans") or [],
            }
            return json_response(store.to_json(body))

        async def list_plans(request: Request) -> Response:
            selection = store.select("testplans", project_id=self._project_filter(request))
            return self.offset_page(request, selection.records, render)

        async def nextgen_plans(request: Request) -> Response:
            selection = store.select(
                "testplans",
                project_id=self._project_filter(request),
                updated_after=_time_query(request, "updatedAfter"),
            )
            return self.cursor_page(request, selection)

        async def get_plan(request: Request) -> Response:
            return one(self._plan(request))

        # -- executions ---------------------------------------------------------------------------
        async def list_executions(request: Request) -> Response:
            return self.offset_page(
                request, store.select("testexecutions", **self._execution_filters(request)).records, render
            )

        async def nextgen_executions(request: Request) -> Response:
            filters = self._execution_filters(request)
            filters["updated_after"] = _time_query(request, "updatedAfter")
            return self.cursor_page(request, store.select("testexecutions", **filters))

        async def get_execution(request: Request) -> Response:
            _bool_query(request, "includeStepLinks")
            return one(self._execution(request))

        async def execution_steps(request: Request) -> Response:
            record = self._execution(request)
            row = _int_query(request, "testDataRowNumber", None, low=0)
            steps = store.execution_steps.get(record.oid or 0, [])
            if row is not None:
                chosen = [
                    step for step in steps if (step.get("inline") or {}).get("testDataRowNumber") == row
                ]
                rendered = [store.to_json(step) for step in chosen]
            else:
                rendered = store.rendered_list(("testexecution_steps", record.oid), steps)
            return self.offset_page(request, rendered, raw, endpoint_cap=STEP_PAGE)

        async def execution_links(request: Request) -> Response:
            record = self._execution(request)
            links = record.obj.get("links") if isinstance(record.obj.get("links"), dict) else {}
            body = {
                "self": f"{self.base_url}/testexecutions/{record.oid}/links",
                "issues": links.get("issues") or [],
            }
            return json_response(store.to_json(body))

        # -- attachments (2026) ------------------------------------------------------------------
        def case_owner(request: Request, with_step: bool) -> tuple[Any, ...]:
            record = self._case_by_ref(request)
            if not with_step:
                return ("testcases", record.key)
            step_id = _numeric_path_param(request, "testStepId")
            self._step(store.steps.get(record.key or "", []), step_id, "Test case")
            return ("testcases", record.key, step_id)

        def execution_owner(request: Request, with_step: bool) -> tuple[Any, ...]:
            record = self._execution(request)
            if not with_step:
                return ("testexecutions", record.oid)
            step_id = _numeric_path_param(request, "testStepId")
            self._step(store.execution_steps.get(record.oid or 0, []), step_id, "Test execution")
            return ("testexecutions", record.oid, step_id)

        owners: dict[str, Callable[[Request], tuple[Any, ...]]] = {
            "case": lambda r: case_owner(r, False),
            "case_step": lambda r: case_owner(r, True),
            "cycle": lambda r: ("testcycles", self._cycle(r).oid),
            "plan": lambda r: ("testplans", self._plan(r).oid),
            "execution": lambda r: execution_owner(r, False),
            "execution_step": lambda r: execution_owner(r, True),
        }

        def attachment_list(owner_kind: str) -> Callable[[Request], Awaitable[Response]]:
            async def handler(request: Request) -> Response:
                files = store.attachment_list(owners[owner_kind](request))
                # The 2026 schema's list item is exactly {id, name} (strict); nothing more is sent.
                body = {"attachments": [{"id": item.id, "name": item.name} for item in files]}
                return json_response(json.dumps(body, ensure_ascii=False))

            return handler

        def attachment_content(owner_kind: str) -> Callable[[Request], Awaitable[Response]]:
            async def handler(request: Request) -> Response:
                owner = owners[owner_kind](request)
                attachment_id = _numeric_path_param(request, "attachmentId")
                for item in store.attachment_list(owner):
                    if item.id == attachment_id:
                        return Response(
                            item.data,
                            media_type=item.content_type,
                            headers={"Content-Disposition": content_disposition(item.name)},
                        )
                raise ApiError(
                    404, f"Attachment '{attachment_id}' does not exist or you do not have access to it"
                )

            return handler

        # -- admin (not part of the vendor API) ---------------------------------------------------
        async def admin_stats(request: Request) -> Response:
            return json_response(json.dumps(self.stats.to_json()))

        async def admin_stats_reset(request: Request) -> Response:
            self.stats.reset()
            return json_response(json.dumps(self.stats.to_json()))

        async def admin_faults(request: Request) -> Response:
            if request.method == "POST":
                try:
                    changes = json.loads(await request.body() or b"{}")
                except json.JSONDecodeError as exc:
                    raise ApiError(400, f"body is not valid JSON: {exc}") from None
                if not isinstance(changes, dict):
                    raise ApiError(400, "body must be a JSON object of switches")
                try:
                    self.faults.update(changes)
                except FaultConfigError as exc:
                    raise ApiError(400, str(exc)) from None
            return json_response(json.dumps(self.faults.config.to_json()))

        async def admin_delete_case(request: Request) -> Response:
            key = request.path_params["testCaseKey"]
            if not store.delete_test_case(key):
                raise _not_found("testcases", key)
            return json_response(json.dumps({"deleted": key}))

        async def admin_mutate(request: Request) -> Response:
            try:
                body = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError as exc:
                raise ApiError(400, f"body is not valid JSON: {exc}") from None
            if not isinstance(body, dict):
                raise ApiError(400, "body must be a JSON object")
            kind = _KIND_NAMES.get(str(body.get("type", "testcases")), str(body.get("type")))
            ref = body.get("key", body.get("id"))
            changes = body.get("set", {})
            remove = body.get("remove", [])
            if ref is None or not isinstance(changes, dict) or not isinstance(remove, list):
                raise ApiError(
                    400, 'expected {"type": "testcase", "key": "KEY-T1", "set": {...}, "remove": [...]}'
                )
            try:
                record = store.mutate(str(kind), str(ref), changes, remove)
            except StoreError as exc:
                raise ApiError(404 if "no object" in str(exc) else 400, str(exc)) from None
            return json_response(store.render(record))

        async def admin_info(request: Request) -> Response:
            info = {
                "base_url": self.base_url,
                "fixture": store.meta,
                "counts": store.counts(),
                "faults": self.faults.config.to_json(),
            }
            return json_response(json.dumps(info, ensure_ascii=False))

        v2 = "/v2"
        routes = [
            _route(f"{v2}/healthcheck", healthcheck),
            _route(f"{v2}/projects", list_projects),
            _route(f"{v2}/projects/{{projectIdOrKey}}", get_project),
            _route(f"{v2}/folders", list_folders),
            _route(f"{v2}/folders/{{folderId}}", getter("folders", "folderId")),
            _route(f"{v2}/statuses", list_statuses),
            _route(f"{v2}/statuses/{{statusId}}", getter("statuses", "statusId")),
            _route(f"{v2}/priorities", lister("priorities")),
            _route(f"{v2}/priorities/{{priorityId}}", getter("priorities", "priorityId")),
            _route(f"{v2}/environments", lister("environments")),
            _route(f"{v2}/environments/{{environmentId}}", getter("environments", "environmentId")),
            _route(f"{v2}/testcases", list_cases),
            _route(f"{v2}/testcases/nextgen", nextgen_cases),
            _route(f"{v2}/testcases/{{testCaseKey}}", get_case),
            _route(f"{v2}/testcases/{{testCaseKey}}/links", case_links),
            _route(f"{v2}/testcases/{{testCaseKey}}/versions", case_versions),
            _route(f"{v2}/testcases/{{testCaseKey}}/versions/{{version}}", case_version),
            _route(f"{v2}/testcases/{{testCaseKey}}/testscript", case_script),
            _route(f"{v2}/testcases/{{testCaseKey}}/teststeps", case_steps),
            _route(f"{v2}/testcases/{{testCaseIdOrKey}}/attachments", attachment_list("case")),
            _route(
                f"{v2}/testcases/{{testCaseIdOrKey}}/attachments/{{attachmentId}}", attachment_content("case")
            ),
            _route(
                f"{v2}/testcases/{{testCaseIdOrKey}}/teststeps/{{testStepId}}/attachments",
                attachment_list("case_step"),
            ),
            _route(
                f"{v2}/testcases/{{testCaseIdOrKey}}/teststeps/{{testStepId}}/attachments/{{attachmentId}}",
                attachment_content("case_step"),
            ),
            _route(f"{v2}/testcycles", list_cycles),
            _route(f"{v2}/testcycles/nextgen", nextgen_cycles),
            _route(f"{v2}/testcycles/{{testCycleIdOrKey}}", get_cycle),
            _route(f"{v2}/testcycles/{{testCycleIdOrKey}}/links", cycle_links),
            _route(f"{v2}/testcycles/{{testCycleIdOrKey}}/attachments", attachment_list("cycle")),
            _route(
                f"{v2}/testcycles/{{testCycleIdOrKey}}/attachments/{{attachmentId}}",
                attachment_content("cycle"),
            ),
            _route(f"{v2}/testplans", list_plans),
            _route(f"{v2}/testplans/nextgen", nextgen_plans),
            _route(f"{v2}/testplans/{{testPlanIdOrKey}}", get_plan),
            _route(f"{v2}/testplans/{{testPlanIdOrKey}}/attachments", attachment_list("plan")),
            _route(
                f"{v2}/testplans/{{testPlanIdOrKey}}/attachments/{{attachmentId}}", attachment_content("plan")
            ),
            _route(f"{v2}/testexecutions", list_executions),
            _route(f"{v2}/testexecutions/nextgen", nextgen_executions),
            _route(f"{v2}/testexecutions/{{testExecutionIdOrKey}}", get_execution),
            _route(f"{v2}/testexecutions/{{testExecutionIdOrKey}}/teststeps", execution_steps),
            _route(f"{v2}/testexecutions/{{testExecutionIdOrKey}}/links", execution_links),
            _route(f"{v2}/testexecutions/{{testExecutionIdOrKey}}/attachments", attachment_list("execution")),
            _route(
                f"{v2}/testexecutions/{{testExecutionIdOrKey}}/attachments/{{attachmentId}}",
                attachment_content("execution"),
            ),
            _route(
                f"{v2}/testexecutions/{{testExecutionIdOrKey}}/teststeps/{{testStepId}}/attachments",
                attachment_list("execution_step"),
            ),
            _route(
                f"{v2}/testexecutions/{{testExecutionIdOrKey}}/teststeps/{{testStepId}}/attachments/{{attachmentId}}",
                attachment_content("execution_step"),
            ),
            _route("/_sandbox/info", admin_info),
            _route("/_sandbox/stats", admin_stats),
            _route("/_sandbox/stats/reset", admin_stats_reset, methods=["POST"]),
            _route("/_sandbox/faults", admin_faults, methods=["GET", "POST"]),
            _route("/_sandbox/testcases/{testCaseKey}", admin_delete_case, methods=["DELETE"]),
            _route("/_sandbox/mutate", admin_mutate, methods=["POST"]),
        ]

        async def on_api_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, ApiError)
            return json_response(error_body(exc.status, exc.message), exc.status)

        async def on_http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
            return json_response(error_body(exc.status_code, message), exc.status_code)

        return Starlette(
            routes=routes,
            exception_handlers={ApiError: on_api_error, HTTPException: on_http_error},
        )

    def template_for(self, path: str) -> str:
        """The route template of an API path (how the statistics group requests)."""
        for regex, template in self._templates:
            if regex.match(path):
                return template
        return "(unmatched)"


def _route(
    path: str, handler: Callable[[Request], Awaitable[Response]], methods: list[str] | None = None
) -> Route:
    """A route whose unexpected failures answer the spec's 500 body (and are logged), not a bare
    text error: a sandbox bug must look like a server error to the client, not like a protocol one."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError:
            raise
        except Exception:
            logger.exception("Zephyr sandbox: unexpected error serving %s", request.url.path)
            return json_response(error_body(500, SERVER_ERROR_MESSAGE), 500)

    return Route(path, guarded, methods=methods)


# ---------------------------------------------------------------------------- the outer layer


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
    return json.dumps(page, ensure_ascii=False).encode("utf-8")


async def _send_simple(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send_json(send, status, body, [*CORS_HEADERS, *(extra_headers or [])], content_type)


def create_app(
    fixture: Mapping[str, Any],
    *,
    base_url: str = "http://testserver/v2",
    token_secret: bytes,
    faults: FaultConfig | None = None,
) -> ZephyrSandbox:
    """Build a sandbox for ``fixture``; serve ``.asgi`` (the ASGI callable) with any ASGI server.

    ``base_url`` is the API root the sandbox is reachable at: every ``self`` and ``next`` link
    is made on it.
    """
    return ZephyrSandbox(fixture, base_url=base_url, token_secret=token_secret, faults=faults)
