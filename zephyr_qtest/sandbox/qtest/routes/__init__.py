"""The qTest sandbox's routes, one module per resource; ``all_routes`` puts them in their matching order.

Each module's ``routes(sandbox)`` returns its ``Route``s, whose handlers answer from ``sandbox.store``.
Starlette tries routes in order, so a literal segment must come before a ``{param}`` route it would
otherwise match: ``automation`` (with ``projects/queue-processing/{id}``) goes before every
``projects/{projectId}`` route, ``projects`` (with ``test-runs/execution-statuses``) before ``runs``
(``test-runs/{testRunId}``), and within ``logs``, ``test-logs/last-run`` before ``test-logs/{id}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from zephyr_qtest.sandbox.qtest.routes import (
    admin,
    attachments,
    auth,
    automation,
    cases,
    cycles,
    logs,
    modules,
    projects,
    requirements,
    runs,
    search,
)

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox

RESOURCES = (
    automation,
    auth,
    projects,
    modules,
    cases,
    cycles,
    runs,
    logs,
    search,
    attachments,
    requirements,
    admin,
)


def all_routes(sandbox: QTestSandbox) -> list[Route]:
    """Every route of the sandbox, resource by resource (``RESOURCES``' order is the matching order)."""
    return [route for resource in RESOURCES for route in resource.routes(sandbox)]
