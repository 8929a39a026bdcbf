"""Manual test logs of a test run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.qtest.routes.http import (
    PROJECT,
    guarded_route,
    json_body,
    json_response,
    page_query,
    paged,
    path_int,
    refuse,
    request_user_id,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The manual test log routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def test_logs(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        run_id = path_int(request, "testRunId")
        if request.method == "POST":
            body = await json_body(request)
            refuse(sandbox, "test-logs", body)
            return json_response(store.create_log(project_id, run_id, body, request_user_id(request)), 201)
        page, size = page_query(request)
        total, items = store.test_logs(project_id, run_id, page=page, page_size=size)
        return json_response(paged(page, size, total, items))

    async def last_log(request: Request) -> Response:
        return json_response(store.last_log(path_int(request, "projectId"), path_int(request, "testRunId")))

    async def test_log(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        run_id = path_int(request, "testRunId")
        log_id = path_int(request, "id")
        if request.method == "PUT":
            body = await json_body(request)
            return json_response(store.update_log(project_id, run_id, log_id, body, request_user_id(request)))
        return json_response(store.test_log(project_id, run_id, log_id))

    return [
        guarded_route(f"{PROJECT}/test-runs/{{testRunId}}/test-logs", test_logs, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/test-runs/{{testRunId}}/test-logs/last-run", last_log, ["GET"]),
        guarded_route(f"{PROJECT}/test-runs/{{testRunId}}/test-logs/{{id}}", test_log, ["GET", "PUT"]),
    ]
