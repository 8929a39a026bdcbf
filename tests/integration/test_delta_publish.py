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
from tests.integration.test_publish import PUBLISH_ASSETS, failures, qtest_project_id
from tests.qtest_snapshot import id_map_sources, objects, trace_delta
from zephyr_qtest.defs.ingest.assets import raw_assets
from zephyr_qtest.defs.transform.dbt_models import zephyr_dbt_models
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

pytestmark = pytest.mark.e2e

PROJECT = "SHOP"
# One project of 20 cases and 40 executions: a 5% change is one case, one cycle, one plan, two executions.
SIZE = {"preset": "tiny", "projects": 1, "cases": 20, "executions": 40}


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


def test_a_delta_changes_in_qtest_only_the_objects_that_changed_in_zephyr(
    sandboxes: tuple[ZephyrSandboxHandle, QTestSandboxHandle], embedded_databases: Any
) -> None:
    zephyr, qtest = sandboxes
    database_url = embedded_databases()
    migrate(database_url, zephyr, qtest)
    project_id = qtest_project_id(database_url, PROJECT)
    before = qtest.dump(project_id)

    churned = zephyr.churn(PROJECT, 0.05, delete_cases=1, seed=2)
    zephyr.reset_stats()
    migrate(database_url, zephyr, qtest)
    after = qtest.dump(project_id)

    # A delta: the Zephyr side read the steps of a few cases, not of all (test_delta_extraction.py has the
    # exact bounds).
    assert zephyr.stats()["by_path"].get("/v2/testcases/{testCaseKey}/teststeps", 0) < SIZE["cases"] // 2
    trace = trace_delta(before, after, database_url, PROJECT, churned)
    assert not trace.removed, f"the delta deleted objects in qTest: {sorted(trace.removed, key=str)}"
    assert trace.strangers == [], f"changed in qTest without a change in Zephyr: {trace.strangers}"
    # Every change arrived: each changed case, cycle, plan and execution changed its qTest object.
    assert trace.missing() == {}
    executions_run_again = set(churned["changed"]["testexecutions"])
    assert len(executions_run_again) == 2 and trace.touched.get("test_log") == trace.expected["test_log"]
    # The deleted case stays in qTest as it was.
    made_from = id_map_sources(database_url, PROJECT)
    [deleted] = churned["deleted"]["testcases"]
    deleted_ids = [
        qtest_id for (kind, qtest_id), key in made_from.items() if kind == "test_case" and key == deleted
    ]
    old, new = objects(before), objects(after)
    assert deleted_ids and all(("test_cases", qtest_id) in new for qtest_id in deleted_ids)
    assert all(new[("test_cases", qtest_id)] == old[("test_cases", qtest_id)] for qtest_id in deleted_ids)
