"""Projects, their field settings with allowed values, and the execution statuses of test runs."""

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
    page_query,
    path_int,
    request_user_id,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The project, field setting and execution status routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def projects(request: Request) -> Response:
        if request.method == "POST":
            return json_response(
                store.create_project(await json_body(request), request_user_id(request)), 201
            )
        page, size = page_query(request)
        items = store.projects()
        return json_response(
            items[(page - 1) * size : page * size], headers={"X-Item-Total": str(len(items))}
        )

    async def project(request: Request) -> Response:
        return json_response(store.project(path_int(request, "projectId")))

    async def fields(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        object_type = request.path_params["objectType"]
        if request.method == "POST":
            body = await json_body(request)
            return json_response(
                store.create_field(project_id, object_type, body, request_user_id(request)), 201
            )
        include = bool_query(request, "includeInactive", False)
        return json_response(store.fields(project_id, object_type, include_inactive=include))

    async def field(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        object_type = request.path_params["objectType"]
        field_id = path_int(request, "fieldId")
        if request.method == "DELETE":
            # The swagger's deleteCustomField: custom fields only, 200 with an object.
            return json_response(
                store.delete_field(project_id, object_type, field_id, request_user_id(request))
            )
        return json_response(store.field(project_id, object_type, field_id))

    async def allowed_value(request: Request) -> Response:
        # The swagger's deleteProjectFieldValue: {value} is the allowed value's id ("value" property).
        return json_response(
            store.delete_allowed_value(
                path_int(request, "projectId"),
                request.path_params["objectType"],
                path_int(request, "fieldId"),
                path_int(request, "value"),
                request_user_id(request),
            )
        )

    async def allowed_values(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        object_type = request.path_params["objectType"]
        field_id = path_int(request, "fieldId")
        if request.method == "POST":
            body = await json_body(request)
            added = store.add_allowed_values(
                project_id, object_type, field_id, body, request_user_id(request)
            )
            return json_response(added, 201)
        page, size = page_query(request)
        values = store.allowed_values(project_id, object_type, field_id)
        return json_response(
            values[(page - 1) * size : page * size], headers={"X-Item-Total": str(len(values))}
        )

    async def execution_statuses(request: Request) -> Response:
        return json_response(store.execution_statuses(path_int(request, "projectId")))

    async def current_profile(request: Request) -> Response:
        # Swagger: GET /api/v3/projects/{projectId}/user-profiles/current (getCurrentProfile), which
        # preflight reads to know whether the token's user may do what the migration does.
        return json_response(store.current_profile(path_int(request, "projectId"), request_user_id(request)))

    return [
        guarded_route(f"{API}/projects", projects, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/user-profiles/current", current_profile, ["GET"]),
        guarded_route(PROJECT, project, ["GET"]),
        guarded_route(f"{PROJECT}/settings/{{objectType}}/fields", fields, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/settings/{{objectType}}/fields/{{fieldId}}", field, ["GET", "DELETE"]),
        guarded_route(
            f"{PROJECT}/settings/{{objectType}}/fields/{{fieldId}}/allowed-values",
            allowed_values,
            ["GET", "POST"],
        ),
        guarded_route(
            f"{PROJECT}/settings/{{objectType}}/fields/{{fieldId}}/allowed-values/{{value}}",
            allowed_value,
            ["DELETE"],
        ),
        # Literal segments before the {testRunId} routes they would otherwise match.
        guarded_route(f"{PROJECT}/test-runs/execution-statuses", execution_statuses, ["GET"]),
    ]
