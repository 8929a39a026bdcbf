"""Test cases, their versions (approve) and test steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.common import parse_iso_datetime
from zephyr_qtest.sandbox.qtest.routes.http import (
    PROJECT,
    bool_query,
    guarded_route,
    int_query,
    json_body,
    json_response,
    page_query,
    path_int,
    refuse,
    request_user_id,
)
from zephyr_qtest.sandbox.qtest.store import QTestError

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The test case, version and test step routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def test_cases(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        if request.method == "POST":
            body = await json_body(request)
            refuse(sandbox, "test-cases", body)
            return json_response(store.create_test_case(project_id, body, request_user_id(request)))
        page, size = page_query(request, size_name="size", default_size=20)
        raw_after = request.query_params.get("modifiedAfter")
        modified_after = None
        if raw_after:
            modified_after = parse_iso_datetime(raw_after)
            if modified_after is None:
                raise QTestError(400, f"modifiedAfter must be an ISO 8601 date-time, got '{raw_after}'")
        return json_response(
            store.test_cases(
                project_id,
                parent_id=int_query(request, "parentId", None),
                page=page,
                size=size,
                expand_props=bool_query(request, "expandProps", True),
                expand_steps=bool_query(request, "expandSteps", False),
                modified_after=modified_after,
            )
        )

    async def test_case(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        ref = request.path_params["testCaseId"]
        if request.method == "PUT":
            body = await json_body(request)
            return json_response(store.update_test_case(project_id, ref, body, request_user_id(request)))
        if request.method == "DELETE":
            return json_response(store.delete_test_case(project_id, ref))
        return json_response(
            store.test_case(
                project_id,
                ref,
                version_id=int_query(request, "versionId", None),
                steps=request.query_params.get("expand") == "teststep",
            )
        )

    async def approve(request: Request) -> Response:
        return json_response(
            store.approve_test_case(path_int(request, "projectId"), request.path_params["testCaseId"])
        )

    async def versions(request: Request) -> Response:
        return json_response(
            store.test_case_versions(path_int(request, "projectId"), request.path_params["testCaseId"])
        )

    async def version(request: Request) -> Response:
        return json_response(
            store.test_case_version(
                path_int(request, "projectId"),
                request.path_params["testCaseId"],
                path_int(request, "versionId"),
            )
        )

    async def version_steps(request: Request) -> Response:
        return json_response(
            store.test_steps(
                path_int(request, "projectId"),
                request.path_params["testCaseId"],
                path_int(request, "versionId"),
            )
        )

    async def test_steps(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        ref = request.path_params["testCaseId"]
        if request.method == "POST":
            return json_response(store.add_test_step(project_id, ref, await json_body(request)))
        return json_response(store.test_steps(project_id, ref))

    async def test_step(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        ref = request.path_params["testCaseId"]
        step_id = path_int(request, "stepId")
        if request.method == "PUT":
            body = await json_body(request)
            return json_response(store.update_test_step(project_id, ref, step_id, body))
        if request.method == "DELETE":
            return json_response(store.delete_test_step(project_id, ref, step_id))
        return json_response(store.test_step(project_id, ref, step_id))

    return [
        guarded_route(f"{PROJECT}/test-cases", test_cases, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/test-cases/{{testCaseId}}", test_case, ["GET", "PUT", "DELETE"]),
        guarded_route(f"{PROJECT}/test-cases/{{testCaseId}}/approve", approve, ["PUT"]),
        guarded_route(f"{PROJECT}/test-cases/{{testCaseId}}/versions", versions, ["GET"]),
        guarded_route(f"{PROJECT}/test-cases/{{testCaseId}}/versions/{{versionId}}", version, ["GET"]),
        guarded_route(
            f"{PROJECT}/test-cases/{{testCaseId}}/versions/{{versionId}}/test-steps", version_steps, ["GET"]
        ),
        guarded_route(f"{PROJECT}/test-cases/{{testCaseId}}/test-steps", test_steps, ["GET", "POST"]),
        guarded_route(
            f"{PROJECT}/test-cases/{{testCaseId}}/test-steps/{{stepId}}", test_step, ["GET", "PUT", "DELETE"]
        ),
    ]
