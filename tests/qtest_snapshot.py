"""What the dry-run and rollback tests read from the qTest sandbox: the write requests it answered, and a
snapshot of one project (every object type, fields with their allowed values, requirements and links)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle

WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")


def api_writes(qtest: QTestSandboxHandle) -> Counter[str]:
    """The write requests the sandbox answered since its statistics were reset, by route (searches are
    reads sent as POSTs: left out)."""
    writes: Counter[str] = Counter()
    for route, count in qtest.stats()["by_path"].items():
        method, _, path = route.partition(" ")
        if method in WRITE_METHODS and path.startswith("/api/") and not path.endswith("/search"):
            writes[route] += count
    return writes


def requirements(qtest: QTestSandboxHandle, project_id: int) -> list[dict[str, Any]]:
    """The project's requirements as the API lists them (the dump does not hold their links)."""

    async def read() -> list[dict[str, Any]]:
        async with QtestClient(qtest.base_url, qtest.token) as client:
            return await client.list_requirements(project_id)

    return asyncio.run(read())


def snapshot(qtest: QTestSandboxHandle, project_id: int) -> dict[str, Any]:
    """Everything the sandbox holds of the project: every object type, fields with their allowed values,
    requirements and links (queue jobs are the queue's history, which qTest keeps and no API deletes)."""
    dump = qtest.dump(project_id)
    dump.pop("queue_jobs")
    counts = qtest.counts(project_id)
    counts.pop("queue-jobs")
    return {"dump": dump, "counts": counts, "requirements": requirements(qtest, project_id)}
