"""Search (``POST /search``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.qtest.routes.http import (
    PROJECT,
    bool_query,
    guarded_route,
    json_body,
    json_response,
    page_query,
    paged,
    path_int,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The search route, answered from ``sandbox.store``."""
    store = sandbox.store

    async def search(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        page, size = page_query(request)
        body = await json_body(request)
        total, items = store.search(
            project_id,
            body,
            page=page,
            page_size=size,
            append_steps=bool_query(request, "appendTestSteps", False),
            include_log_properties=bool_query(request, "includeTestLogProperties", False),
        )
        return json_response(paged(page, size, total, items))

    return [
        guarded_route(f"{PROJECT}/search", search, ["POST"]),
    ]
