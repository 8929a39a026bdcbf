"""The bulk auto-test-logs queue against the qTest sandbox's real-shaped answers (REAL_SHAPES.md qTest item
1: a finished job answers counts, never ids), through Dagster with real PostgreSQL.

Proves: when qTest attaches submitted logs to a run of its own choosing (a test case whose Automation
Content no longer matches, so qTest auto-creates a case and a run, as the swagger documents), the loader
finds each log by its Zephyr key, records it on the run it landed on with a warning naming that run, and a
re-run creates nothing; logs left pending by a run killed after their job ended are looked up and adopted,
never sent again.

And a submission whose answer was lost (the sandbox's ``lose_next``/``lost_answer_match``) while qTest's
queue is slower than the loader's in-run wait: the run ends with its logs pending, naming the submission
and until when qTest may still make them; an immediate re-run waits for the queue (the sandbox's queue
holds the job, ``queue_delay_s=None``, until the test sees the re-run waiting for it, so nothing depends
on timing) and adopts every log, sending nothing again. Only once the queue window has passed with nothing
in qTest (the queue lost the job) are the logs sent again, once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import dagster as dg
import httpx
import pytest

from tests.graph_helpers import TransformedDatabase, materialize_partition
from zephyr_qtest.defs.publish.qtest import publish_assets, reconciliation
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.qtest.kinds import automated_test_log as automated
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle

pytestmark = pytest.mark.e2e

PUBLISH_ASSETS = [*publish_assets, reconciliation]
BEFORE_LOGS = [
    dg.AssetKey(["qtest", stage]) for stage in ("modules", "test_cases", "test_cycles", "test_runs")
]
LOGS = [dg.AssetKey(["qtest", "test_logs"])]
CHANGED_CONTENT = "changed in qTest behind the migration"


def publish(
    database_url: str, project: str, zephyr: ZephyrSandboxHandle, qtest: QTestSandboxHandle, **kwargs: Any
) -> dg.ExecuteInProcessResult:
    return materialize_partition(
        PUBLISH_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, **kwargs
    )


def step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """The run's failed steps and its failed publish checks (a stage's refused or pending objects)."""
    return [
        f"{event.step_key}: {event.step_failure_data.error.message[:600]}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ] + [
        f"{e.asset_key.to_user_string()}:{e.check_name} {e.description}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.check_name.endswith("_all_published")
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


# ------------------------------------------------------------------ a lost answer and a slow queue


def pending_submissions(database_url: str, project: str) -> dict[str, dict[str, Any]]:
    """Pending test logs by source key -> their id-map detail."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "select source_key, detail from migration.id_map where project_key = %s "
            "and object_type = 'test_log' and state = 'pending'",
            (project,),
        ).fetchall()
    return {key: dict(detail) for key, detail in rows}


def done_counts(database_url: str, project: str) -> dict[str, int]:
    """Done rows of the id map per object type (test logs and step logs), and the mart's test logs to send."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "select object_type, count(*) from migration.id_map where project_key = %s and state = 'done' "
            "and object_type in ('test_log', 'test_step_log') group by 1",
            (project,),
        ).fetchall()
        (mart_logs,) = conn.execute(
            "select count(*) from qtest_mapping.qtest_test_logs "
            "where project_key = %s and skip_reason is null",
            (project,),
        ).fetchone()
    return {**{kind: int(count) for kind, count in rows}, "mart_logs": int(mart_logs)}


def assert_every_log_once(database_url: str, project: str, held: dict[str, int]) -> None:
    """qTest holds each execution's log once and each of its step logs once: as many as the mart has logs,
    and exactly those the id map recorded (it records what it read back, so a second copy is extra)."""
    done = done_counts(database_url, project)
    assert held["test-logs"] == done["test_log"] == done["mart_logs"], (held, done)
    assert held["test-step-logs"] == done["test_step_log"], (held, done)


def stuck_jobs(qtest: QTestSandboxHandle, pid: int) -> list[int]:
    return [job["id"] for job in qtest.dump(pid)["queue_jobs"] if job["state"] not in ("SUCCESS", "FAILED")]


def lose_one_submission(
    database_url: str, project: str, zephyr: ZephyrSandboxHandle, qtest: QTestSandboxHandle
) -> tuple[int, dict[str, dict[str, Any]], dg.ExecuteInProcessResult]:
    """Publishes up to the runs, then the logs with the answer to the first bulk submission lost while the
    queue holds its job: returns the qTest project, the pending logs' details, and that run."""
    before_logs = publish(database_url, project, zephyr, qtest, selection=BEFORE_LOGS)
    assert before_logs.success, step_failures(before_logs)
    pid = id_of(database_url, project, "project", project)
    qtest.set_faults(lose_next=1, lost_answer_match="auto-test-logs")
    first = publish(database_url, project, zephyr, qtest, selection=LOGS)
    pending = pending_submissions(database_url, project)
    assert pending, "no submission lost its answer: the scenario did not happen"
    return pid, pending, first


