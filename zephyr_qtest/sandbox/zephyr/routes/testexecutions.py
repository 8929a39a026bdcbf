"""Test executions: the offset and "nextgen" lists, one execution, its step results and links."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.zephyr.api import (
    STEP_PAGE,
    V2,
    bool_query,
    execution_filters,
    int_query,
    raw,
    route,
    test_execution,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox


def routes(sandbox: ZephyrSandbox) -> list[Route]:
    """The routes of this resource, in matching order (a literal segment before a parameter)."""
    store = sandbox.store

    async def list_executions(request: Request) -> Response:
        return sandbox.offset_page(
            request, store.select("testexecutions", **execution_filters(store, request)).records
        )

    async def nextgen_executions(request: Request) -> Response:
        # The filters of the offset listing and no `updatedAfter`, as in SmartBear's own 2026 schema
        # (`SmartBear/smartbear-mcp` `src/zephyr/common/rest-api-schemas.ts` @01a4733f:
        # ListTestExecutionsNextgenQueryParams has actualEndDateAfter/Before but no updatedAfter; so does a
        # client generated from the public spec, swagger-typescript-api's `listTestExecutionsNextgen`). An
        # unknown parameter is ignored: an execution edited without a new end date is not found by a filter.
        return sandbox.cursor_page(
            request, store.select("testexecutions", **execution_filters(store, request))
        )

    async def get_execution(request: Request) -> Response:
        bool_query(request, "includeStepLinks")
        return sandbox.answer(test_execution(store, request))

    async def execution_steps(request: Request) -> Response:
        record = test_execution(store, request)
        # A data-driven execution's list holds every data row's results, each with its row's
        # testDataRowNumber; ?testDataRowNumber= keeps one row's (the v2 spec's query parameter, "the id of
        # the test data row to retrieve"; SmartBear's smartbear-mcp GetTestExecutionSteps asks so). That the
        # unfiltered list holds every row is the spec's reading: unverified on a real tenant.
        row = int_query(request, "testDataRowNumber", None, low=0)
        steps = store.execution_steps.get(record.oid or 0, [])
        if row is not None:
            chosen = [step for step in steps if (step.get("inline") or {}).get("testDataRowNumber") == row]
            rendered = [store.to_json(step) for step in chosen]
        else:
            rendered = store.rendered_list(("testexecution_steps", record.oid), steps)
        return sandbox.offset_page(request, rendered, raw, endpoint_cap=STEP_PAGE)

    async def execution_links(request: Request) -> Response:
        record = test_execution(store, request)
        return sandbox.links_answer(record, f"/testexecutions/{record.oid}/links", ("issues",))

    return [
        route(f"{V2}/testexecutions", list_executions),
        route(f"{V2}/testexecutions/nextgen", nextgen_executions),
        route(f"{V2}/testexecutions/{{testExecutionIdOrKey}}", get_execution),
        route(f"{V2}/testexecutions/{{testExecutionIdOrKey}}/teststeps", execution_steps),
        route(f"{V2}/testexecutions/{{testExecutionIdOrKey}}/links", execution_links),
    ]
