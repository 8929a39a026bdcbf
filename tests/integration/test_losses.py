"""A tenant with every kind of loss, migrated whole: each value that does not arrive is a ledger line with
the right reason and remedy, every other object arrives, and the verdict says so.

The tenant is a generated one (tiny, one project migrated) with the values generated data already holds
that qTest cannot take as they are (owners and executors whom Jira or qTest cannot name: the others arrive,
resolved through the Jira sandbox as the demo does; step results of executions not run yet; and, in the
first, report-only run, the fields and values the site lacks: the unmapped priority "Critical ⚠",
environments, custom fields, createdOn), plus the hard cases a real tenant has (``sandbox.zephyr.generator.hard_cases``): an execution
in the archived status "Old Skip" that no status map knows, a lone surrogate in a case's name, a NUL in a
step result's actual result. qTest (the sandbox's ``refuse`` switch) refuses one object of each kind: a
module, a test case, a test cycle, a test run, a manual test log and an attachment.
"""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
from psycopg.rows import dict_row

from tests.graph_helpers import materialize_partition
from tests.integration.test_publish import PUBLISH_ASSETS, failures, qtest_project_id
from tests.proof_helpers import ledger_of
from tests.qtest_snapshot import objects
from zephyr_qtest.cli import REPO_ROOT
from zephyr_qtest.defs.ingest.assets import raw_assets
from zephyr_qtest.defs.transform.dbt_models import zephyr_dbt_models
from zephyr_qtest.lib.dbt import DBT_PROJECT_DIR
from zephyr_qtest.lib.details_block import details_of
from zephyr_qtest.lib.people import read_user_map, resolve_people
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.proof.ledger import Ledger, LedgerLine, Reason
from zephyr_qtest.lib.proof.step_results import NOT_RUN
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.sandbox.jira.serve import start_jira_in_thread
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.generator.hard_cases import (
    UNKNOWN_EXECUTION_STATUS,
    add_unknown_execution_status,
    put_text,
)
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

pytestmark = pytest.mark.e2e

SEED = 11
CLI = Path(sys.executable).with_name("zephyr-qtest")
SURROGATE_NAME = "Pay with \ud800"  # half an emoji: a truncation cut the pair
NUL_RESULT = "stopped at \x00 byte"
REFUSED_FILE = "scan (refused by qTest).pdf"


@dataclass
class Tenant:
    """The fixture document, the project migrated, and the objects each hard case put in it."""

    doc: dict[str, Any]
    project: str
    old_skip: str  # the execution in "Old Skip"
    surrogate_case: str
    nul_result: str  # "<execution key>#<position>"
    refuse: dict[str, list[str]]  # the qTest sandbox's refuse switch
    refused: dict[str, str]  # what each refusal hits -> the ledger key of the Zephyr object it is
    # Taken from the document, not from the ledger: the objects that cannot arrive (refused, or needing a
    # refused one), and the attachments qTest must hold (those of cases and run executions that arrive).
    missing_cases: set[str]
    missing_executions: set[str]
    attachments_expected: int


def _case_key_of(execution: dict[str, Any]) -> str:
    return str(execution["testCase"]["self"]).split("/testcases/")[1].split("/")[0]


