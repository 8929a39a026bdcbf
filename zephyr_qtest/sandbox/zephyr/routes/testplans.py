"""Test plans: the offset and "nextgen" lists, and one plan."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.zephyr.api import (
    V2,
    json_response,
    project_filter,
    route,
    test_plan,
    time_query,
)
from zephyr_qtest.sandbox.zephyr.store import Record

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox


def routes(sandbox: ZephyrSandbox) -> list[Route]:
    """The routes of this resource, in matching order (a literal segment before a parameter)."""
    store = sandbox.store
    render = store.render

    def one(record: Record) -> Response:
        return json_response(store.render(record))

    async def list_plans(request: Request) -> Response:
        selection = store.select("testplans", project_id=project_filter(store, request))
        return sandbox.offset_page(request, selection.records, render)

    async def nextgen_plans(request: Request) -> Response:
        selection = store.select(
            "testplans",
            project_id=project_filter(store, request),
            updated_after=time_query(request, "updatedAfter"),
        )
        return sandbox.cursor_page(request, selection)

    async def get_plan(request: Request) -> Response:
        return one(test_plan(store, request))

    return [
        route(f"{V2}/testplans", list_plans),
        route(f"{V2}/testplans/nextgen", nextgen_plans),
        route(f"{V2}/testplans/{{testPlanIdOrKey}}", get_plan),
    ]