@pytest.fixture
def qtest_queue_holds_jobs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A qTest sandbox whose queue makes a job's logs only when the job is polled (queue_polls=2) or the
    test lets it (queue_delay_s set later): a job whose id nobody knows waits in the queue."""
    with start_qtest_in_thread(
        tmp_path_factory.mktemp("qtest_slow_queue"), seed=1, queue_delay_s=None
    ) as qtest:
        yield qtest


def test_a_lost_bulk_answer_and_a_slow_queue_then_a_rerun_make_every_log_once(
    transformed_database: TransformedDatabase,
    zephyr: ZephyrSandboxHandle,
    qtest_queue_holds_jobs: QTestSandboxHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    qtest = qtest_queue_holds_jobs
    database_url = transformed_database.copy("zq_lost_bulk")
    project = transformed_database.projects[0]
    # The loader's in-run wait, shorter than this queue (which holds the job until the test lets it go).
    monkeypatch.setattr(automated, "LOST_SUBMISSION_WAIT_S", 0.0)
    pid, pending, first = lose_one_submission(database_url, project, zephyr, qtest)

    # The first run ends with the logs pending (its check failed, the run went on): one submission, its
    # fingerprint and send time recorded.
    assert first.success
    submissions = {(detail["submission"], detail["sent_at"]) for detail in pending.values()}
    assert len(submissions) == 1 and all(detail["queue_id"] is None for detail in pending.values())
    ((fingerprint, sent_at),) = submissions
    assert len(fingerprint) == 64 and datetime.fromisoformat(sent_at).tzinfo is not None
    # Its check says what is pending, until when qTest may still make it, and that a re-run is safe.
    (failure,) = step_failures(first)
    assert f"{len(pending)} pending" in failure and fingerprint[:12] in failure, failure
    assert f"sent {automated.stamp(datetime.fromisoformat(sent_at))}" in failure, failure
    assert "qTest's queue may still make them until" in failure and "looks for them" in failure, failure
    (job,) = stuck_jobs(qtest, pid)
    after_first = qtest_objects(qtest, pid)
    assert after_first["test-logs"] == done_counts(database_url, project)["test_log"]  # the lost ones not yet

    # The immediate re-run looks for them and waits; the queue catches up once the re-run is waiting.
    waited: list[str] = []

    class QueueCatchesUp(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("looking in qTest until") and not waited:
                waited.append(message)
                qtest.set_faults(queue_delay_s=0.0)

    handler = QueueCatchesUp(logging.WARNING)
    logger = logging.getLogger(automated.__name__)
    logger.addHandler(handler)
    try:
        second = publish(database_url, project, zephyr, qtest)
    finally:
        logger.removeHandler(handler)
    assert step_failures(second) == []
    assert len(waited) == 1 and fingerprint[:12] in waited[0] and f"the {len(pending)} test logs" in waited[0]
    metadata = stage_metadata(second, "test_logs")
    assert (metadata["created"], metadata["adopted"], metadata["failed"]) == (0, len(pending), 0), metadata
    assert job not in stuck_jobs(qtest, pid)

    # Every log once, each step log once, and no second submission.
    held = qtest_objects(qtest, pid)
    assert held["queue-jobs"] == after_first["queue-jobs"]
    assert_every_log_once(database_url, project, held)
    # The loader's own check of the logs: every one in qTest once, equal to the marts.
    assert {
        e.check_name: e.metadata["loader_equal"].value
        for e in second.get_asset_check_evaluations()
        if e.check_name == "test_log_equal"
    } == {"test_log_equal": True}


def test_logs_of_a_lost_submission_are_sent_again_once_only_after_the_queue_window(
    transformed_database: TransformedDatabase,
    zephyr: ZephyrSandboxHandle,
    qtest_queue_holds_jobs: QTestSandboxHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    qtest = qtest_queue_holds_jobs
    database_url = transformed_database.copy("zq_lost_bulk_window")
    project = transformed_database.projects[0]
    monkeypatch.setattr(automated, "LOST_SUBMISSION_WAIT_S", 0.0)
    pid, pending, _ = lose_one_submission(database_url, project, zephyr, qtest)
    (lost_job,) = stuck_jobs(qtest, pid)  # the queue lost it: it never makes its logs
    jobs_before = qtest_objects(qtest, pid)["queue-jobs"]

    # The queue window has passed since the submission was sent (its time moved back past the window).
    with connect(database_url) as conn:
        conn.execute(
            "update migration.id_map set detail = jsonb_set(detail, '{sent_at}', to_jsonb(%s::text)) "
            "where project_key = %s and object_type = 'test_log' and state = 'pending'",
            ("2000-01-01T00:00:00+00:00", project),
        )
    again = publish(database_url, project, zephyr, qtest, selection=LOGS)
    assert step_failures(again) == []
    metadata = stage_metadata(again, "test_logs")
    assert (metadata["created"], metadata["adopted"], metadata["failed"]) == (len(pending), 0, 0), metadata
    held = qtest_objects(qtest, pid)
    assert held["queue-jobs"] == jobs_before + 1  # sent again in one submission, once
    assert stuck_jobs(qtest, pid) == [lost_job]
    assert_every_log_once(database_url, project, held)
