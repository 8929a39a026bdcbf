"""A delta run changes in qTest only what changed in Zephyr (issue 15: "touches only the changed qTest
objects"). A small project is migrated whole into the qTest sandbox; then the Zephyr sandbox changes 5% of
it as its users would (a case renamed, a cycle and a plan edited, two executions run again) and deletes a
case; the same run again (a delta extraction, the transform, the publishing) changes in qTest exactly the
objects of those changes. What changed is read from qTest itself: every object of the project as the API
shows it, before and after, compared whole; each changed object is traced to its Zephyr source through the
id map and must belong to a Zephyr change. The deleted case stays in qTest (reported, never deleted)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.graph_helpers import materialize_partition
from tests.integration.test_losses import _objects
from tests.integration.test_publish import PUBLISH_ASSETS, failures, qtest_project_id
from zephyr_qtest.defs.ingest.assets import raw_assets
from zephyr_qtest.defs.transform.dbt_models import zephyr_dbt_models
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

pytestmark = pytest.mark.e2e

PROJECT = "SHOP"
# One project of 20 cases and 40 executions: a 5% change is one case, one cycle, one plan, two executions.
SIZE = {"preset": "tiny", "projects": 1, "cases": 20, "executions": 40}
# The dump's lists of objects -> the id map's object type. Queue jobs are the bulk endpoint's submissions,
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


@pytest.fixture
def sandboxes(tmp_path: Path) -> Iterator[tuple[ZephyrSandboxHandle, QTestSandboxHandle]]:
    with (
        start_in_thread(seed=5, size=SIZE) as zephyr,
        start_qtest_in_thread(tmp_path / "qtest", seed=5, queue_delay_s=0) as qtest,
    ):
        yield zephyr, qtest


def migrate(database_url: str, zephyr: ZephyrSandboxHandle, qtest: QTestSandboxHandle) -> None:
    """The whole run of one project: extraction (a delta after a complete one), transform, publishing."""
    result = materialize_partition(
        [*raw_assets, zephyr_dbt_models, *PUBLISH_ASSETS],
        PROJECT,
        database_url=database_url,
        zephyr=zephyr,
        qtest=qtest,
    )
    assert result.success, failures(result)


def sources(database_url: str) -> dict[tuple[str, int], str]:
    """(id-map type, qTest id) -> the Zephyr source key it was made from."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "select object_type, qtest_id, source_key from migration.id_map "
            "where project_key = %s and qtest_id is not null",
            (PROJECT,),
        ).fetchall()
    return {(object_type, int(qtest_id)): source_key for object_type, qtest_id, source_key in rows}


def changed_sources(database_url: str, churned: dict[str, Any]) -> dict[str, set[str]]:
    """The source keys, per id-map type, of what the Zephyr change touches: the changed cases, cycles and
    plans; the logs of the executions run again and their runs; the runs of a renamed case (a qTest run is
    named after its case)."""
    changed = churned["changed"]
    cases = set(changed["testcases"])
    with connect(database_url) as conn:
        logs = conn.execute(
            "select source_key, parent_source_key from qtest_mapping.qtest_test_logs "
            "where project_key = %s and execution_id = any(%s)",
            (PROJECT, list(changed["testexecutions"])),
        ).fetchall()
        runs = conn.execute(
            "select source_key from qtest_mapping.qtest_test_runs "
            "where project_key = %s and test_case_source_key = any(%s)",
            (PROJECT, list(cases)),
        ).fetchall()
    return {
        "test_case": cases,
        "test_cycle": set(changed["testcycles"]),
        "release": set(changed["testplans"]),
        "test_log": {log for log, _ in logs},
        "test_run": {run for _, run in logs} | {run for (run,) in runs},
    }


def test_a_delta_changes_in_qtest_only_the_objects_that_changed_in_zephyr(
    sandboxes: tuple[ZephyrSandboxHandle, QTestSandboxHandle], embedded_databases: Any
) -> None:
    zephyr, qtest = sandboxes
    database_url = embedded_databases()
    migrate(database_url, zephyr, qtest)
    project_id = qtest_project_id(database_url, PROJECT)
    before = _objects(qtest.dump(project_id))

    churned = zephyr.churn(PROJECT, 0.05, delete_cases=1, seed=2)
    zephyr.reset_stats()
    migrate(database_url, zephyr, qtest)
    after = _objects(qtest.dump(project_id))

    # A delta: the Zephyr side read the steps of a few cases, not of all (test_delta_extraction.py has the
    # exact bounds).
    assert zephyr.stats()["by_path"].get("/v2/testcases/{testCaseKey}/teststeps", 0) < SIZE["cases"] // 2
    assert before.keys() <= after.keys(), "the delta deleted objects in qTest"
    changed = {key for key, obj in after.items() if before.get(key) != obj}
    made_from = sources(database_url)
    expected = changed_sources(database_url, churned)
    touched: dict[str, set[str]] = {}
    strangers = []
    for dumped, object_id in sorted(changed, key=str):
        object_type = DUMPED.get(dumped)
        source = made_from.get((object_type, int(object_id))) if object_type else None
        if source is None or source not in expected.get(object_type or "", set()):
            strangers.append((dumped, object_id, source))
        else:
            touched.setdefault(object_type or "", set()).add(source)
    assert strangers == [], f"changed in qTest without a change in Zephyr: {strangers}"
    # Every change arrived: each changed case, cycle, plan and execution changed its qTest object.
    for object_type in ("test_case", "test_cycle", "release"):
        assert touched.get(object_type) == expected[object_type], object_type
    executions_run_again = set(churned["changed"]["testexecutions"])
    assert len(executions_run_again) == 2 and touched.get("test_log") == expected["test_log"]
    # The deleted case stays in qTest as it was.
    [deleted] = churned["deleted"]["testcases"]
    deleted_ids = [
        qtest_id for (kind, qtest_id), key in made_from.items() if kind == "test_case" and key == deleted
    ]
    assert deleted_ids and all(("test_cases", qtest_id) in after for qtest_id in deleted_ids)
    assert all(
        after[("test_cases", qtest_id)] == before[("test_cases", qtest_id)] for qtest_id in deleted_ids
    )
