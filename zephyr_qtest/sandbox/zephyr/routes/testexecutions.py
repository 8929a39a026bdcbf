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
    json_response,
    raw,
    route,
    test_execution,
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

    async def list_executions(request: Request) -> Response:
        return sandbox.offset_page(
            request, store.select("testexecutions", **execution_filters(store, request)).records, render
        )

    async def nextgen_executions(request: Request) -> Response:
        filters = execution_filters(store, request)
        filters["updated_after"] = time_query(request, "updatedAfter")
        return sandbox.cursor_page(request, store.select("testexecutions", **filters))

    async def get_execution(request: Request) -> Response:
        bool_query(request, "includeStepLinks")
        return one(test_execution(store, request))

    async def execution_steps(request: Request) -> Response:
        record = test_execution(store, request)
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
        links = record.obj.get("links") if isinstance(record.obj.get("links"), dict) else {}
        body = {
            "self": f"{sandbox.base_url}/testexecutions/{record.oid}/links",
            "issues": links.get("issues") or [],
        }
        return json_response(store.to_json(body))

    return [
        route(f"{V2}/testexecutions", list_executions),
        route(f"{V2}/testexecutions/nextgen", nextgen_executions),
        route(f"{V2}/testexecutions/{{testExecutionIdOrKey}}", get_execution),
        route(f"{V2}/testexecutions/{{testExecutionIdOrKey}}/teststeps", execution_steps),
        route(f"{V2}/testexecutions/{{testExecutionIdOrKey}}/links", execution_links),
    ]
