"""What the tests and benches read from the qTest sandbox: the write requests it answered, a snapshot of one
project (every object type, fields with their allowed values, requirements and links), and what a delta run
changed in it, traced to its Zephyr sources (``trace_delta``: tests/integration/test_delta_publish.py and
bench/delta_benchmark.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from zephyr_qtest.lib.postgres import connect
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


# A dump's lists of objects -> the id map's object type. Queue jobs are the bulk endpoint's submissions,
# not objects (the logs they make are compared); execution statuses belong to the project's template.
DUMPED = {
    "modules": "module",
    "test_cases": "test_case",
    "releases": "release",
    "test_cycles": "test_cycle",
    "test_runs": "test_run",
    "test_logs": "test_log",
    "attachments": "attachment",
}
# The id-map types of which every Zephyr change must reach qTest (a changed case, cycle or plan, an
# execution run again); runs change only when a change reaches them (a renamed case, a new log).
MUST_ARRIVE = ("test_case", "test_cycle", "release", "test_log")


def objects(dump: dict[str, Any]) -> dict[tuple[str, Any], dict[str, Any]]:
    """Every object of a qTest dump by (type, id)."""
    return {
        (object_type, item["id"]): item
        for object_type, items in dump.items()
        if isinstance(items, list)
        for item in items
        if isinstance(item, dict) and "id" in item
    }


def id_map_sources(database_url: str, project_key: str) -> dict[tuple[str, int], str]:
    """(id-map type, qTest id) -> the Zephyr source key it was made from."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "select object_type, qtest_id, source_key from migration.id_map "
            "where project_key = %s and qtest_id is not null",
            (project_key,),
        ).fetchall()
    return {(object_type, int(qtest_id)): source_key for object_type, qtest_id, source_key in rows}


def changed_sources(database_url: str, project_key: str, churned: dict[str, Any]) -> dict[str, set[str]]:
    """The source keys, per id-map type, of what a Zephyr change (the sandbox's ``churn`` answer) touches:
    the changed cases, cycles and plans; the logs of the executions run again and their runs; the runs of
    a renamed case (a qTest run is named after its case)."""
    changed = churned["changed"]
    cases = set(changed["testcases"])
    with connect(database_url) as conn:
        logs = conn.execute(
            "select source_key, parent_source_key from qtest_mapping.qtest_test_logs "
            "where project_key = %s and execution_id = any(%s)",
            (project_key, list(changed["testexecutions"])),
        ).fetchall()
        runs = conn.execute(
            "select source_key from qtest_mapping.qtest_test_runs "
            "where project_key = %s and test_case_source_key = any(%s)",
            (project_key, list(cases)),
        ).fetchall()
    return {
        "test_case": cases,
        "test_cycle": set(changed["testcycles"]),
        "release": set(changed["testplans"]),
        "test_log": {log for log, _ in logs},
        "test_run": {run for _, run in logs} | {run for (run,) in runs},
    }


@dataclass
class DeltaTrace:
    """What a run changed in a qTest project, read from qTest (the project's objects before and after,
    compared whole) and traced through the id map to the Zephyr objects they were made from."""

    # (dump list, qTest id) of every object that is new or differs
    changed: set[tuple[str, Any]]
    # id-map type -> the Zephyr source keys whose qTest object changed
    touched: dict[str, set[str]]
    # id-map type -> the Zephyr source keys the Zephyr change touches
    expected: dict[str, set[str]]
    # objects changed in qTest without a change in Zephyr: (dump list, qTest id, source key or None)
    strangers: list[tuple[str, Any, str | None]] = field(default_factory=list)
    # objects in qTest before and gone after
    removed: set[tuple[str, Any]] = field(default_factory=set)

    def missing(self) -> dict[str, set[str]]:
        """Zephyr changes that should have reached qTest and did not, per id-map type."""
        gaps = {kind: self.expected[kind] - self.touched.get(kind, set()) for kind in MUST_ARRIVE}
        return {kind: keys for kind, keys in gaps.items() if keys}

    def only_changes(self) -> bool:
        """Whether qTest changed exactly where Zephyr did: no stranger, nothing removed, nothing missing."""
        return not self.strangers and not self.removed and not self.missing()


def trace_delta(
    before: dict[str, Any],
    after: dict[str, Any],
    database_url: str,
    project_key: str,
    churned: dict[str, Any],
) -> DeltaTrace:
    """Compare two dumps of one qTest project (``QTestSandboxHandle.dump``) across a run, after the Zephyr
    change ``churned``: every changed object must trace to a changed Zephyr object."""
    old, new = objects(before), objects(after)
    changed = {key for key, obj in new.items() if old.get(key) != obj}
    made_from = id_map_sources(database_url, project_key)
    trace = DeltaTrace(
        changed=changed,
        touched={},
        expected=changed_sources(database_url, project_key, churned),
        removed=set(old) - set(new),
    )
    for dumped, object_id in sorted(changed, key=str):
        object_type = DUMPED.get(dumped)
        source = made_from.get((object_type, int(object_id))) if object_type else None
        if source is None or source not in trace.expected.get(object_type or "", set()):
            trace.strangers.append((dumped, object_id, source))
        else:
            trace.touched.setdefault(object_type or "", set()).add(source)
    return trace
