"""Test plans: the offset and "nextgen" lists, and one plan."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.zephyr.api import (
    V2,
    project_filter,
    route,
    test_plan,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox


def routes(sandbox: ZephyrSandbox) -> list[Route]:
    """The routes of this resource, in matching order (a literal segment before a parameter)."""
    store = sandbox.store

    async def list_plans(request: Request) -> Response:
        selection = store.select("testplans", project_id=project_filter(store, request))
        return sandbox.offset_page(request, selection.records)

    async def nextgen_plans(request: Request) -> Response:
        # No `updatedAfter` here, as in SmartBear's own 2026 schema (`SmartBear/smartbear-mcp`
        # `src/zephyr/common/rest-api-schemas.ts` @01a4733f: ListTestPlansCursorPaginatedQueryParams holds
        # projectKey, limit and startAtId only): the parameter is ignored, as an unknown one is, so a client
        # that counts on it here reads every plan in the sandbox too.
        selection = store.select("testplans", project_id=project_filter(store, request))
        return sandbox.cursor_page(request, selection)

    async def get_plan(request: Request) -> Response:
        return sandbox.answer(test_plan(store, request))

    return [
        route(f"{V2}/testplans", list_plans),
        route(f"{V2}/testplans/nextgen", nextgen_plans),
        route(f"{V2}/testplans/{{testPlanIdOrKey}}", get_plan),
    ]
