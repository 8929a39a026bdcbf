"""Test cycles: the offset and "nextgen" lists, one cycle, and its links."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.zephyr.api import (
    V2,
    int_query,
    json_response,
    project_filter,
    route,
    test_cycle,
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

    def cycle_filters(request: Request) -> dict[str, Any]:
        return {
            "project_id": project_filter(store, request),
            "folder_id": int_query(request, "folderId", None, low=1),
            "jira_version_id": int_query(request, "jiraProjectVersionId", None, low=1),
        }

    async def list_cycles(request: Request) -> Response:
        return sandbox.offset_page(
            request, store.select("testcycles", **cycle_filters(request)).records, render
        )

    async def nextgen_cycles(request: Request) -> Response:
        updated_after = time_query(request, "updatedAfter")
        return sandbox.cursor_page(
            request, store.select("testcycles", **cycle_filters(request), updated_after=updated_after)
        )

    async def get_cycle(request: Request) -> Response:
        return one(test_cycle(store, request))

    async def cycle_links(request: Request) -> Response:
        record = test_cycle(store, request)
        links = record.obj.get("links") if isinstance(record.obj.get("links"), dict) else {}
        body = {
            "self": f"{sandbox.base_url}/testcycles/{record.oid}/links",
            "issues": links.get("issues") or [],
            "webLinks": links.get("webLinks") or [],
            "testPlans": links.get("testPlans") or [],
        }
        return json_response(store.to_json(body))

    return [
        route(f"{V2}/testcycles", list_cycles),
        route(f"{V2}/testcycles/nextgen", nextgen_cycles),
        route(f"{V2}/testcycles/{{testCycleIdOrKey}}", get_cycle),
        route(f"{V2}/testcycles/{{testCycleIdOrKey}}/links", cycle_links),
    ]
