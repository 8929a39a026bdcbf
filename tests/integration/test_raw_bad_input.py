"""Bad input from Zephyr: each problem is recorded with its object and field, the rest goes on, and an
asset fails only when something could not be read, naming it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from tests.integration.test_raw_extraction import materialize, materialized_metadata
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread


def _issues(database_url: str, entity: str) -> list[tuple[str, str | None, str, bool]]:
    with connect(database_url) as conn:
        return conn.execute(
            "select object_ref, field, reason, lost from zephyr_raw.extraction_issues where entity = %s order by 1, 2",
            (entity,),
        ).fetchall()


@pytest.fixture(scope="module")
def broken_fixture() -> dict[str, Any]:
    """Generated data with deliberate defects, served as given."""
    document = copy.deepcopy(generate(5, "tiny"))
    project_id = document["projects"][0]["id"]
    cases = [case for case in document["testcases"] if case["project"]["id"] == project_id]
    del cases[0]["name"]  # a required field missing
    folders = [folder for folder in document["folders"] if folder["project"]["id"] == project_id]
    folders[0]["folderType"] = "TEST_SUITE"  # an enum value the spec does not define
    return document


@pytest.fixture
def broken_sandbox(broken_fixture: dict[str, Any]) -> Iterator[ZephyrSandboxHandle]:
    with start_in_thread(fixture=broken_fixture) as handle:
        yield handle


def test_missing_fields_and_unknown_enums_are_recorded_and_kept(
    clean_database: str, broken_sandbox: ZephyrSandboxHandle, broken_fixture: dict[str, Any]
) -> None:
    project = broken_fixture["projects"][0]["key"]
    result = materialize(clean_database, broken_sandbox, project)
    assert result.success  # nothing was lost: the objects are stored as the API gave them
    case_issues = _issues(clean_database, "test_cases")
    assert [(field, lost) for _, field, _, lost in case_issues] == [("name", False)]
    assert "required field is missing" in case_issues[0][2]
    folder_issues = _issues(clean_database, "folders")
    assert [(field, lost) for _, field, _, lost in folder_issues] == [("folderType", False)]
    assert "TEST_SUITE" in folder_issues[0][2]
    with connect(clean_database) as conn:
        (kept,) = conn.execute(
            "select count(*) from zephyr_raw.test_cases where project_key = %s and not payload ? 'name'",
            (project,),
        ).fetchone()
    assert kept == 1
    metadata = materialized_metadata(result)
    assert metadata["test_cases"]["issues"].value == 1
    assert "name" in metadata["test_cases"]["issue_list"].value


def test_a_case_deleted_mid_run_is_recorded_and_the_rest_goes_on(
    clean_database: str, broken_sandbox: ZephyrSandboxHandle, broken_fixture: dict[str, Any]
) -> None:
    project = broken_fixture["projects"][0]["key"]
    instance = dg.DagsterInstance.ephemeral()
    listed = materialize(
        clean_database, broken_sandbox, project, instance=instance, selection="zephyr_raw/test_cases"
    )
    assert listed.success
    with connect(clean_database) as conn:
        steps_case = conn.execute(
            "select key from zephyr_raw.test_cases where project_key = %s "
            "and payload -> 'testScript' ->> 'self' like '%%/teststeps' order by id limit 1",
            (project,),
        ).fetchone()[0]
    broken_sandbox.delete_test_case(steps_case)
    result = materialize(
        clean_database, broken_sandbox, project, instance=instance, selection="zephyr_raw/test_steps"
    )
    assert result.success
    steps_issues = _issues(clean_database, "test_steps")
    assert [(ref, lost) for ref, _, _, lost in steps_issues] == [(f"test case {steps_case}", False)]
    assert "deleted" in steps_issues[0][2]
    with connect(clean_database) as conn:
        (kept,) = conn.execute(
            "select count(*) from zephyr_raw.test_steps where project_key = %s and parent_key <> %s",
            (project, steps_case),
        ).fetchone()
    assert kept > 0


def test_a_404_on_an_attachment_listing_is_unknown_and_fails_the_asset(
    clean_database: str, broken_sandbox: ZephyrSandboxHandle, broken_fixture: dict[str, Any]
) -> None:
    """REAL_SHAPES.md, Zephyr Scale Cloud 4: some tenants answer 404 for endpoints others serve, so a 404
    on a listing says nothing about the attachments: they are recorded as not listed, and lost."""
    project = broken_fixture["projects"][0]
    case_key = next(
        owner.split("/")[1]
        for owner in broken_fixture["attachments"]
        if owner.count("/") == 1
        and owner.startswith(f"testcases/{project['key']}-")
        and broken_fixture["attachments"][owner]
    )
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(clean_database, broken_sandbox, project["key"], instance=instance).success
    broken_sandbox.delete_test_case(case_key)  # its attachment listings answer 404 from now on
    result = materialize(
        clean_database, broken_sandbox, project["key"], instance=instance, selection="zephyr_raw/attachments"
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    assert f"attachments of testcases/{case_key} could not be listed" in str(
        failure.event_specific_data.error
    )
    issues = _issues(clean_database, "attachments")
    owner = f"testcases/{case_key}"
    assert (owner, "attachments", True) in [(ref, field, lost) for ref, field, _, lost in issues]
    reason = next(reason for ref, _, reason, _ in issues if ref == owner)
    assert reason.startswith(f"attachments of {owner} could not be listed: ") and "404" in reason
    assert "deleted" not in reason
    # Only the case and its steps were not listed; every other owner's attachments are kept.
    assert all(ref == owner or ref.startswith(f"{owner}/teststeps/") for ref, *_ in issues)
    with connect(clean_database) as conn:
        (kept,) = conn.execute(
            "select count(*) from zephyr_raw.attachments where project_key = %s", (project["key"],)
        ).fetchone()
    assert kept > 0


def test_a_page_that_stays_malformed_fails_the_asset_naming_it_and_a_passing_one_does_not(
    clean_database: str, broken_sandbox: ZephyrSandboxHandle, broken_fixture: dict[str, Any]
) -> None:
    project = broken_fixture["projects"][0]["key"]
    assert materialize(clean_database, broken_sandbox, project).success
    with connect(clean_database) as conn:
        execution_id = conn.execute(
            "select id from zephyr_raw.test_executions where project_key = %s order by id limit 1", (project,)
        ).fetchone()[0]
        (steps_before,) = conn.execute(
            "select count(*) from zephyr_raw.test_execution_steps where project_key = %s", (project,)
        ).fetchone()

    # One broken page: read again, nothing lost.
    broken_sandbox.set_faults(
        malformed=[{"prefix": "/testcases/nextgen", "count": 1, "kind": "invalid_json"}]
    )
    assert materialize(clean_database, broken_sandbox, project, selection="zephyr_raw/test_cases").success
    assert [lost for *_, lost in _issues(clean_database, "test_cases") if lost] == []

    # One execution whose step results never come back readable: that execution is named, the others kept.
    broken_sandbox.set_faults(
        malformed=[
            {"prefix": f"/testexecutions/{execution_id}/teststeps", "count": 1000, "kind": "missing_values"}
        ]
    )
    # Two retries are enough to tell "stays malformed" (the default, 8, waits about 40 s before giving up).
    result = materialize(
        clean_database, broken_sandbox, project, selection="zephyr_raw/test_execution_steps", max_retries=2
    )
    broken_sandbox.set_faults(malformed=[])
    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    assert f"test execution {execution_id}" in str(failure.event_specific_data.error)
    lost = [ref for ref, _, _, is_lost in _issues(clean_database, "test_execution_steps") if is_lost]
    assert lost == [f"test execution {execution_id}"]
    with connect(clean_database) as conn:
        (steps_after,) = conn.execute(
            "select count(*) from zephyr_raw.test_execution_steps where project_key = %s", (project,)
        ).fetchone()
        (missing_one,) = conn.execute(
            "select count(*) from zephyr_raw.test_execution_steps where project_key = %s and parent_key = %s",
            (project, str(execution_id)),
        ).fetchone()
    assert missing_one == 0
    assert 0 < steps_after < steps_before
