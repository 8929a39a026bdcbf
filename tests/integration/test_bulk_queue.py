"""The bulk auto-test-logs queue against the qTest sandbox's real-shaped answers (REAL_SHAPES.md qTest item
1: a finished job answers counts, never ids), through Dagster with real PostgreSQL.

Proves: when qTest attaches submitted logs to a run of its own choosing (a test case whose Automation
Content no longer matches, so qTest auto-creates a case and a run, as the swagger documents), the loader
finds each log by its Zephyr key, records it on the run it landed on with a warning naming that run, and a
re-run creates nothing; logs left pending by a run killed after their job ended are looked up and adopted,
never sent again.
"""

from __future__ import annotations

import logging
from typing import Any

import dagster as dg
import httpx
import pytest

from tests.graph_helpers import TransformedDatabase, materialize_partition
from zephyr_qtest.defs.publish.qtest import publish_assets, reconciliation
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle

pytestmark = pytest.mark.e2e

PUBLISH_ASSETS = [*publish_assets, reconciliation]
BEFORE_LOGS = [
    dg.AssetKey(["qtest", stage]) for stage in ("modules", "test_cases", "test_cycles", "test_runs")
]
CHANGED_CONTENT = "changed in qTest behind the migration"


def publish(
    database_url: str, project: str, zephyr: ZephyrSandboxHandle, qtest: QTestSandboxHandle, **kwargs: Any
) -> dg.ExecuteInProcessResult:
    return materialize_partition(
        PUBLISH_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, **kwargs
    )


def step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        f"{event.step_key}: {event.step_failure_data.error.message[:600]}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]


def stage_metadata(result: dg.ExecuteInProcessResult, stage: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.materialization.asset_key.path == ["qtest", stage]:
            return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"qtest/{stage} was not materialized")


def id_of(database_url: str, project: str, object_type: str, source_key: str) -> int:
    with connect(database_url) as conn:
        row = conn.execute(
            "select qtest_id from migration.id_map where project_key = %s and object_type = %s "
            "and source_key = %s and state = 'done'",
            (project, object_type, source_key),
        ).fetchone()
    assert row and row[0], (object_type, source_key)
    return int(row[0])


def logs_elsewhere(database_url: str, project: str) -> dict[str, tuple[int, int]]:
    """Executions whose log the id map records on another run than their own: key -> (landed, own run)."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "select logs.source_key, (ids.detail ->> 'test_run_id')::bigint, runs.qtest_id "
            "from qtest_mapping.qtest_test_logs as logs "
            "join migration.id_map as ids on ids.project_key = logs.project_key "
            "and ids.object_type = 'test_log' and ids.source_key = logs.source_key and ids.state = 'done' "
            "join migration.id_map as runs on runs.project_key = logs.project_key "
            "and runs.object_type = 'test_run' and runs.source_key = logs.parent_source_key "
            "where logs.project_key = %s and (ids.detail ->> 'test_run_id')::bigint <> runs.qtest_id",
            (project,),
        ).fetchall()
    return {key: (int(landed), int(own)) for key, landed, own in rows}


def automated_case(database_url: str, project: str) -> str:
    """The test case with the most automated executions on automation runs (they go in bulk)."""
    with connect(database_url) as conn:
        row = conn.execute(
            "select runs.test_case_source_key from qtest_mapping.qtest_test_logs as logs "
            "join qtest_mapping.qtest_test_runs as runs on runs.project_key = logs.project_key "
            "and runs.source_key = logs.parent_source_key "
            "where logs.project_key = %s and logs.automated and logs.skip_reason is null "
            "and runs.automation_module_names is not null "
            "group by 1 order by count(*) desc, 1 limit 1",
            (project,),
        ).fetchone()
    assert row, f"project {project} has no automated execution on an automation run"
    return str(row[0])


def change_automation_content(qtest: QTestSandboxHandle, pid: int, case_id: int) -> None:
    """Edits the case's Automation Content in qTest, so the bulk endpoint no longer finds the case."""
    api = f"{qtest.api_url}/projects/{pid}"
    with httpx.Client(headers=qtest.headers, timeout=30) as http:
        fields = http.get(f"{api}/settings/test-cases/fields").json()
        field = next(f for f in fields if f["label"] == "Automation Content")
        answer = http.put(
            f"{api}/test-cases/{case_id}",
            json={"properties": [{"field_id": field["id"], "field_value": CHANGED_CONTENT}]},
        )
        assert answer.status_code == 200, answer.text
        found = http.post(
            f"{api}/search",
            json={"object_type": "test-cases", "query": f"'Automation Content' = '{CHANGED_CONTENT}'"},
        ).json()
        assert [item["id"] for item in found["items"]] == [case_id]