def build_tenant() -> Tenant:
    doc = copy.deepcopy(generate(SEED, "tiny"))
    project = doc["projects"][0]
    pid, key = project["id"], project["key"]
    old_skip = add_unknown_execution_status(doc, key)
    cases = sorted((c for c in doc["testcases"] if c["project"]["id"] == pid), key=lambda c: c["id"])
    executions = sorted(
        (e for e in doc["testexecutions"] if e["project"]["id"] == pid), key=lambda e: e["id"]
    )
    cycles = {c["id"]: c for c in doc["testcycles"] if c["project"]["id"] == pid}
    owners = set(doc["attachments"])
    called = {
        step["testCase"]["testCaseKey"]
        for steps in doc["teststeps"].values()
        for step in steps
        if isinstance(step.get("testCase"), dict)
    }

    def attached(execution: dict[str, Any]) -> bool:
        return any(
            owner.startswith((f"testexecutions/{execution['id']}", f"testexecutions/{execution['key']}/"))
            for owner in owners
        )

    # A module: the deepest test-case folder with the fewest cases.
    folders = [f for f in doc["folders"] if f["project"]["id"] == pid and f["folderType"] == "TEST_CASE"]
    parents = {f["parentId"] for f in folders}
    leaves = [f for f in folders if f["id"] not in parents]
    per_folder = Counter((c.get("folder") or {}).get("id") for c in cases)
    names = Counter(f["name"] for f in folders)
    module = min((f for f in leaves if names[f["name"]] == 1), key=lambda f: (per_folder[f["id"]], f["id"]))
    in_module = {c["key"] for c in cases if (c.get("folder") or {}).get("id") == module["id"]}
    # A test case nothing else needs: never called, without attachments, run the fewest times.
    per_case = Counter(_case_key_of(e) for e in executions)
    case = min(
        (
            c
            for c in cases
            if c["key"] not in called | in_module
            and not any(owner.startswith(f"testcases/{c['key']}") for owner in owners)
        ),
        key=lambda c: (per_case[c["key"]], c["id"]),
    )
    # A test cycle: the one with the fewest executions (at least one), none with attachments.
    per_cycle = Counter((e.get("testCycle") or {}).get("id") for e in executions)
    cycle = min(
        (c for c in cycles.values() if per_cycle[c["id"]] and f"testcycles/{c['key']}" not in owners),
        key=lambda c: (per_cycle[c["id"]], c["id"]),
    )

    def free(execution: dict[str, Any]) -> bool:
        """Not yet used by another hard case, not in the refused cycle or module, without attachments."""
        return (
            execution["key"] != old_skip
            and (execution.get("testCycle") or {}).get("id") not in (None, cycle["id"])
            and _case_key_of(execution) not in in_module | {case["key"]}
            and not attached(execution)
        )

    # A test run: (cycle, case) of one execution that is the only one of its run.
    per_run = Counter(((e.get("testCycle") or {}).get("id"), _case_key_of(e)) for e in executions)
    # (A manual one: an automated log goes through qTest's bulk endpoint, which puts it on a run of its own
    # choosing when its run is not there.)
    run_execution = next(
        e
        for e in executions
        if free(e) and not e.get("automated") and per_run[(e["testCycle"]["id"], _case_key_of(e))] == 1
    )
    run_key = f"{cycles[run_execution['testCycle']['id']]['key']}|{_case_key_of(run_execution)}"
    # A manual test log, executed, in another run.
    log = next(
        e
        for e in executions
        if free(e)
        and e is not run_execution
        and not e.get("automated")
        and e.get("actualEndDate")
        and (e["testCycle"]["id"], _case_key_of(e))
        != (run_execution["testCycle"]["id"], _case_key_of(run_execution))
    )
    # An attachment of a case that arrives: renamed to a name of its own, refused by that name.
    attachment_owner = next(
        owner
        for owner in sorted(owners)
        if owner.startswith("testcases/")
        and owner.split("/")[1] in {c["key"] for c in cases} - in_module - {case["key"]}
    )
    refused_attachment = doc["attachments"][attachment_owner][0]
    refused_attachment["name"] = REFUSED_FILE

    # The characters PostgreSQL cannot store.
    surrogate_case = next(c for c in cases if c["key"] not in (case["key"],) and c["key"] not in in_module)
    put_text(surrogate_case, "name", SURROGATE_NAME)
    nul_execution = next(
        e
        for e in executions
        if free(e)
        and e not in (run_execution, log)
        and str(e["id"]) in doc["testexecution_steps"]
        and e.get("actualEndDate")
    )
    steps = doc["testexecution_steps"][str(nul_execution["id"])]
    put_text(steps[0], "inline.actualResult", NUL_RESULT)

    missing_cases = {case["key"]} | in_module
    run_of = {e["key"]: ((e.get("testCycle") or {}).get("id"), _case_key_of(e)) for e in executions}
    missing_executions = {old_skip, log["key"]} | {
        e["key"]
        for e in executions
        if _case_key_of(e) in missing_cases
        or run_of[e["key"]] == run_of[run_execution["key"]]
        or (e.get("testCycle") or {}).get("id") == cycle["id"]
    }
    arrived_logs = {
        e["key"] for e in executions if e.get("actualEndDate") and e["key"] not in missing_executions
    }
    ids = {str(e["id"]): e["key"] for e in executions}
    plans = [plan for plan in doc["testplans"] if plan["key"].startswith(f"{project['key']}-")]
    attachments_expected = 0
    for owner, files in doc["attachments"].items():
        kind, ref = owner.split("/")[:2]
        if (
            (kind == "testcases" and ref in {c["key"] for c in cases} - missing_cases)
            or (kind == "testexecutions" and ids.get(ref, ref) in arrived_logs)
            # A plan's files go to its release (plans_as release, the default).
            or (kind == "testplans" and ref in {plan["key"] for plan in plans})
        ):
            attachments_expected += sum(1 for item in files if item is not refused_attachment)

    return Tenant(
        doc=doc,
        project=key,
        old_skip=old_skip,
        surrogate_case=surrogate_case["key"],
        nul_result=f"{nul_execution['key']}#1",
        refuse={
            "modules": [module["name"]],
            "test-cases": [case["key"]],
            "test-cycles": [cycle["key"]],
            "test-runs": [run_key],
            "test-logs": [log["key"]],
            "attachments": [REFUSED_FILE],
        },
        refused={
            "folder": f"folder:{module['id']}",
            "test case": case["key"],
            "test cycle": cycle["key"],
            "test execution (run)": run_execution["key"],
            "test execution": log["key"],
            "attachment": f"{attachment_owner}/attachments/{refused_attachment['id']}",
        },
        missing_cases=missing_cases,
        missing_executions=missing_executions,
        attachments_expected=attachments_expected,
    )


