"""The Zephyr sandbox's routes, one module per resource, each a ``routes(sandbox)`` list.

``api_routes`` puts them together in matching order: inside a resource, a literal segment
(``/testcases/nextgen``) comes before the parameter it would otherwise match (``/testcases/{key}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from zephyr_qtest.sandbox.zephyr.routes import (
    admin,
    attachments,
    cdn,
    projects,
    testcases,
    testcycles,
    testexecutions,
    testplans,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox

RESOURCES = (projects, testcases, testcycles, testplans, testexecutions, attachments, cdn, admin)


def api_routes(sandbox: ZephyrSandbox) -> list[Route]:
    """Every route of the sandbox: the vendor API under ``/v2`` and the admin endpoints."""
    return [route for resource in RESOURCES for route in resource.routes(sandbox)]