def qtest_objects(qtest: QTestSandboxHandle, pid: int) -> dict[str, int]:
    """What the sandbox holds of the project: cases, runs, logs and the rest (its admin endpoint)."""
    counts = httpx.get(f"{qtest.base_url}/_sandbox/counts/{pid}", timeout=30).json()
    return dict(counts["per_project"][str(pid)])


@pytest.fixture(scope="module")
def zephyr(shared_zephyr: ZephyrSandboxHandle) -> ZephyrSandboxHandle:
    return shared_zephyr


def test_a_log_qtest_attaches_to_another_run_is_recorded_and_never_sent_twice(
    transformed_database: TransformedDatabase,
    zephyr: ZephyrSandboxHandle,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    database_url = transformed_database.copy("zq_bulk_queue")
    project = transformed_database.projects[0]
    with start_qtest_in_thread(tmp_path_factory.mktemp("qtest_bulk"), seed=1) as qtest:
        before_logs = publish(database_url, project, zephyr, qtest, selection=BEFORE_LOGS)
        assert before_logs.success, step_failures(before_logs)
        with connect(database_url) as conn:
            (pid,) = conn.execute(
                "select qtest_id from migration.id_map where project_key = %s and object_type = 'project'",
                (project,),
            ).fetchone()
        case_key = automated_case(database_url, project)
        case_id = id_of(database_url, project, "test_case", case_key)
        change_automation_content(qtest, pid, case_id)
        cases_before = qtest_objects(qtest, pid)["test-cases"]

        with caplog.at_level(logging.WARNING, logger="zephyr_qtest.lib.qtest.kinds.automated_test_log"):
            first = publish(database_url, project, zephyr, qtest)
        assert step_failures(first) == []
        metadata = stage_metadata(first, "test_logs")
        assert metadata["failed"] == 0 and metadata["created_in_batches"] > 0, metadata

        # qTest made a case of its own for the fingerprint, and put the case's bulk logs on its run.
        after_first = qtest_objects(qtest, pid)
        assert after_first["test-cases"] == cases_before + 1
        elsewhere = logs_elsewhere(database_url, project)
        assert elsewhere, "no log landed on another run: the scenario did not happen"
        with httpx.Client(headers=qtest.headers, timeout=30) as http:
            for key, (landed, own) in elsewhere.items():
                run = http.get(f"{qtest.api_url}/projects/{pid}/test-runs/{landed}").json()
                assert run["testCaseId"] != case_id and run["automation"] == "Yes", (key, run)
                logs = http.get(f"{qtest.api_url}/projects/{pid}/test-runs/{landed}/test-logs").json()
                log_id = id_of(database_url, project, "test_log", key)
                assert log_id in [item["id"] for item in logs["items"]], key
                # The warning names the execution and the run it landed on.
                assert any(
                    key in record.getMessage()
                    and f"qTest run {landed}, not on its run {own}" in record.getMessage()
                    for record in caplog.records
                ), key

        # A re-run: the logs are recorded, so nothing goes to qTest again.
        second = publish(database_url, project, zephyr, qtest)
        assert step_failures(second) == []
        metadata = stage_metadata(second, "test_logs")
        assert (metadata["created"], metadata["adopted"], metadata["failed"]) == (0, 0, 0), metadata
        assert qtest_objects(qtest, pid) == after_first

        # A run killed after the job ended but before it recorded the logs leaves them pending: the next
        # run finds each by its Zephyr key on the run qTest chose, and adopts it without sending it again.
        with connect(database_url) as conn:
            conn.execute(
                "update migration.id_map set state = 'pending', qtest_id = null where project_key = %s "
                "and object_type = 'test_log' and source_key = any(%s)",
                (project, list(elsewhere)),
            )
        third = publish(database_url, project, zephyr, qtest)
        assert step_failures(third) == []
        metadata = stage_metadata(third, "test_logs")
        assert (metadata["created"], metadata["adopted"], metadata["failed"]) == (0, len(elsewhere), 0)
        assert qtest_objects(qtest, pid) == after_first
        assert logs_elsewhere(database_url, project) == elsewhere
