"""Projects and what they hold beside tests: folders, statuses, priorities, environments; and the
healthcheck.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.zephyr.api import (
    PROJECT_REF,
    V2,
    ApiError,
    by_numeric_id,
    lookup,
    project_filter,
    route,
)
from zephyr_qtest.sandbox.zephyr.fixture import STATUS_TYPES
from zephyr_qtest.sandbox.zephyr.store import FOLDER_TYPES

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox


def routes(sandbox: ZephyrSandbox) -> list[Route]:
    """The routes of this resource, in matching order (a literal segment before a parameter)."""
    store = sandbox.store

    async def healthcheck(request: Request) -> Response:
        return Response(status_code=200)

    async def list_projects(request: Request) -> Response:
        return sandbox.offset_page(request, store.select("projects").records)

    async def get_project(request: Request) -> Response:
        return sandbox.answer(
            lookup(store, request, "projects", "projectIdOrKey", PROJECT_REF, "([0-9]+)|([A-Z][A-Z_0-9]+)")
        )

    async def list_folders(request: Request) -> Response:
        folder_type = request.query_params.get("folderType") or None
        if folder_type is not None and folder_type not in FOLDER_TYPES:
            raise ApiError(400, f"folderType must be one of {', '.join(FOLDER_TYPES)}, got '{folder_type}'")
        selection = store.select(
            "folders", project_id=project_filter(store, request), folder_type=folder_type
        )
        return sandbox.offset_page(request, selection.records)

    async def list_statuses(request: Request) -> Response:
        # `statusType` is only a filter: each status answers under the one type the fixture's
        # `status_types` gives it, and its payload never names the type (REAL_SHAPES.md, Zephyr 1).
        status_type = request.query_params.get("statusType") or None
        if status_type is not None and status_type not in STATUS_TYPES:
            raise ApiError(400, f"statusType must be one of {', '.join(STATUS_TYPES)}, got '{status_type}'")
        selection = store.select(
            "statuses", project_id=project_filter(store, request), status_type=status_type
        )
        return sandbox.offset_page(request, selection.records)

    def lister(kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            selection = store.select(kind, project_id=project_filter(store, request))
            return sandbox.offset_page(request, selection.records)

        return handler

    def getter(kind: str, name: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            return sandbox.answer(by_numeric_id(store, request, kind, name))

        return handler

    return [
        route(f"{V2}/healthcheck", healthcheck),
        route(f"{V2}/projects", list_projects),
        route(f"{V2}/projects/{{projectIdOrKey}}", get_project),
        route(f"{V2}/folders", list_folders),
        route(f"{V2}/folders/{{folderId}}", getter("folders", "folderId")),
        route(f"{V2}/statuses", list_statuses),
        route(f"{V2}/statuses/{{statusId}}", getter("statuses", "statusId")),
        route(f"{V2}/priorities", lister("priorities")),
        route(f"{V2}/priorities/{{priorityId}}", getter("priorities", "priorityId")),
        route(f"{V2}/environments", lister("environments")),
        route(f"{V2}/environments/{{environmentId}}", getter("environments", "environmentId")),
    ]
