"""Delta runs of the raw layer against a real sandbox and PostgreSQL: after a complete extraction, a run
reads from Zephyr only what changed (the sandbox counts the requests), merges it with what the raw tables
hold so that they equal a full extraction of the same tenant, reports a deleted case; a failed delta does
not move the watermark; a run tagged full reads everything again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from tests.graph_helpers import materialize_partition
from tests.integration.test_raw_extraction import snapshot
from zephyr_qtest.defs.ingest.assets import extraction_tags, raw_assets
from zephyr_qtest.defs.resources import ZephyrResource
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

PROJECT = "SHOP"
# One project of 20 cases and 40 executions: a 5% change is one case, one cycle, one plan, two executions.
SIZE = {"preset": "tiny", "projects": 1, "cases": 20, "executions": 40}
# The per-object routes: a delta asks them only about the objects that changed.
PER_CASE = (
    "/v2/testcases/{testCaseKey}/teststeps",
    "/v2/testcases/{testCaseKey}/testscript",
    "/v2/testcases/{testCaseKey}/versions",
)
PER_EXECUTION = "/v2/testexecutions/{testExecutionIdOrKey}/teststeps"


@pytest.fixture
def sandbox() -> Iterator[ZephyrSandboxHandle]:
    with start_in_thread(seed=5, size=SIZE) as handle:
        yield handle


def extract(
    database_url: str, sandbox: ZephyrSandboxHandle, *, full: bool = False, max_retries: int = 8
) -> tuple[dg.ExecuteInProcessResult, dict[str, Any]]:
    """One materialization of every raw asset; the sandbox's request statistics of it."""
    sandbox.reset_stats()
    zephyr = ZephyrResource(base_url=sandbox.base_url, api_token=sandbox.token, max_retries=max_retries)
    result = materialize_partition(
        raw_assets, PROJECT, database_url=database_url, zephyr=zephyr, tags=extraction_tags(full)
    )
    return result, sandbox.stats()


def per_object_requests(stats: dict[str, Any]) -> tuple[int, int]:
    by_path = stats["by_path"]
    return sum(by_path.get(path, 0) for path in PER_CASE), by_path.get(PER_EXECUTION, 0)


def watermarks(database_url: str) -> dict[str, tuple[Any, Any]]:
    with connect(database_url) as conn:
        rows = conn.execute(
            "select entity, read_since, changes_read_to from zephyr_raw.extraction_log where project_key = %s",
            (PROJECT,),
        ).fetchall()
    return {entity: (since, upto) for entity, since, upto in rows}


def test_delta_reads_only_what_changed_and_merges_to_a_full_extraction(
    sandbox: ZephyrSandboxHandle, embedded_databases
) -> None:
    delta_db, full_db = embedded_databases(), embedded_databases()
    first, first_stats = extract(delta_db, sandbox)
    assert first.success
    first_cases, first_executions = per_object_requests(first_stats)

    churned = sandbox.churn(PROJECT, 0.05, delete_cases=1, seed=2)
    changed_cases = churned["changed"]["testcases"]
    changed_executions = churned["changed"]["testexecutions"]
    [deleted] = churned["deleted"]["testcases"]
    assert len(changed_cases) == 1 and len(changed_executions) == 2

    delta, delta_stats = extract(delta_db, sandbox)
    assert delta.success
    cases, executions = per_object_requests(delta_stats)
    # At most one request per route for the changed case (steps or script, versions), one per changed execution.
    assert 1 <= cases <= len(PER_CASE) * len(changed_cases) < first_cases
    assert executions == len(changed_executions) < first_executions
    assert delta_stats["requests"] * 3 < first_stats["requests"]
    metadata = {
        event.asset_key.path[-1]: event.materialization.metadata
        for event in delta.get_asset_materialization_events()
    }
    assert metadata["test_cases"]["extraction"].value == "delta"
    assert metadata["test_cases"]["deleted_in_zephyr"].value == 1
    assert metadata["test_cases"]["changed_in_zephyr"].value == 1
    assert metadata["test_steps"]["extraction"].value == "delta"

    # What the delta merged equals a first extraction of the tenant as it is now.
    fresh, fresh_stats = extract(full_db, sandbox)
    assert fresh.success
    assert snapshot(delta_db, PROJECT) == snapshot(full_db, PROJECT)
    with Store(delta_db) as store:
        assert [(entity, ref) for _, entity, ref, _ in store.raw_rows().deletions([PROJECT])] == [
            ("test_cases", deleted)
        ]

    # Tagged full, a run reads everything again, as a first one does.
    again, again_stats = extract(delta_db, sandbox, full=True)
    assert again.success
    assert per_object_requests(again_stats) == per_object_requests(fresh_stats)
    assert snapshot(delta_db, PROJECT) == snapshot(full_db, PROJECT)


def test_a_failed_delta_leaves_the_watermark_and_the_next_one_reads_its_changes(
    sandbox: ZephyrSandboxHandle, embedded_databases
) -> None:
    delta_db, full_db = embedded_databases(), embedded_databases()
    assert extract(delta_db, sandbox)[0].success
    before = watermarks(delta_db)
    churned = sandbox.churn(PROJECT, 0.05, seed=3)

    # Every answer about the changed case (its steps or script, versions, attachments) is broken.
    [case] = churned["changed"]["testcases"]
    sandbox.set_faults(malformed=[{"prefix": f"/v2/testcases/{case}/", "count": 1000}])
    failed, _ = extract(delta_db, sandbox, max_retries=0)
    sandbox.set_faults(malformed=[])
    assert not failed.success
    after_failure = watermarks(delta_db)
    for entity in ("test_steps", "test_case_versions"):
        assert after_failure[entity] == before[entity], entity

    healed, stats = extract(delta_db, sandbox)
    assert healed.success
    cases, _ = per_object_requests(stats)
    assert cases >= len(churned["changed"]["testcases"])
    assert extract(full_db, sandbox)[0].success
    assert snapshot(delta_db, PROJECT) == snapshot(full_db, PROJECT)
