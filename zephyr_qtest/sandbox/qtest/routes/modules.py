"""Modules: the test design tree."""

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
    path_int,
    refuse,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The module routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def modules(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        parent_id = int_query(request, "parentId", None)
        if request.method == "POST":
            body = await json_body(request)
            refuse(sandbox, "modules", body)
            return json_response(store.create_module(project_id, body, parent_id), 201)
        return json_response(
            store.modules(
                project_id,
                parent_id=parent_id,
                search=request.query_params.get("search"),
                descendants=request.query_params.get("expand") == "descendants",
            )
        )

    async def module(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        module_id = path_int(request, "moduleId")
        if request.method == "PUT":
            parent_id = int_query(request, "parentId", None)
            body = await json_body(request) if parent_id is None else None
            return json_response(store.update_module(project_id, module_id, body, parent_id))
        if request.method == "DELETE":
            return json_response(
                store.delete_module(project_id, module_id, force=bool_query(request, "force", False))
            )
        descendants = request.query_params.get("expand") == "descendants"
        return json_response(store.module(project_id, module_id, descendants=descendants))

    return [
        guarded_route(f"{PROJECT}/modules", modules, ["GET", "POST"]),
        guarded_route(f"{PROJECT}/modules/{{moduleId}}", module, ["GET", "PUT", "DELETE"]),
    ]
