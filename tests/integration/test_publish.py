"""Publishing into qTest end to end, through Dagster: Zephyr sandbox -> raw -> dbt -> qTest sandbox, then
reconciliation read back from qTest.

Proves: two projects arrive with every object once and equal field for field (the loader's own check
finds no difference); each run's proof (verdict, report files, saved rows, checks) is that run's and
says the same everywhere; a re-run creates and updates nothing; an edit in Zephyr updates only the edited object; a qTest
that answers 429, 5xx and loses the answers of writes ends identical to a clean run.

Raw and dbt for both projects come from the session's shared transformed database (a copy of it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from tests.graph_helpers import TransformedDatabase, materialize_partition
from tests.proof_helpers import ledger_of, raw_custom_field_losses, raw_loss_counts
from zephyr_qtest.cli import failed_publish_checks
from zephyr_qtest.defs.ingest.assets import raw_assets
from zephyr_qtest.defs.publish.qtest import publish_assets, reconciliation
from zephyr_qtest.defs.transform.dbt_models import zephyr_dbt_models
from zephyr_qtest.lib.markdown import cell
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.proof.ledger import Reason
from zephyr_qtest.lib.qtest.id_map import site_of
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle

pytestmark = pytest.mark.e2e

ALL_ASSETS = [*raw_assets, zephyr_dbt_models, *publish_assets, reconciliation]
PUBLISH_ASSETS = [*publish_assets, reconciliation]
# mapping table -> the id-map type of what it becomes in qTest
MAPPED = {
    "qtest_modules": "module",
    "qtest_test_cases": "test_case",
    "qtest_test_case_versions": "test_case_version",
    "qtest_test_cycles": "test_cycle",
    "qtest_test_runs": "test_run",
    "qtest_test_logs": "test_log",
    "qtest_requirements": "requirement",
    "qtest_requirement_links": "requirement_link",
}


@pytest.fixture(scope="module")
def zephyr(shared_zephyr: ZephyrSandboxHandle) -> ZephyrSandboxHandle:
    """The sandbox the session's transformed database was extracted from (a re-extraction from another
    would change every raw payload's links). The edit test changes it for the modules after this one."""
    return shared_zephyr


def run(
    database_url: str,
    project_key: str,
    zephyr: ZephyrSandboxHandle,
    qtest: QTestSandboxHandle,
    assets: list[Any] = ALL_ASSETS,
    **qtest_options: Any,
) -> dg.ExecuteInProcessResult:
    return materialize_partition(
        assets,
        project_key,
        database_url=database_url,
        zephyr=zephyr,
        qtest=qtest,
        qtest_options=qtest_options,
    )


def failures(result: dg.ExecuteInProcessResult) -> list[str]:
    found = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            messages = []
            while error is not None:
                messages.append(error.message.strip()[:600])
                error = error.cause
            found.append(f"{event.step_key}: {' <- '.join(messages)}")
    found += [
        f"{e.asset_key.to_user_string()}:{e.check_name} {e.description}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.asset_key.path[0] == "qtest"
    ]
    return found


def loader_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """`failures` without the verdict: a reconciliation check counts only when the loader's own check found
    a difference (``loader_equal``). The generated projects hold values qTest cannot take, so their
    verdict is incomplete by design; tests of what the loader did assert this, and the proof apart."""
    found = [failure for failure in failures(result) if not failure.startswith("qtest/")]
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed or evaluation.asset_key.path[0] != "qtest":
            continue
        if evaluation.asset_key.path[-1] == "reconciliation":
            loader_equal = evaluation.metadata.get("loader_equal")
            if evaluation.check_name == "complete" or (loader_equal is not None and loader_equal.value):
                continue
        found.append(
            f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} {evaluation.description}"
        )
    return found


