"""Test runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.qtest.routes.http import (
    PROJECT,
    guarded_route,
    int_query,
    json_body,
    json_response,
    page_query,
    paged,
    parent_type_query,
    path_int,
    refuse,
    request_user_id,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The test run routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def test_runs(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        parent_id = int_query(request, "parentId", None)
        if request.method == "POST":
            body = await json_body(request)
            refuse(sandbox, "test-runs", body)
            run = store.create_run(
                project_id, body, parent_id, parent_type_query(request), request_user_id(request)
            )
            return json_response(run, 201)
        page, size = page_query(request)
        total, items = store.test_runs(
            project_id,
            parent_id=parent_id,
            parent_type=parent_type_query(request),
            descendants=request.query_params.get("expand") == "descendants",
            page=page,
            page_size=size,
        )
        return json_response(paged(page, size, total, items))

    async def test_run(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        run_id = path_int(request, "testRunId")
        if request.method == "PUT":
            parent_id = int_query(request, "parentId", None)
            parent_type = parent_type_query(request)
            body = await json_body(request) if parent_id is None and parent_type is None else None
            return json_response(store.update_run(project_id, run_id, body, parent_id, parent_type))
        if request.method == "DELETE":
            return json_response(store.delete_run(project_id, run_id))
        return json_response(store.test_run(project_id, run_id, expand=request.query_params.get("expand")))

    return [
        guarded_route(f"{PROJECT}/test-runs", test_runs, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/test-runs/{{testRunId}}", test_run, ["GET", "PUT", "DELETE"]),
    ]
