"""Releases, test cycles and test suites."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.qtest.routes.http import (
    MAX_PAGE_SIZE,
    PROJECT,
    bool_query,
    guarded_route,
    int_query,
    json_body,
    json_response,
    parent_type_query,
    path_int,
    refuse,
)
from zephyr_qtest.sandbox.qtest.store import QTestError

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The release, test cycle and test suite routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def releases(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        if request.method == "POST":
            return json_response(store.create_release(project_id, await json_body(request)), 201)
        return json_response(
            store.releases(project_id, include_closed=bool_query(request, "includeClosed", False))
        )

    async def release(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        release_id = path_int(request, "releaseId")
        if request.method == "PUT":
            return json_response(store.update_release(project_id, release_id, await json_body(request)))
        if request.method == "DELETE":
            return json_response(store.delete_release(project_id, release_id))
        return json_response(store.release(project_id, release_id))

    async def test_cycles(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        parent_id = int_query(request, "parentId", None)
        if request.method == "POST":
            body = await json_body(request)
            refuse(sandbox, "test-cycles", body)
            return json_response(
                store.create_cycle(project_id, body, parent_id, parent_type_query(request)), 201
            )
        page = int_query(request, "page", 1)
        page_size = int_query(request, "pageSize", 100)
        assert page is not None and page_size is not None
        if page < 1:
            raise QTestError(400, f"page must be >= 1 (pages are numbered from 1), got {page}")
        return json_response(
            store.test_cycles(
                project_id,
                parent_id=parent_id,
                parent_type=parent_type_query(request),
                descendants=request.query_params.get("expand") == "descendants",
                page=page,
                page_size=min(page_size, MAX_PAGE_SIZE) if page_size > 0 else -1,
            )
        )

    async def test_cycle(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        cycle_id = path_int(request, "testCycleId")
        if request.method == "PUT":
            parent_id = int_query(request, "parentId", None)
            parent_type = parent_type_query(request)
            body = await json_body(request) if parent_id is None and parent_type is None else None
            return json_response(store.update_cycle(project_id, cycle_id, body, parent_id, parent_type))
        if request.method == "DELETE":
            return json_response(
                store.delete_cycle(project_id, cycle_id, force=bool_query(request, "force", False))
            )
        descendants = request.query_params.get("expand") == "descendants"
        return json_response(store.test_cycle(project_id, cycle_id, descendants=descendants))

    async def test_suites(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        parent_id = int_query(request, "parentId", None)
        if request.method == "POST":
            body = await json_body(request)
            return json_response(store.create_suite(project_id, body, parent_id, parent_type_query(request)))
        return json_response(
            store.test_suites(project_id, parent_id=parent_id, parent_type=parent_type_query(request))
        )

    async def test_suite(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        suite_id = path_int(request, "testSuiteId")
        if request.method == "PUT":
            body = await json_body(request)
            parent_id = int_query(request, "parentId", None)
            return json_response(
                store.update_suite(project_id, suite_id, body, parent_id, parent_type_query(request))
            )
        if request.method == "DELETE":
            return json_response(store.delete_suite(project_id, suite_id))
        return json_response(store.test_suite(project_id, suite_id))

    return [
        guarded_route(f"{PROJECT}/releases", releases, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/releases/{{releaseId}}", release, ["GET", "PUT", "DELETE"]),
        guarded_route(f"{PROJECT}/test-cycles", test_cycles, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/test-cycles/{{testCycleId}}", test_cycle, ["GET", "PUT", "DELETE"]),
        guarded_route(f"{PROJECT}/test-suites", test_suites, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/test-suites/{{testSuiteId}}", test_suite, ["GET", "PUT", "DELETE"]),
    ]
