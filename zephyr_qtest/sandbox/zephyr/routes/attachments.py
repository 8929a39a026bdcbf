"""The 2026 attachments of test cases and their steps, cycles, plans, and executions and their steps:
the list (exactly ``{id, name}`` per file) and the content of one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.common import content_disposition
from zephyr_qtest.sandbox.zephyr.api import (
    V2,
    ApiError,
    check_step,
    json_response,
    numeric_path_param,
    route,
    test_case_by_ref,
    test_cycle,
    test_execution,
    test_plan,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox


def routes(sandbox: ZephyrSandbox) -> list[Route]:
    """The routes of this resource, in matching order (a literal segment before a parameter)."""
    store = sandbox.store

    def case_owner(request: Request, with_step: bool) -> tuple[Any, ...]:
        record = test_case_by_ref(store, request)
        if not with_step:
            return ("testcases", record.key)
        step_id = numeric_path_param(request, "testStepId")
        check_step(store.steps.get(record.key or "", []), step_id, "Test case")
        return ("testcases", record.key, step_id)

    def execution_owner(request: Request, with_step: bool) -> tuple[Any, ...]:
        record = test_execution(store, request)
        if not with_step:
            return ("testexecutions", record.oid)
        step_id = numeric_path_param(request, "testStepId")
        check_step(store.execution_steps.get(record.oid or 0, []), step_id, "Test execution")
        return ("testexecutions", record.oid, step_id)

    owners: dict[str, Callable[[Request], tuple[Any, ...]]] = {
        "case": lambda r: case_owner(r, False),
        "case_step": lambda r: case_owner(r, True),
        "cycle": lambda r: ("testcycles", test_cycle(store, r).oid),
        "plan": lambda r: ("testplans", test_plan(store, r).oid),
        "execution": lambda r: execution_owner(r, False),
        "execution_step": lambda r: execution_owner(r, True),
    }

    def attachment_list(owner_kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            files = store.attachment_list(owners[owner_kind](request))
            # The 2026 schema's list item is exactly {id, name} (strict); nothing more is sent.
            body = {"attachments": [{"id": item.id, "name": item.name} for item in files]}
            return json_response(json.dumps(body, ensure_ascii=False))

        return handler

    def attachment_content(owner_kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            owner = owners[owner_kind](request)
            attachment_id = numeric_path_param(request, "attachmentId")
            for item in store.attachment_list(owner):
                if item.id == attachment_id:
                    return Response(
                        item.data,
                        media_type=item.content_type,
                        headers={"Content-Disposition": content_disposition(item.name)},
                    )
            raise ApiError(
                404, f"Attachment '{attachment_id}' does not exist or you do not have access to it"
            )

        return handler

    return [
        route(f"{V2}/testcases/{{testCaseIdOrKey}}/attachments", attachment_list("case")),
        route(f"{V2}/testcases/{{testCaseIdOrKey}}/attachments/{{attachmentId}}", attachment_content("case")),
        route(
            f"{V2}/testcases/{{testCaseIdOrKey}}/teststeps/{{testStepId}}/attachments",
            attachment_list("case_step"),
        ),
        route(
            f"{V2}/testcases/{{testCaseIdOrKey}}/teststeps/{{testStepId}}/attachments/{{attachmentId}}",
            attachment_content("case_step"),
        ),
        route(f"{V2}/testcycles/{{testCycleIdOrKey}}/attachments", attachment_list("cycle")),
        route(
            f"{V2}/testcycles/{{testCycleIdOrKey}}/attachments/{{attachmentId}}",
            attachment_content("cycle"),
        ),
        route(f"{V2}/testplans/{{testPlanIdOrKey}}/attachments", attachment_list("plan")),
        route(f"{V2}/testplans/{{testPlanIdOrKey}}/attachments/{{attachmentId}}", attachment_content("plan")),
        route(f"{V2}/testexecutions/{{testExecutionIdOrKey}}/attachments", attachment_list("execution")),
        route(
            f"{V2}/testexecutions/{{testExecutionIdOrKey}}/attachments/{{attachmentId}}",
            attachment_content("execution"),
        ),
        route(
            f"{V2}/testexecutions/{{testExecutionIdOrKey}}/teststeps/{{testStepId}}/attachments",
            attachment_list("execution_step"),
        ),
        route(
            f"{V2}/testexecutions/{{testExecutionIdOrKey}}/teststeps/{{testStepId}}/attachments/{{attachmentId}}",
            attachment_content("execution_step"),
        ),
    ]
