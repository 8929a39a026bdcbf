"""Request-level pieces every route module of the Zephyr sandbox uses.

The spec's error answer (``ApiError``, ``{"errorCode": N, "message": "..."}``), parsing of query and
path parameters with the spec's patterns and bounds, the lookups of the objects a path names (a 404
in the spec's words when there is none), and ``route``, which turns a sandbox bug into the spec's 500.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.zephyr.store import Record, ZephyrStore, parse_timestamp

V2 = "/v2"
# Caps on maxResults / limit. The spec: "the maximum value that can be requested is 1000";
# test steps: "a paged response, with 100 items per page".
MAX_PAGE = 1000
STEP_PAGE = 100
MAX_START_AT = 1_000_000

logger = logging.getLogger(__name__)
SERVER_ERROR_MESSAGE = "backend returned a 5xx or could not be reached"

PROJECT_KEY = re.compile(r"[A-Z][A-Z_0-9]+")
PROJECT_REF = re.compile(r"[0-9]+|[A-Z][A-Z_0-9]+")
CASE_KEY = re.compile(r".+-T[0-9]+")
CASE_REF = re.compile(r"[0-9]+|.+-T[0-9]+")
CYCLE_REF = re.compile(r"[0-9]+|.+-[RC][0-9]+")
PLAN_REF = re.compile(r"[0-9]+|.+-P[0-9]+")
EXECUTION_REF = re.compile(r"[0-9]+|.+-E[0-9]+")

LABELS = {
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


# A lone UTF-16 surrogate (half of an emoji a truncation cut in two) has no UTF-8 form. Jackson, the usual
# JSON writer of JVM services such as Zephyr Scale Cloud, writes such a char as a `\uXXXX` escape instead
# of failing (UTF8JsonGenerator._outputMultiByteChar, read in its source), so the sandbox does the same: a
# fixture's lone surrogate is served, not a 500 for the whole listing. JSON text holds surrogates only
# inside strings, where the escape is valid.
def json_bytes(body: str) -> bytes:
    """JSON text as UTF-8, each lone surrogate as its ``\\uXXXX`` escape (the only characters UTF-8
    cannot encode, so the only ones ``backslashreplace`` touches)."""
    return body.encode("utf-8", "backslashreplace")


def json_response(body: str | bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = json_bytes(body) if isinstance(body, str) else body
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def error_body(status: int, message: str) -> bytes:
    return json.dumps({"errorCode": status, "message": message}).encode("utf-8")


def not_found(kind: str, ref: Any) -> ApiError:
    return ApiError(404, f"{LABELS[kind]} '{ref}' does not exist or you do not have access to it")


# ---------------------------------------------------------------------------- request parsing


def int_query(
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


def bool_query(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ApiError(400, f"{name} must be true or false, got '{raw}'")


def time_query(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    moment = parse_timestamp(raw)
    if moment is None:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time such as 2024-05-20T13:15:13Z, got '{raw}'")
    return moment


def path_param(request: Request, name: str, pattern: re.Pattern[str], shape: str) -> str:
    value = request.path_params[name]
    if not pattern.fullmatch(value):
        raise ApiError(400, f"{name} '{value}' does not match the pattern {shape}")
    return value


def numeric_path_param(request: Request, name: str) -> int:
    value = request.path_params[name]
    if not value.isdigit() or int(value) < 1:
        raise ApiError(400, f"{name} must be a number greater than 0, got '{value}'")
    return int(value)


# ---------------------------------------------------------------------------- lookups


def project_filter(store: ZephyrStore, request: Request) -> int | None:
    """The project a ``projectKey`` query names (None without one); an unknown key is a 400."""
    key = request.query_params.get("projectKey")
    if key is None or key == "":
        return None
    if not PROJECT_KEY.fullmatch(key):
        raise ApiError(400, f"projectKey '{key}' does not match the pattern ([A-Z][A-Z_0-9]+)")
    project_id = store.project_id_for_key(key)
    if project_id is None:
        raise ApiError(400, f"Cannot access projects '{key}'")
    return project_id


def test_case(store: ZephyrStore, request: Request, name: str = "testCaseKey") -> Record:
    key = path_param(request, name, CASE_KEY, "(.+-T[0-9]+)")
    record = store.test_case(key)
    if record is None:
        raise not_found("testcases", key)
    return record


def test_case_by_ref(store: ZephyrStore, request: Request) -> Record:
    ref = path_param(request, "testCaseIdOrKey", CASE_REF, "([0-9]+)|(.+-T[0-9]+)")
    record = store.get("testcases", ref)
    if record is None:
        raise not_found("testcases", ref)
    return record


def lookup(
    store: ZephyrStore, request: Request, kind: str, name: str, pattern: re.Pattern[str], shape: str
) -> Record:
    """The object of ``kind`` the path parameter ``name`` refers to (an id or a key), else a 404."""
    ref = path_param(request, name, pattern, shape)
    record = store.get(kind, ref)
    if record is None:
        raise not_found(kind, ref)
    return record


def by_numeric_id(store: ZephyrStore, request: Request, kind: str, name: str) -> Record:
    ident = numeric_path_param(request, name)
    record = store.collections[kind].by_id.get(ident)
    if record is None:
        raise not_found(kind, ident)
    return record


def test_execution(store: ZephyrStore, request: Request) -> Record:
    return lookup(
        store, request, "testexecutions", "testExecutionIdOrKey", EXECUTION_REF, "([0-9]+)|(.+-E[0-9]+)"
    )


def test_cycle(store: ZephyrStore, request: Request) -> Record:
    return lookup(store, request, "testcycles", "testCycleIdOrKey", CYCLE_REF, "([0-9]+)|(.+-R[0-9]+)")


def test_plan(store: ZephyrStore, request: Request) -> Record:
    return lookup(store, request, "testplans", "testPlanIdOrKey", PLAN_REF, "([0-9]+)|(.+-P[0-9]+)")


def execution_filters(store: ZephyrStore, request: Request) -> dict[str, Any]:
    """The store filters of the test-execution lists' query parameters (checked as the spec says)."""
    filters: dict[str, Any] = {"project_id": project_filter(store, request)}
    cycle_ref = request.query_params.get("testCycle")
    if cycle_ref:
        if not CYCLE_REF.fullmatch(cycle_ref):
            raise ApiError(400, f"testCycle '{cycle_ref}' does not match the pattern ([0-9]+)|(.+-R[0-9]+)")
        cycle = store.get("testcycles", cycle_ref)
        filters["cycle_id"] = cycle.oid if cycle is not None and cycle.oid is not None else -1
    case_ref = request.query_params.get("testCase")
    if case_ref:
        if not CASE_REF.fullmatch(case_ref):
            raise ApiError(400, f"testCase '{case_ref}' does not match the pattern ([0-9]+)|(.+-T[0-9]+)")
        case = store.get("testcases", case_ref)
        # A deleted or unknown case still filters (to whatever executions name that key).
        filters["case_key"] = case.key if case is not None else ("" if case_ref.isdigit() else case_ref)
    filters["end_after"] = time_query(request, "actualEndDateAfter")
    filters["end_before"] = time_query(request, "actualEndDateBefore")
    filters["jira_version_id"] = int_query(request, "jiraProjectVersionId", None, low=1)
    filters["only_last"] = bool_query(request, "onlyLastExecutions") or None
    bool_query(request, "includeStepLinks")  # accepted and validated; steps carry no links here
    return filters


def check_step(steps: Sequence[Mapping[str, Any]], step_id: int, what: str) -> None:
    """A 404 unless ``steps`` has one with ``step_id`` (``what``: whose steps, for the message)."""
    if not any(step.get("id") == step_id for step in steps):
        raise ApiError(404, f"{what} step '{step_id}' does not exist or you do not have access to it")


# ---------------------------------------------------------------------------- routes


def route(
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


def raw(text: str) -> str:
    """The renderer of items that are already JSON text."""
    return text
