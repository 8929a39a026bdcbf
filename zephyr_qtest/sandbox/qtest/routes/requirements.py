"""Requirements and object links (swagger tags ``requirement`` and ``object-link``; see
``store/requirements.py`` for what the sandbox keeps of them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.qtest.routes.http import (
    PROJECT,
    bool_query,
    guarded_route,
    int_query,
    json_body,
    json_response,
    page_query,
    path_int,
)
from zephyr_qtest.sandbox.qtest.store import QTestError

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox

# getRequirements: "By the default, the number of requirements in each page is 20" (parameter ``size``).
REQUIREMENTS_PAGE_SIZE = 20
# getRequirements and getRequirement: "By default, Requirement external properties are not included in the
# response. Specify includeExternalProperties=true to include them."
EXTERNAL_PROPERTIES = "includeExternalProperties"


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The requirement and link routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def requirements(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        parent_id = int_query(request, "parentId", None)
        if request.method == "POST":
            body = await json_body(request)
            # The swagger answers 200 (not 201) to createRequirement.
            return json_response(store.create_requirement(project_id, body, parent_id))
        page, size = page_query(request, size_name="size", default_size=REQUIREMENTS_PAGE_SIZE)
        external = bool_query(request, EXTERNAL_PROPERTIES, False)
        return json_response(
            store.requirements(project_id, parent_id=parent_id, page=page, size=size, external=external)
        )

    async def requirement(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        requirement_id = path_int(request, "requirementId")
        if request.method == "PUT":
            body = await json_body(request)
            parent_id = int_query(request, "parentId", None)
            return json_response(store.update_requirement(project_id, requirement_id, body, parent_id))
        if request.method == "DELETE":
            # The swagger's deleteRequirementById (qTest Manager 6+): 200 with an object.
            return json_response(store.delete_requirement(project_id, requirement_id))
        external = bool_query(request, EXTERNAL_PROPERTIES, False)
        return json_response(store.requirement(project_id, requirement_id, external=external))

    async def link(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        linked_type = request.query_params.get("type")
        if not linked_type:
            raise QTestError(400, "type is required (the object type of the objects to link)")
        body = await json_body(request)
        return json_response(
            store.link_artifacts(
                project_id,
                request.path_params["objectType"],
                path_int(request, "objectId"),
                linked_type,
                body,
            )
        )

    async def linked_artifacts(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        object_type = request.query_params.get("type")
        if not object_type:
            raise QTestError(400, "type is required")
        try:
            ids = [int(raw) for raw in request.query_params.getlist("ids")]
        except ValueError as error:
            raise QTestError(400, f"ids must be numbers: {error}") from error
        return json_response(store.linked_artifacts(project_id, object_type, ids))

    return [
        guarded_route(f"{PROJECT}/requirements", requirements, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/requirements/{{requirementId}}", requirement, ["GET", "PUT", "DELETE"]),
        guarded_route(f"{PROJECT}/linked-artifacts", linked_artifacts, ["GET"]),
        guarded_route(f"{PROJECT}/{{objectType}}/{{objectId}}/link", link, ["POST"]),
    ]