@dataclass
class Migrated:
    tenant: Tenant
    database_url: str
    result: dg.ExecuteInProcessResult
    ledger: Ledger
    zephyr: ZephyrSandboxHandle
    qtest: QTestSandboxHandle
    user_map: Path
    # Account id -> who the Jira sandbox says it is.
    people: dict[str, Any]
    # The first run, report only (ZEPHYR_QTEST_CREATE_FIELDS=0): its ledger, and qTest's objects after it
    # (the run above is the second, which creates the fields and values).
    report_only_ledger: Ledger
    report_only_dump: dict[str, Any]

    def lines(self, **match: Any) -> list[LedgerLine]:
        return [line for line in self.ledger.lines if all(getattr(line, k) == v for k, v in match.items())]

    def plain_unrun_results(self) -> int:
        """Step results, as extracted, of executions with no end date, "Not Executed" without a text."""
        with connect(self.database_url) as conn:
            row = conn.execute(
                "select count(*) from zephyr_raw.test_execution_steps as result "
                "join zephyr_raw.test_executions as execution on execution.project_key = result.project_key "
                "and execution.id::text = result.parent_key "
                "join zephyr_raw.statuses as status on status.project_key = result.project_key "
                "and status.id = (result.payload #>> '{inline,status,id}')::bigint "
                "where result.project_key = %s and execution.payload ->> 'actualEndDate' is null "
                "and status.payload ->> 'name' = 'Not Executed' "
                "and coalesce(result.payload #>> '{inline,actualResult}', '') = ''",
                (self.tenant.project,),
            ).fetchone()
        return int(row[0]) if row else 0

    def raw(self, entity: str) -> list[dict[str, Any]]:
        with connect(self.database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(
                f"select id, key, parent_key, position from zephyr_raw.{entity} where project_key = %s",
                (self.tenant.project,),
            )
            return cursor.fetchall()

    def qtest_project_id(self) -> int:
        return qtest_project_id(self.database_url, self.tenant.project)


@pytest.fixture(scope="module")
def migrated(new_embedded_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    """The tenant migrated as `make demo` does it: extracted, its people resolved through the Jira sandbox
    into a user map of its own (``resolve_people``, what the demo and `zephyr-qtest users` run), then
    transformed and published on that map."""
    tenant = build_tenant()
    database_url = new_embedded_database("zq_losses")
    # dbt reads the user map inside its project only (ZEPHYR_QTEST_USER_MAP_DIR, git-ignored there).
    user_map_dir = DBT_PROJECT_DIR / ".user_maps" / f"losses-{uuid.uuid4().hex[:10]}"
    user_map = user_map_dir / "user_map.csv"
    with (
        start_in_thread(fixture=tenant.doc) as zephyr,
        start_qtest_in_thread(tmp_path_factory.mktemp("qtest_losses"), seed=1, refuse=tenant.refuse) as qtest,
        start_jira_in_thread(document=tenant.doc) as jira,
    ):
        extracted = materialize_partition(
            raw_assets, tenant.project, database_url=database_url, zephyr=zephyr, qtest=qtest
        )
        assert extracted.success, failures(extracted)
        resolve_people(
            database_url,
            user_map=user_map,
            projects=[tenant.project],
            jira=(jira.base_url, jira.email, jira.token),
            qtest_client=lambda: QtestClient(qtest.base_url, qtest.token),
        )
        with pytest.MonkeyPatch.context() as patch:
            # dbt reads the seed directory from its environment (dbt_project.yml's seed-paths).
            patch.setenv("ZEPHYR_QTEST_USER_MAP_DIR", str(user_map_dir.relative_to(DBT_PROJECT_DIR)))
            # First report only: nothing is created, every value that needs a field or value is a line.
            materialize_partition(
                [zephyr_dbt_models, *PUBLISH_ASSETS],
                tenant.project,
                database_url=database_url,
                zephyr=zephyr,
                qtest=qtest,
                qtest_options={"create_fields": False},
            )
            report_only_ledger = ledger_of(database_url, qtest, tenant.project)
            report_only_dump = qtest.dump(qtest_project_id(database_url, tenant.project))
            result = materialize_partition(
                [zephyr_dbt_models, *PUBLISH_ASSETS],
                tenant.project,
                database_url=database_url,
                zephyr=zephyr,
                qtest=qtest,
            )

        ledger = ledger_of(database_url, qtest, tenant.project)
        try:
            yield Migrated(
                tenant,
                database_url,
                result,
                ledger,
                zephyr,
                qtest,
                user_map,
                dict(jira.people),
                report_only_ledger,
                report_only_dump,
            )
        finally:
            shutil.rmtree(user_map_dir, ignore_errors=True)


# (object type, field, reason, what the remedy names): the losses generated data already holds.
LOSS_KINDS = [
    ("test case", "owner", Reason.NO_MAPPING, "people/user_map.csv"),
    ("test execution", "executedById", Reason.NO_MAPPING, "people/user_map.csv"),
    ("test execution", "assignedToId", Reason.NO_MAPPING, "people/user_map.csv"),
    ("execution step", "(object)", Reason.NOT_CARRIED, "ZEPHYR_QTEST_ACCEPTANCE"),
    # Carried now, and checked where they land: a cycle's planned dates, status and owner, and its plans
    # (its Zephyr details, its release: test_plans_as.py); web and issue links (requirements, 'Web Links');
    # createdOn, the priority no seed maps, environments and call parameters (fields and values the run
    # creates, or the step's Zephyr details: test_report_only_names_each_field_...).
]


def test_report_only_names_each_field_and_a_rerun_fills_only_what_was_missing(migrated: Migrated) -> None:
    """The first run, report only (ZEPHYR_QTEST_CREATE_FIELDS=0), created no field and named, per value, the
    field or allowed value to add; the second (creation on) created them and filled in exactly the values
    that were missing: every object it did not need to fill is as it was, and no value that was there
    changed."""
    before = migrated.report_only_ledger
    missing = [line for line in before.lines if line.reason is Reason.FIELD_MISSING]
    assert {line.field for line in missing} >= {"customFields.Build Number", "labels", "createdOn"}
    assert all("ZEPHYR_QTEST_CREATE_FIELDS=1" in line.remedy for line in missing)
    assert any(
        line.field == "environment"
        and line.reason is Reason.VALUE_NOT_ALLOWED
        and "allowed values of qTest field 'Environment'" in line.remedy
        and "ZEPHYR_QTEST_CREATE_FIELDS=1" in line.remedy
        for line in before.lines
    )
    after = {(line.object_type, line.object_key, line.field) for line in migrated.ledger.lines}
    assert not [line for line in migrated.ledger.lines if line.reason is Reason.FIELD_MISSING]
    assert not [line for line in migrated.ledger.lines if line.reason is Reason.VALUE_NOT_ALLOWED]
    # Nothing arrived in the second run that had not been a line of the first.
    assert after <= {(line.object_type, line.object_key, line.field) for line in before.lines}

    first = objects(migrated.report_only_dump)
    second = objects(migrated.qtest.dump(migrated.qtest_project_id()))
    # The second run created no object but copies of steps' files: an updated case's new version has new
    # steps, and the files go on them too.
    assert {object_type for object_type, _ in set(second) - set(first)} <= {"attachments"}
    # qTest fills a field it was sent no value for with its default (a priority it did not allow became
    # Medium): such a value is the one that may change, to what could not be sent before.
    defaults = {
        (field["id"], field["default_value"])
        for fields in migrated.report_only_dump["fields"].values()
        for field in fields
        if field.get("default_value")
    }
    filled = untouched = 0
    for key, old in first.items():
        new = second[key]
        if key[0] == "attachments":
            assert new == old, key  # the old version keeps its step's file
            continue
        old_values = {p["field_id"]: p.get("field_value") for p in old.get("properties") or []}
        new_values = {p["field_id"]: p.get("field_value") for p in new.get("properties") or []}
        # A value that was there is there still, unchanged: only empty ones (or qTest's defaults) were
        # filled in.
        kept = {
            field: value
            for field, value in old_values.items()
            if value not in (None, "") and (field, value) not in defaults
        }
        assert {field: new_values.get(field) for field in kept} == kept, key
        if any(
            value not in (None, "", old_values.get(field)) and field not in kept
            for field, value in new_values.items()
        ):
            filled += 1
            continue
        # Nothing to fill in: not written at all (its values the same, the fields created since empty).
        untouched += 1
        assert {f: v for f, v in new_values.items() if v not in (None, "")} == {
            f: v for f, v in old_values.items() if v not in (None, "")
        }, key
        # (A run's date moves when a log on it is written: its latest log is part of it.)
        if key[0] != "test_runs":
            assert new.get("last_modified_date") == old.get("last_modified_date"), key
    assert filled > 0 and untouched > 0, (filled, untouched)


def test_the_run_goes_on_past_every_refusal(migrated: Migrated) -> None:
    """Every stage materialized, the reconciliation included: the refusals failed checks, not the run."""
    assert migrated.result.success, failures(migrated.result)
    stages = {
        event.materialization.asset_key.path[-1]
        for event in migrated.result.get_asset_materialization_events()
        if event.materialization.asset_key.path[0] == "qtest"
    }
    assert {"test_logs", "attachments", "reconciliation"} <= stages, stages


@pytest.mark.parametrize(("object_type", "field", "reason", "remedy"), LOSS_KINDS)
def test_each_kind_of_loss_is_a_line_with_its_reason_and_remedy(
    migrated: Migrated, object_type: str, field: str, reason: Reason, remedy: str
) -> None:
    # An execution not run yet has no log to hold any of its values: those are lines of their own reason.
    lines = [
        line
        for line in migrated.lines(object_type=object_type, field=field)
        if not line.detail.startswith("not run yet") or field == "(object)"
    ]
    assert lines, (object_type, field)
    assert {line.reason for line in lines} == {reason}, {(line.reason, line.detail) for line in lines}
    assert all(remedy in line.remedy for line in lines), lines[0]


def test_what_generated_data_cannot_carry_is_named_with_its_value(migrated: Migrated) -> None:
    # The priority no seed maps was added to qTest's Priority: it arrived as itself (the report-only run
    # had named it, as a value to add).
    assert migrated.lines(field="priority") == []
    assert {line.value for line in migrated.report_only_ledger.lines if line.field == "priority"} == {
        "Critical ⚠"
    }
    # The only step results qTest cannot hold: those of executions not run yet that say more than their
    # run shows (a plain "Not Executed" is what a run without a log shows of every step, so it arrived).
    results = migrated.lines(object_type="execution step", field="(object)")
    assert {line.detail for line in results} <= {NOT_RUN}, {line.detail for line in results}
    assert "Not Executed" not in {line.value for line in results}
    assert migrated.plain_unrun_results() > 0, "no unrun execution has a plain Not Executed result"
    # Call parameters are in the calling step's "Zephyr details".
    assert migrated.lines(field="testCase.parameters") == []
    # What is carried arrived equal: no value differs in qTest.
    assert migrated.lines(reason=Reason.DIFFERS) == []


def test_results_of_called_steps_and_of_every_data_row_are_step_logs(migrated: Migrated) -> None:
    """Read back from qTest: the logs of executions of cases with call-to-test steps have step logs on the
    called steps (with the called case and the calling step), and a data-driven execution's log has a step
    log for each result of every row, and its note names each row."""
    with connect(migrated.database_url) as conn:
        data_driven = dict(
            conn.execute(
                """select executions.key, count(*) from zephyr_raw.test_execution_steps as results
                join zephyr_raw.test_executions as executions on results.parent_key = executions.id::text
                where results.project_key = %s and executions.payload->>'actualEndDate' is not null
                group by executions.key
                having count(distinct results.payload->'inline'->>'testDataRowNumber') > 1""",
                (migrated.tenant.project,),
            ).fetchall()
        )
        logs = {
            key: (int(log_id), int(run_id))
            for key, log_id, run_id in conn.execute(
                """select source_key, qtest_id, detail->>'test_run_id' from migration.id_map
                where project_key = %s and object_type = 'test_log' and state = 'done'
                and detail ? 'test_run_id'""",
                (migrated.tenant.project,),
            ).fetchall()
        }

    async def read(log_ids: list[tuple[int, int]]) -> list[dict[str, Any]]:
        async with QtestClient(migrated.qtest.base_url, migrated.qtest.token) as client:
            pid = migrated.qtest_project_id()
            return [await client.get_test_log(pid, run_id, log_id) for log_id, run_id in log_ids]

    every_log = asyncio.run(read(list(logs.values())))
    called = [
        step
        for log in every_log
        for step in log.get("test_step_logs") or []
        if step.get("called_test_case_id")
    ]
    assert called and all(step.get("parent_test_step_id") for step in called)
    assert data_driven, "the tenant has data-driven executions"
    by_key = dict(zip(logs, every_log, strict=True))
    # (the executions that cannot arrive are those the tenant's refusals reach)
    assert data_driven.keys() - migrated.tenant.missing_executions <= by_key.keys()
    for key in data_driven.keys() & by_key.keys():
        log, results = by_key[key], data_driven[key]
        rows = [label for label in details_of(log.get("note")) if label.startswith("Data row ")]
        assert len(rows) > 1, (key, log.get("note"))
        noted = [label for label in details_of(log.get("note")) if label.startswith("Step result ")]
        assert len(log["test_step_logs"]) + len(noted) == results, key


def test_the_unknown_status_is_a_no_mapping_line_naming_status_map(migrated: Migrated) -> None:
    (line,) = [line for line in migrated.ledger.lines if line.object_key == migrated.tenant.old_skip]
    assert (line.object_type, line.field, line.value) == (
        "test execution",
        "testExecutionStatus",
        UNKNOWN_EXECUTION_STATUS,
    )
    assert line.reason is Reason.NO_MAPPING
    assert f"TEST_EXECUTION,{UNKNOWN_EXECUTION_STATUS},<qTest status>" in line.remedy
    assert "seeds/status_map.csv" in line.remedy


@pytest.mark.parametrize(
    ("refusal", "object_type"),
    [
        ("folder", "folder"),
        ("test case", "test case"),
        ("test cycle", "test cycle"),
        ("test execution (run)", "test execution"),
        ("test execution", "test execution"),
        ("attachment", "attachment"),
    ],
)
def test_each_refused_object_is_one_refused_line_with_qtests_answer(
    migrated: Migrated, refusal: str, object_type: str
) -> None:
    key = migrated.tenant.refused[refusal]
    (line,) = [line for line in migrated.ledger.lines if line.object_key == key]
    assert (line.object_type, line.field, line.reason) == (object_type, "(object)", Reason.REFUSED), line
    # qTest's answer, as it gave it: the status and its {"message": ...} body.
    assert '-> 400: {"message": ' in line.detail and "was refused by this site" in line.detail, line
    assert "change what qTest refused" in line.remedy


def test_replaced_characters_are_lines_under_their_objects(migrated: Migrated) -> None:
    replaced = {
        (line.object_type, line.object_key, line.field): line.value
        for line in migrated.lines(reason=Reason.REPLACED)
    }
    assert replaced == {
        ("test case", migrated.tenant.surrogate_case, "name"): "Pay with \ufffd",
        ("execution step", migrated.tenant.nul_result, "inline.actualResult"): "stopped at \ufffd byte",
    }


def test_every_other_object_arrived(migrated: Migrated) -> None:
    """Zephyr against qTest per type differs only by the objects that are lines of their own (refused, not
    sent for want of a refused one, not carried) and their children; the objects that cannot arrive are
    exactly those the tenant's refusals reach, taken from the fixture."""
    tenant, ledger = migrated.tenant, migrated.ledger
    missing = {
        (line.object_type, line.object_key)
        for line in ledger.lines
        # An execution in a status qTest does not know has its line on the status: its log was not made.
        if line.field == "(object)" or (line.field == "testExecutionStatus" and "not made" in line.detail)
    }
    assert {key for kind, key in missing if kind == "test case"} == tenant.missing_cases
    assert {key for kind, key in missing if kind == "test execution"} == tenant.missing_executions
    assert {key for kind, key in missing if kind == "test cycle"} == {tenant.refused["test cycle"]}
    for object_type in ("folder", "test case", "test cycle", "test plan", "test execution", "attachment"):
        count = ledger.count(object_type)
        lines = sum(1 for kind, _ in missing if kind == object_type)
        # A folder of plans has no qTest object: it arrived as the path in its plans' Zephyr details.
        arrived_as_a_path = count.accounted if object_type == "folder" else 0
        assert count.in_zephyr - count.in_qtest - arrived_as_a_path == lines, (object_type, count)
    # Steps and step results are missing only with their case or execution, or as lines of their own.
    steps = ledger.count("test step")
    of_missing_cases = sum(
        1 for step in migrated.raw("test_steps") if step["parent_key"] in tenant.missing_cases
    )
    assert steps.in_zephyr - steps.in_qtest == steps.accounted == of_missing_cases
    results = ledger.count("execution step")
    result_lines = len(migrated.lines(object_type="execution step", field="(object)"))
    executions = {row["id"]: row["key"] for row in migrated.raw("test_executions")}
    of_missing = sum(
        1
        for result in migrated.raw("test_execution_steps")
        if executions.get(int(result["parent_key"])) in tenant.missing_executions
    )
    assert results.in_zephyr - results.in_qtest == result_lines + of_missing
    assert results.accounted == of_missing
    # Every attachment whose owner arrived is in qTest, byte for byte (the proof compares size and SHA-256).
    assert ledger.count("attachment").in_qtest == tenant.attachments_expected
    # qTest holds no other file but the copies a step's files got when the re-run after report only
    # updated its case (a new version, with new steps; the old version keeps its own).
    copies = {
        key for key in objects(migrated.qtest.dump(migrated.qtest_project_id())) if key[0] == "attachments"
    }
    copies -= {key for key in objects(migrated.report_only_dump) if key[0] == "attachments"}
    held = migrated.qtest.counts(migrated.qtest_project_id())["attachments"]
    # And the inline images uploaded beside the files (the data: pictures of cases and steps).
    with connect(migrated.database_url) as conn:
        (pictures,) = conn.execute(
            "select count(*) from migration.id_map where object_type = 'inline_image' and state = 'done'"
        ).fetchone()
    assert held - len(copies) - pictures == tenant.attachments_expected


def test_people_resolved_through_jira_arrive_and_the_others_stay_named(migrated: Migrated) -> None:
    """Owners, executors and assignees whom the Jira sandbox names and the qTest sandbox has (same e-mail)
    arrive: the proof, reading qTest's user fields back, has no line for them. The others (a hidden e-mail,
    no qTest user) stay `no mapping` lines, and a log whose executor is one of them names them, readable,
    in its note as qTest holds it."""
    mapped = read_user_map(migrated.user_map)
    people = migrated.people
    assert mapped and all(people[a].email_visible and people[a].in_qtest for a in mapped)
    with connect(migrated.database_url) as conn:
        raw = conn.execute(
            "select key, payload from zephyr_raw.test_executions where project_key = %s "
            "and payload ->> 'actualEndDate' is not null",
            (migrated.tenant.project,),
        ).fetchall()
    executors = {payload["executedById"] for _, payload in raw if payload.get("executedById")}
    assert executors & set(mapped) and executors - set(mapped), "the tenant needs both kinds of executor"
    person_lines = [
        line
        for line in migrated.ledger.lines
        if line.field in ("owner", "executedById", "assignedToId")
        and line.object_type in ("test case", "test execution")
    ]
    # Executions whose log qTest has not (refused, not made for an unknown status, not run yet, automated:
    # the bulk endpoint takes no properties) keep their people as lines of those reasons, mapped or not.
    missing = {line.object_key for line in migrated.ledger.lines if line.field == "(object)"}
    missing |= {line.object_key for line in migrated.ledger.lines if line.field == "testExecutionStatus"}
    unmapped_lines = [line for line in person_lines if line.reason == Reason.NO_MAPPING]
    assert unmapped_lines and all(line.value not in mapped for line in unmapped_lines), [
        (line.object_key, line.field, line.value) for line in unmapped_lines if line.value in mapped
    ]
    executed = [
        line
        for line in person_lines
        if line.field == "executedById" and line.value in mapped and line.object_key not in missing
    ]
    assert not executed, [(line.object_key, line.reason, line.detail) for line in executed]
    # An unmapped executor Jira names, in the note of the log qTest holds.
    key, payload = next(
        (key, payload)
        for key, payload in sorted(raw, key=lambda row: row[0])
        if payload.get("executedById") not in mapped
        and payload.get("executedById") in people
        and key not in migrated.tenant.missing_executions
        and key not in missing
    )
    with connect(migrated.database_url) as conn:
        log_id, run_id = conn.execute(
            "select logs.qtest_id, runs.qtest_id from migration.id_map as logs "
            "join qtest_mapping.qtest_test_logs as marts on marts.source_key = logs.source_key "
            "join migration.id_map as runs on runs.object_type = 'test_run' "
            "and runs.source_key = marts.parent_source_key and runs.project_key = logs.project_key "
            "where logs.object_type = 'test_log' and logs.source_key = %s and logs.state = 'done'",
            (key,),
        ).fetchone()
    log = httpx.get(
        f"{migrated.qtest.base_url}/api/v3/projects/{migrated.qtest_project_id()}/test-runs/{run_id}"
        f"/test-logs/{log_id}",
        headers=migrated.qtest.headers,
    ).json()
    executor = payload["executedById"]
    assert f"Executed by {people[executor].display_name} (Zephyr user {executor})" in log["note"], log["note"]


def migrate(migrated: Migrated, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`zephyr-qtest migrate --project <project> --only qtest` on the migrated tenant's database and sandboxes:
    a re-run, which sends only what is left (qTest refuses the same objects again) and proves the project."""
    (home / "dagster_home").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster_home" / "dagster.yaml")
    environment = {
        **os.environ,
        "DATABASE_URL": migrated.database_url,
        "ZEPHYR_BASE_URL": migrated.zephyr.base_url,
        "ZEPHYR_API_TOKEN": migrated.zephyr.token,
        "QTEST_BASE_URL": migrated.qtest.base_url,
        "QTEST_API_TOKEN": migrated.qtest.token,
        "DAGSTER_HOME": str(home / "dagster_home"),
        "ZEPHYR_QTEST_HOME": str(home / "home"),
        "ZEPHYR_QTEST_REPORTS": str(home / "reports"),
        **env,
    }
    return subprocess.run(
        [str(CLI), "migrate", "--project", migrated.tenant.project, "--only", "qtest"],
        env=environment,
        capture_output=True,
        text=True,
    )


def verdict_line(output: str, project: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith(f"  {project}: ")]
    return line.split(": ", 1)[1]


def test_migrate_exits_non_zero_and_the_verdict_is_incomplete(
    migrated: Migrated, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`migrate` (a re-run: qTest refuses the same objects again) exits non-zero, its verdict "incomplete"
    naming how many values did not arrive, and the report path beside it."""
    project = migrated.tenant.project
    first = migrate(migrated, tmp_path_factory.mktemp("losses_migrate"))
    output = first.stdout + first.stderr
    assert first.returncode != 0, output[-3000:]
    verdict = verdict_line(output, project)
    assert verdict.startswith("incomplete: ") and "did not arrive" in verdict, output[-3000:]
    (report,) = [line.split("report: ", 1)[1] for line in output.splitlines() if "    report: " in line]
    assert Path(report).is_file() and "refused by qTest" in Path(report).read_text()


def test_an_acceptance_file_covering_every_line_makes_it_complete_and_exit_0(
    migrated: Migrated, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A reviewed acceptance file, one rule per (object type, field, reason) of the ledger with what was
    decided: "complete" and exit 0, though qTest still refuses the same objects."""
    project = migrated.tenant.project
    rules = tmp_path_factory.mktemp("losses_acceptance") / "acceptance.toml"
    kinds = sorted({(line.object_type, line.field, line.reason.value) for line in migrated.ledger.lines})
    rules.write_text(
        "".join(
            f'[[accept]]\nobject_type = "{object_type}"\nfield = "{field}"\nreason = "{reason}"\n'
            f'note = "rehearsal {SEED}: reviewed, left behind"\n\n'
            for object_type, field, reason in kinds
        ),
        encoding="utf-8",
    )
    accepted = migrate(
        migrated, tmp_path_factory.mktemp("losses_migrate_accepted"), ZEPHYR_QTEST_ACCEPTANCE=str(rules)
    )
    output = accepted.stdout + accepted.stderr
    assert verdict_line(output, project).startswith(
        f"complete: {len(migrated.ledger.lines)} values accepted by"
    )
    assert accepted.returncode == 0, output[-3000:]