def published(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """qTest stage -> its materialization metadata values."""
    return {
        event.materialization.asset_key.path[1]: {
            key: getattr(value, "value", value) for key, value in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key.path[0] == "qtest"
    }


def proof_of(result: dg.ExecuteInProcessResult, database_url: str) -> dict[str, Any]:
    """The reconciliation's metadata, after checking that the run's proof says one thing everywhere: the
    check ``complete`` and the metadata carry the verdict, the saved ``migration.proof`` row is this run's,
    the report files exist with that verdict (the HTML with its two charts, the CSV with every saved
    ledger line), and no ``<type>_equal`` check passes with open ledger lines. Not which verdict: that
    depends on what the comparison finds in the fixture."""
    project = result.dagster_run.tags["dagster/partition"]
    metadata = published(result)["reconciliation"]
    evaluations = {
        e.check_name: e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path == ["qtest", "reconciliation"]
    }
    complete = evaluations["complete"]
    assert complete.passed is metadata["complete"] and complete.description == metadata["verdict"], complete
    for name, evaluation in evaluations.items():
        if name.endswith("_equal") and evaluation.metadata["open_lines"].value:
            assert not evaluation.passed, evaluation
    if not metadata["loader_check_equal"]:
        assert not all(e.passed for name, e in evaluations.items() if name.endswith("_equal")), evaluations
    with connect(database_url) as conn:
        run_id, saved_complete, verdict, report, open_lines = conn.execute(
            "select run_id, complete, verdict, report, open_lines from migration.proof "
            "where target_site = %s and project_key = %s",
            (site_of(metadata["qtest_site"]), project),
        ).fetchone()
        (lines,) = conn.execute(
            "select count(*) from migration.ledger where target_site = %s and project_key = %s",
            (site_of(metadata["qtest_site"]), project),
        ).fetchone()
    assert (
        run_id == result.run_id and saved_complete is metadata["complete"] and verdict == metadata["verdict"]
    )
    assert open_lines == metadata["open_lines"] and not (open_lines and saved_complete)
    markdown = Path(report)
    assert markdown.is_absolute() and markdown == Path(metadata["report_markdown"])
    assert (
        f"Verdict: **{cell(verdict, 400)}**" in markdown.read_text() and result.run_id in markdown.read_text()
    )
    assert markdown.with_suffix(".html").read_text().count("<svg") == 2
    csv_lines = Path(metadata["ledger_csv"]).read_text().splitlines()
    assert len(csv_lines) - 1 == lines and csv_lines[0].startswith(
        "object_type,object_key,field,value,reason"
    )
    return metadata


def qtest_project_id(database_url: str, project_key: str) -> int:
    with connect(database_url) as conn:
        row = conn.execute(
            "select qtest_id from migration.id_map where project_key = %s and object_type = 'project'",
            (project_key,),
        ).fetchone()
    assert row, project_key
    return int(row[0])


def expected_counts(database_url: str, project_key: str) -> dict[str, int]:
    counts = {}
    with connect(database_url) as conn:
        for table, kind in MAPPED.items():
            skip = " and skip_reason is null" if table == "qtest_test_logs" else ""
            counts[kind] = conn.execute(
                f"select count(*) from qtest_mapping.{table} where project_key = %s{skip}", (project_key,)
            ).fetchone()[0]
        # Automated logs go in bulk when the endpoint's pairing by position is right: their step logs are
        # on the case's first steps, in order (not on called steps, nor a data row's repeated steps), and
        # they ran against the current version (a log of an older one is a call of its own, on that version).
        counts["automated_test_log"] = conn.execute(
            "select count(*) from qtest_mapping.qtest_test_logs as logs where project_key = %s "
            "and skip_reason is null and automated and logs.test_case_version_source_key is null "
            "and not exists (select 1 from (select "
            "steps.test_step_source_key, row_number() over (order by steps.step_order) as n "
            "from qtest_mapping.qtest_test_step_logs as steps where steps.parent_source_key = logs.source_key "
            "and steps.skip_reason is null and steps.test_step_source_key is not null) as placed "
            "where placed.test_step_source_key <> logs.test_case_source_key || '#' || placed.n)",
            (project_key,),
        ).fetchone()[0]
        counts["attachment"] = conn.execute(
            "select count(*) from qtest_mapping.qtest_attachments where project_key = %s "
            "and skip_reason is null and qtest_object_type is not null",
            (project_key,),
        ).fetchone()[0]
    return counts


@pytest.fixture(scope="module")
def migrated(
    transformed_database: TransformedDatabase,
    zephyr: ZephyrSandboxHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Both projects migrated once into a clean qTest sandbox, from a copy of the session's transformed
    database (raw and dbt already built for both; only the publish assets run here)."""
    for build in transformed_database.runs:
        assert build.result.success, (build.project, failures(build.result))
    database_url = transformed_database.copy("zq_publish")
    state = tmp_path_factory.mktemp("qtest_clean")
    with start_qtest_in_thread(state, seed=1) as qtest:
        projects = transformed_database.projects
        results = {project: run(database_url, project, zephyr, qtest, PUBLISH_ASSETS) for project in projects}
        yield {
            "database_url": database_url,
            "qtest": qtest,
            "projects": projects,
            "results": results,
            "state": state,
        }


def test_both_projects_arrive_once_and_equal(migrated: dict[str, Any]) -> None:
    for project, result in migrated["results"].items():
        assert result.success and failed_publish_checks(result) == [], (project, failures(result))
        database_url = migrated["database_url"]
        # Every object arrived as the marts said (the loader's check); the verdict is this run's.
        assert proof_of(result, database_url)["loader_check_equal"] is True
        counts = migrated["qtest"].counts(qtest_project_id(database_url, project))
        expected = expected_counts(database_url, project)
        assert expected["test_case"] > 0 and expected["test_log"] > 0 and expected["attachment"] > 0
        # The test-case stage also replays the cases' older versions, each an object of its own.
        assert expected["test_case_version"] > 0
        expected["test_cases_stage"] = expected["test_case"] + expected["test_case_version"]
        metadata = published(result)
        for stage, kind in (("modules", "module"), ("test_cases", "test_cases_stage"), ("test_cycles", "test_cycle"),
                            ("test_runs", "test_run"), ("test_logs", "test_log"), ("attachments", "attachment")):  # fmt: skip
            assert metadata[stage]["created"] + metadata[stage]["adopted"] == expected[kind], (project, stage)
        # Jira issue links: one requirement per issue and one link per (issue, case or run), each made once.
        assert expected["requirement"] > 0 and expected["requirement_link"] >= expected["requirement"]
        assert metadata["requirements"]["created"] == expected["requirement"] + expected["requirement_link"]
        assert (counts["requirements"], counts["object-links"]) == (
            expected["requirement"],
            expected["requirement_link"],
        ), project
        # The sandbox starts from the default template: the run brought the fields it sets, reported them,
        # and set every property it has a field for.
        stages = [stage for stage in metadata if stage != "reconciliation"]
        assert sum(metadata[stage]["fields_created"] for stage in stages) >= 5, project
        assert any("Zephyr Key" in str(metadata[stage].get("qtest_fields_created")) for stage in stages)
        for stage in stages:
            assert "no field with this label" not in str(metadata[stage].get("properties_not_set")), stage
        pid = qtest_project_id(database_url, project)
        for object_type in ("test-cases", "test-runs", "test-suites", "releases"):
            fields = httpx.get(
                f"{migrated['qtest'].api_url}/projects/{pid}/settings/{object_type}/fields",
                headers=migrated["qtest"].headers,
            ).json()
            assert "Zephyr Key" in {field["label"] for field in fields}, object_type
        # Automated executions went through the bulk auto-test-logs queue, several to a submission.
        in_qtest = counts
        assert expected["automated_test_log"] > 0
        assert in_qtest["automation-test-logs"] == expected["automated_test_log"], (project, in_qtest)
        assert 0 < in_qtest["queue-jobs"] < expected["automated_test_log"], (project, in_qtest)


def test_the_report_is_this_runs_verdict_with_the_loaders_check_below(migrated: dict[str, Any]) -> None:
    for project, result in migrated["results"].items():
        metadata = proof_of(result, migrated["database_url"])
        report = Path(metadata["report"])
        assert report.is_file() and report == Path(metadata["report_markdown"]).with_suffix(".html")
        text = report.with_suffix(".md").read_text()
        assert text.startswith(f"# Proof of {project}\n") and metadata["summary"] == text[:60000]
        # The loader's own check comes after the verdict and the ledger, titled as what it is.
        assert text.index("## What did not arrive") < text.index("## The loader's own check")
        assert "Loader check: **equal**" in text and "everything equal" not in text
        # Seconds per step of this run, the publishing stages included.
        assert "## Per-stage timings" in text and "test_cases" in text.split("## Per-stage timings")[1]


def test_the_acceptance_file_is_named_in_the_verdict_and_an_unreadable_one_fails_the_reconciliation(
    migrated: dict[str, Any], zephyr: ZephyrSandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = migrated["projects"][0]
    database_url, qtest = migrated["database_url"], migrated["qtest"]
    rules = tmp_path / "acceptance.toml"
    monkeypatch.setenv("ZEPHYR_QTEST_ACCEPTANCE", str(rules))
    # A rule without a note: a configuration error, so the asset fails, naming the file, rule and setting.
    rules.write_text('[[accept]]\nfield = "labels"\nreason = "no mapping"\n')
    refused = run(database_url, project, zephyr, qtest, [reconciliation])
    assert not refused.success
    text = " ".join(failures(refused))
    assert f"acceptance file {rules.resolve()}, rule 1 (the 1st [[accept]]): has no note" in text, text
    assert "ZEPHYR_QTEST_ACCEPTANCE" in text
    # A reviewed file that accepts every reason of every field: complete, the file named in the verdict,
    # the report and every accepted line.
    rules.write_text('[[accept]]\nfield = "*"\nreason = "*"\nnote = "rehearsal: all accepted"\n')
    accepted = run(database_url, project, zephyr, qtest, [reconciliation])
    assert accepted.success, failures(accepted)
    metadata = proof_of(accepted, database_url)
    assert metadata["complete"] is True and metadata["acceptance_file"] == str(rules.resolve())
    assert metadata["verdict"] in ("complete", f"complete: {metadata['accepted_lines']} values accepted by {rules.resolve()}",
                                   f"complete: 1 value accepted by {rules.resolve()}")  # fmt: skip
    assert f"Acceptance file: {rules.resolve()} (1 rule" in Path(metadata["report_markdown"]).read_text()
    with connect(database_url) as conn:
        (open_lines,) = conn.execute(
            "select count(*) from migration.ledger where project_key = %s and accepted_by is null", (project,)
        ).fetchone()
    assert open_lines == 0


def test_a_rerun_creates_and_updates_nothing(migrated: dict[str, Any], zephyr: ZephyrSandboxHandle) -> None:
    project = migrated["projects"][0]
    qtest = migrated["qtest"]
    pid = qtest_project_id(migrated["database_url"], project)
    before = qtest.counts(pid)
    result = run(migrated["database_url"], project, zephyr, qtest, PUBLISH_ASSETS)
    assert result.success, failures(result)
    for stage, metadata in published(result).items():
        if stage != "reconciliation":
            assert (metadata["created"], metadata["updated"], metadata["adopted"]) == (0, 0, 0), stage
            assert metadata["skipped"] > 0, stage
            assert metadata["fields_created"] == 0, stage
    assert qtest.counts(pid) == before


def test_the_ledger_counts_what_the_raw_payloads_hold(migrated: dict[str, Any]) -> None:
    """On generated projects migrated with the shipped seeds into a default template: for each kind of value
    qTest cannot hold, the ledger has as many lines as SQL over the raw payloads counts (tests/proof_helpers:
    web links, unmapped owners and executors, step results of calls, cycle dates, status and owner, issue
    links of executions, values of unrun executions whose run holds a later one's...; custom-field values
    per object type), every line is one of those, and what is carried arrived equal (priorities and
    environments the site lacked included, added to its fields): no line says "differs in qTest"."""
    for project in migrated["projects"]:
        ledger = ledger_of(migrated["database_url"], migrated["qtest"], project)
        held = ledger.by_field_and_reason()
        expected = raw_loss_counts(migrated["database_url"], project)
        assert {kind: held.get(kind, 0) for kind in expected} == expected, project
        assert sum(expected.values()) > 100 and expected[("test case", "owner", Reason.NO_MAPPING)] > 0
        # Custom-field values with no qTest place, counted together per object type (the tenant names them).
        custom = Counter(
            line.object_type
            for line in ledger.lines
            if "customFields." in line.field and line.reason is Reason.NOT_CARRIED
        )
        raw_custom = raw_custom_field_losses(migrated["database_url"], project)
        # Every line is one of these: the ledger holds nothing the raw payloads do not account for.
        assert len(ledger.lines) == sum(expected.values()) + sum(raw_custom.values()), project
        assert dict(custom) == {kind: count for kind, count in raw_custom.items() if count}, project
        assert [line for line in ledger.lines if line.reason is Reason.DIFFERS] == [], project


def test_edits_in_zephyr_update_only_their_objects(
    migrated: dict[str, Any], zephyr: ZephyrSandboxHandle
) -> None:
    """One re-run after two edits: a renamed test case (its runs carry its name), and a manual execution
    (with step results) made automated, whose run moves to its cycle's automation sub-cycle. Nothing else
    changes."""
    project = migrated["projects"][1]
    database_url, qtest = migrated["database_url"], migrated["qtest"]
    with connect(database_url) as conn:
        (key,) = conn.execute(
            "select source_key from qtest_mapping.qtest_test_cases where project_key = %s order by source_key limit 1",
            (project,),
        ).fetchone()
        run_key, run_id, execution_key = conn.execute(
            "select runs.source_key, ids.qtest_id, logs.source_key from qtest_mapping.qtest_test_runs as runs "
            "join qtest_mapping.qtest_test_logs as logs on logs.parent_source_key = runs.source_key "
            "join migration.id_map as ids on ids.project_key = runs.project_key "
            "and ids.object_type = 'test_run' and ids.source_key = runs.source_key "
            "where runs.project_key = %s and runs.automation_module_names is null and logs.skip_reason is null "
            "and runs.execution_count = 1 and runs.test_case_source_key <> %s and exists (select 1 from "
            "qtest_mapping.qtest_test_step_logs as steps where steps.parent_source_key = logs.source_key "
            "and steps.skip_reason is null) order by 1 limit 1",
            (project, key),
        ).fetchone()
    zephyr.mutate("testcase", key, {"name": "Renamed in Zephyr after the first run"})
    zephyr.mutate("testexecution", execution_key, {"automated": True})
    result = run(database_url, project, zephyr, qtest)
    assert result.success, failures(result)
    with connect(database_url) as conn:
        (runs_of_case,) = conn.execute(
            "select count(*) from qtest_mapping.qtest_test_runs where project_key = %s and test_case_source_key = %s",
            (project, key),
        ).fetchone()
        (folder_id,) = conn.execute(
            "select ids.qtest_id from qtest_mapping.qtest_test_runs as runs join migration.id_map as ids "
            "on ids.project_key = runs.project_key and ids.object_type = 'test_cycle' "
            "and ids.source_key = runs.parent_source_key where runs.source_key = %s",
            (run_key,),
        ).fetchone()
    metadata = published(result)
    # The renamed case, and the other case (Zephyr ran it by automation now: Automation = Yes). Its new
    # version does not disturb the log's update, which keeps naming the steps of its own version.
    assert (metadata["test_cases"]["updated"], metadata["test_cases"]["created"]) == (2, 0)
    # The renamed case's runs follow its name; the other run moved.
    assert (metadata["test_runs"]["updated"], metadata["test_runs"]["created"]) == (runs_of_case + 1, 0)
    # The execution's log is brought up to date in place (its automated flag is in the payload).
    assert (metadata["test_logs"]["updated"], metadata["test_logs"]["created"]) == (1, 0)
    assert metadata["test_cycles"]["updated"] == 0 and metadata["test_cycles"]["created"] <= 1
    for stage in ("modules", "attachments"):
        assert (metadata[stage]["created"], metadata[stage]["updated"]) == (0, 0), stage
    assert proof_of(result, database_url)["loader_check_equal"] is True
    pid = qtest_project_id(database_url, project)
    moved = httpx.get(f"{qtest.api_url}/projects/{pid}/test-runs/{run_id}", headers=qtest.headers).json()
    assert moved["parentId"] == folder_id, moved


def test_the_reconciliation_sees_a_property_changed_in_qtest(
    migrated: dict[str, Any], zephyr: ZephyrSandboxHandle
) -> None:
    """Properties are compared too: a run's Zephyr Key edited in qTest behind the migration's back shows."""
    project = migrated["projects"][1]
    qtest, database_url = migrated["qtest"], migrated["database_url"]
    pid = qtest_project_id(database_url, project)
    with connect(database_url) as conn:
        key, run_id = conn.execute(
            "select source_key, qtest_id from migration.id_map where project_key = %s "
            "and object_type = 'test_run' and state = 'done' order by source_key limit 1",
            (project,),
        ).fetchone()
    api = f"{qtest.api_url}/projects/{pid}"
    fields = httpx.get(f"{api}/settings/test-runs/fields", headers=qtest.headers).json()
    field_id = next(f["id"] for f in fields if f["label"] == "Zephyr Key")
    answer = httpx.put(
        f"{api}/test-runs/{run_id}",
        json={"properties": [{"field_id": field_id, "field_value": "edited in qTest"}]},
        headers=qtest.headers,
    )
    assert answer.status_code == 200, answer.text
    result = run(database_url, project, zephyr, qtest, [reconciliation])
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # The loader's check of the runs sees it (whatever the ledger holds); the cases' has nothing to say.
    assert checks["test_run_equal"].passed is False, checks["test_run_equal"]
    assert "1 mismatched fields" in str(checks["test_run_equal"].description)
    assert checks["test_case_equal"].metadata["loader_equal"].value is True, checks["test_case_equal"]
    assert proof_of(result, database_url)["loader_check_equal"] is False
    with connect(database_url) as conn:
        mismatches = conn.execute(
            "select source_key, field, actual from migration.reconciliation_mismatch "
            "where project_key = %s and object_type = 'test_run'",
            (project,),
        ).fetchall()
    assert [(m[0], m[1]) for m in mismatches] == [(key, "properties")]
    assert "edited in qTest" in mismatches[0][2]


def test_a_faulty_qtest_ends_identical_to_a_clean_run(
    migrated: dict[str, Any],
    transformed_database: TransformedDatabase,
    zephyr: ZephyrSandboxHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """20% 429s, 5% 5xx and 5% lost answers to writes: re-runs until done, then qTest equals the clean run.

    A bulk submission of test logs answered 5xx or not at all may still be in qTest's queue: a later run
    looks for its logs and sends them again only after the queue window. Here the queue ends each job at
    the next request (``queue_delay_s=0``), so a job the sandbox took has made its logs before the first
    look, and a window of 0 (send again after one look) is what that queue allows; with the default hour
    a 5xx on a submission would hold the test for an hour."""
    project = migrated["projects"][0]
    # Raw and dbt as the clean run had them: another copy of the session's transformed database.
    database_url = transformed_database.copy("zq_publish_faulty")
    state = tmp_path_factory.mktemp("qtest_faulty")
    with start_qtest_in_thread(state, seed=2) as qtest:
        qtest.set_faults(
            rate_limit=None, fault_rate=0.05, lost_answer_rate=0.05, rate_limited_rate=0.2, queue_delay_s=0.0
        )
        for _attempt in range(5):
            result = run(database_url, project, zephyr, qtest, PUBLISH_ASSETS, queue_window_s=0.0)
            # Done: no stage failed, and none left an object unpublished (its check, not the run, says so).
            if result.success and not failed_publish_checks(result):
                break
        qtest.set_faults(fault_rate=0.0, lost_answer_rate=0.0, rate_limited_rate=0.0)
        assert result.success and not failed_publish_checks(result), failures(result)
        assert proof_of(result, database_url)["loader_check_equal"] is True
        faulty_counts = qtest.counts(qtest_project_id(database_url, project))
        stats = qtest.stats()
    clean = migrated["qtest"].counts(qtest_project_id(migrated["database_url"], project))
    assert faulty_counts == clean
    assert stats, "the faulty sandbox answered"
