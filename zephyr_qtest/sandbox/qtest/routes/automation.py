"""Automation test logs: one on a run, its modification, the bulk submission to the queue, and polling the
queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.qtest.routes.http import (
    API,
    PROJECT,
    bool_query,
    guarded_route,
    json_body,
    json_response,
    path_int,
    request_user_id,
)
from zephyr_qtest.sandbox.qtest.store import QTestError

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The automation test log and queue routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def run_auto_log(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        run_id = path_int(request, "testRunId")
        suite_date = None
        if bool_query(request, "suitePerDay", False):
            raw = request.query_params.get("suiteDate") or ""
            if len(raw) != 8 or not raw.isdigit():
                raise QTestError(
                    400, f"suiteDate is required with suitePerDay=true, as yyyymmdd; got '{raw}'"
                )
            suite_date = f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
        body = await json_body(request)
        return json_response(
            store.create_auto_log(project_id, run_id, body, request_user_id(request), suite_date=suite_date),
            201,
        )

    async def modify_auto_log(request: Request) -> Response:
        body = await json_body(request)
        return json_response(
            store.update_auto_log(
                path_int(request, "projectId"),
                path_int(request, "testRunId"),
                path_int(request, "id"),
                body,
                request_user_id(request),
            )
        )

    async def bulk_auto_logs(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        if request.query_params.get("type") != "automation":
            raise QTestError(400, "type is required and must be 'automation'")
        body = await json_body(request)
        return json_response(store.submit_auto_logs(project_id, body, request_user_id(request)), 201)

    async def queue_processing(request: Request) -> Response:
        return json_response(store.poll_job(path_int(request, "id")))

    return [
        # Before every {projectId} route, which "queue-processing" would otherwise match.
        guarded_route(f"{API}/projects/queue-processing/{{id}}", queue_processing, ["GET"]),
        guarded_route(f"{PROJECT}/test-runs/{{testRunId}}/auto-test-logs", run_auto_log, ["POST"]),
        guarded_route(f"{PROJECT}/test-runs/{{testRunId}}/auto-test-logs/{{id}}", modify_auto_log, ["PUT"]),
        guarded_route(f"{PROJECT}/auto-test-logs", bulk_auto_logs, ["POST"]),
    ]
