"""Test cases: the offset and 2026 "nextgen" lists, one case, its links, versions, test script and
test steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.zephyr.api import (
    STEP_PAGE,
    V2,
    ApiError,
    int_query,
    json_response,
    project_filter,
    raw,
    route,
    test_case,
    time_query,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox


def routes(sandbox: ZephyrSandbox) -> list[Route]:
    """The routes of this resource, in matching order (a literal segment before a parameter)."""
    store = sandbox.store

    def case_filters(request: Request) -> dict[str, Any]:
        return {
            "project_id": project_filter(store, request),
            "folder_id": int_query(request, "folderId", None, low=1),
        }

    async def list_cases(request: Request) -> Response:
        return sandbox.offset_page(request, store.select("testcases", **case_filters(request)).records)

    async def nextgen_cases(request: Request) -> Response:
        updated_after = time_query(request, "updatedAfter")
        return sandbox.cursor_page(
            request, store.select("testcases", **case_filters(request), updated_after=updated_after)
        )

    async def get_case(request: Request) -> Response:
        return sandbox.answer(test_case(store, request))

    async def case_links(request: Request) -> Response:
        record = test_case(store, request)
        return sandbox.links_answer(record, f"/testcases/{record.key}/links", ("issues", "webLinks"))

    async def case_versions(request: Request) -> Response:
        record = test_case(store, request)
        versions = store.version_records(record.key or "")
        # Most recent first, as the spec says.
        links = [
            {"id": version.oid, "self": f"{sandbox.base_url}/testcases/{record.key}/versions/{number}"}
            for number, version in reversed(list(enumerate(versions, start=1)))
        ]
        return sandbox.offset_page(request, links, store.to_json)

    async def case_version(request: Request) -> Response:
        record = test_case(store, request)
        raw_number = request.path_params["version"]
        if not raw_number.isdigit() or int(raw_number) < 1:
            raise ApiError(400, f"version must be a number greater than 0, got '{raw_number}'")
        versions = store.version_records(record.key or "")
        number = int(raw_number)
        if number > len(versions):
            raise ApiError(
                404,
                f"Test case version '{record.key}' {number} does not exist or you do not have access to it",
            )
        return sandbox.answer(versions[number - 1])

    async def case_script(request: Request) -> Response:
        record = test_case(store, request)
        script = store.scripts.get(record.key or "")
        if script is None and (record.key or "") in store.steps:
            # A step-by-step case answers 422 in the 2026 schema, not 404 (REAL_SHAPES.md, Zephyr Scale
            # Cloud 2); its testScript.self points at /teststeps, which the client follows instead.
            raise ApiError(
                422,
                f"Test case '{record.key}' has a step-by-step test script; "
                f"its steps are at /testcases/{record.key}/teststeps",
            )
        if script is None:
            # A case with no script at all: nothing public says what the real API answers; 404 here.
            raise ApiError(
                404,
                f"Test script for test case '{record.key}' does not exist or is not a plain text or BDD script",
            )
        return json_response(store.to_json(script))

    async def case_steps(request: Request) -> Response:
        record = test_case(store, request)
        key = record.key or ""
        # Plain/BDD (and scriptless) cases answer an empty page, not an error.
        steps = store.rendered_list(("teststeps", key), store.steps.get(key, []))
        return sandbox.offset_page(request, steps, raw, endpoint_cap=STEP_PAGE)

    return [
        route(f"{V2}/testcases", list_cases),
        route(f"{V2}/testcases/nextgen", nextgen_cases),
        route(f"{V2}/testcases/{{testCaseKey}}", get_case),
        route(f"{V2}/testcases/{{testCaseKey}}/links", case_links),
        route(f"{V2}/testcases/{{testCaseKey}}/versions", case_versions),
        route(f"{V2}/testcases/{{testCaseKey}}/versions/{{version}}", case_version),
        route(f"{V2}/testcases/{{testCaseKey}}/testscript", case_script),
        route(f"{V2}/testcases/{{testCaseKey}}/teststeps", case_steps),
    ]
