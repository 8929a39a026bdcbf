"""Admin endpoints under ``/_sandbox/`` (no auth, not part of the vendor API): request statistics,
the switches at run time, deleting and editing objects mid-run, changing a share of a project's objects
between two runs (``churn``, for delta runs), and what the sandbox serves.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.zephyr.api import (
    ApiError,
    json_response,
    not_found,
    route,
)
from zephyr_qtest.sandbox.zephyr.faults import FaultConfigError
from zephyr_qtest.sandbox.zephyr.store import StoreError

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox

# Singular and plural spellings accepted by POST /_sandbox/mutate.
KIND_NAMES = {
    **{kind: kind for kind in ("testcases", "testcycles", "testplans", "testexecutions", "folders")},
    **{kind: kind for kind in ("statuses", "priorities", "environments")},
    "testcase": "testcases",
    "testcycle": "testcycles",
    "testplan": "testplans",
    "testexecution": "testexecutions",
    "folder": "folders",
    "status": "statuses",
    "priority": "priorities",
    "environment": "environments",
}


def routes(sandbox: ZephyrSandbox) -> list[Route]:
    """The routes of this resource, in matching order (a literal segment before a parameter)."""
    store = sandbox.store

    async def admin_stats(request: Request) -> Response:
        return json_response(json.dumps(sandbox.stats.to_json()))

    async def admin_stats_reset(request: Request) -> Response:
        sandbox.stats.reset()
        return json_response(json.dumps(sandbox.stats.to_json()))

    async def admin_faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError as exc:
                raise ApiError(400, f"body is not valid JSON: {exc}") from None
            if not isinstance(changes, dict):
                raise ApiError(400, "body must be a JSON object of switches")
            try:
                sandbox.faults.update(changes)
            except FaultConfigError as exc:
                raise ApiError(400, str(exc)) from None
        return json_response(json.dumps(sandbox.faults.config.to_json()))

    async def admin_delete_case(request: Request) -> Response:
        key = request.path_params["testCaseKey"]
        if not store.delete_test_case(key):
            raise not_found("testcases", key)
        return json_response(json.dumps({"deleted": key}))

    async def admin_mutate(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        kind = KIND_NAMES.get(str(body.get("type", "testcases")), str(body.get("type")))
        ref = body.get("key", body.get("id"))
        changes = body.get("set", {})
        remove = body.get("remove", [])
        if ref is None or not isinstance(changes, dict) or not isinstance(remove, list):
            raise ApiError(
                400, 'expected {"type": "testcase", "key": "KEY-T1", "set": {...}, "remove": [...]}'
            )
        try:
            record = store.mutate(str(kind), str(ref), changes, remove)
        except StoreError as exc:
            raise ApiError(404 if "no object" in str(exc) else 400, str(exc)) from None
        return json_response(store.render(record))

    async def admin_churn(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("project"), str):
            raise ApiError(400, 'expected {"project": "KEY", "share": 0.01, "delete_cases": 0, "seed": 0}')
        try:
            done = store.churn(
                body["project"],
                float(body.get("share", 0.01)),
                delete_cases=int(body.get("delete_cases", 0)),
                seed=int(body.get("seed", 0)),
            )
        except (StoreError, TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(json.dumps(done))

    async def admin_info(request: Request) -> Response:
        info = {
            "base_url": sandbox.base_url,
            "fixture": store.meta,
            "counts": store.counts(),
            "faults": sandbox.faults.config.to_json(),
        }
        return json_response(json.dumps(info, ensure_ascii=False))

    return [
        route("/_sandbox/info", admin_info),
        route("/_sandbox/stats", admin_stats),
        route("/_sandbox/stats/reset", admin_stats_reset, methods=["POST"]),
        route("/_sandbox/faults", admin_faults, methods=["GET", "POST"]),
        route("/_sandbox/testcases/{testCaseKey}", admin_delete_case, methods=["DELETE"]),
        route("/_sandbox/mutate", admin_mutate, methods=["POST"]),
        route("/_sandbox/churn", admin_churn, methods=["POST"]),
    ]
