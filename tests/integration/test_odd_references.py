"""Odd references in Zephyr data are records, not crashes: a call-to-test cycle, executions of a deleted test
case, a folder whose parent chain is a loop and a folder whose parent is gone. One generated project with all
of them, run through the whole graph (Zephyr sandbox -> raw -> dbt -> qTest sandbox -> reconciliation).

Proves: each odd reference is named (in the mapping marts and in the report) with what was done about it, and
every other object of the project arrives in qTest, equal field for field (the reconciliation's checks pass).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.graph_helpers import materialize_partition
from tests.integration.test_publish import loader_failures
from tests.proof_helpers import ledger_of
from zephyr_qtest.defs.ingest.assets import raw_assets
from zephyr_qtest.defs.publish.qtest import publish_assets, reconciliation
from zephyr_qtest.defs.transform.dbt_models import zephyr_dbt_models
from zephyr_qtest.lib.markdown import cell
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.proof.ledger import Reason
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.serve import start_in_thread

pytestmark = pytest.mark.e2e

SEED = 7
PROJECT = "SHOP"
ALL_ASSETS = [*raw_assets, zephyr_dbt_models, *publish_assets, reconciliation]
API = "https://api.zephyrscale.smartbear.com/v2"

# Calls added to the generated cases: a two-case cycle, a three-case cycle, a case calling itself, and a
# case calling into a cycle from outside it.
CALLS = [
    ("SHOP-T22", "SHOP-T23"),
    ("SHOP-T23", "SHOP-T22"),
    ("SHOP-T5", "SHOP-T6"),
    ("SHOP-T6", "SHOP-T9"),
    ("SHOP-T9", "SHOP-T5"),
    ("SHOP-T18", "SHOP-T18"),
    ("SHOP-T1", "SHOP-T22"),
]
# The call of each cycle that is not linked in qTest: into the case with the lowest key of its cycle, from
# the case with the highest.
CUT = {
    ("SHOP-T23", "SHOP-T22"): "SHOP-T23 -> SHOP-T22 -> SHOP-T23",
    ("SHOP-T9", "SHOP-T5"): "SHOP-T9 -> SHOP-T5 -> SHOP-T6 -> SHOP-T9",
    ("SHOP-T18", "SHOP-T18"): "SHOP-T18 -> SHOP-T18",
}
# A case with executions (one of them with an attachment), deleted from Zephyr after it ran.
DELETED_CASE = "SHOP-T14"
# Test-case folders: 20005 and 20006 each other's parent; 20002's parent is gone; 20100 is new, under 20005.
CASE_FOLDER_LOOP = (20005, 20006)
ORPHAN_FOLDER, MISSING_PARENT = 20002, 29999
ROOT_FOLDER = 20001
UNDER_LOOP = 20100
# Test-cycle folders 20008 and 20010 each other's parent (20009, under 20008, holds a cycle).
CYCLE_FOLDER_LOOP = (20008, 20010)
# A second root test-case folder, after the generated one (20001): siblings whose order qTest must keep.
SECOND_ROOT = 20101


def odd_document() -> dict[str, Any]:
    """The generated tiny tenant with the odd references above in its first project."""
    document = copy.deepcopy(generate(SEED, "tiny"))
    assert document["projects"][0]["key"] == PROJECT
    steps = document["teststeps"]
    for number, (caller, callee) in enumerate(CALLS, start=1):
        assert caller in steps, f"{caller} is a step-by-step case of seed {SEED}"
        steps[caller].append(
            {
                "id": 790000 + number,
                "testCase": {"self": f"{API}/testcases/{callee}", "testCaseKey": callee, "parameters": []},
            }
        )
    document["testcases"] = [case for case in document["testcases"] if case["key"] != DELETED_CASE]
    for section in ("teststeps", "testscripts", "testcase_versions"):
        document[section].pop(DELETED_CASE, None)
    document["attachments"] = {
        owner: files
        for owner, files in document["attachments"].items()
        if not owner.startswith(f"testcases/{DELETED_CASE}")
    }
    folders = {folder["id"]: folder for folder in document["folders"]}
    for loop in (CASE_FOLDER_LOOP, CYCLE_FOLDER_LOOP):
        folders[loop[0]]["parentId"], folders[loop[1]]["parentId"] = loop[1], loop[0]
    folders[ORPHAN_FOLDER]["parentId"] = MISSING_PARENT
    document["folders"].append(
        {
            **copy.deepcopy(folders[CASE_FOLDER_LOOP[0]]),
            "id": UNDER_LOOP,
            "parentId": CASE_FOLDER_LOOP[0],
            "name": "Under the loop",
            "index": 0,
        }
    )
    document["folders"].append(
        {
            **copy.deepcopy(folders[ROOT_FOLDER]),
            "id": SECOND_ROOT,
            "parentId": None,
            "name": "Second root",
            "index": folders[ROOT_FOLDER]["index"] + 1,
        }
    )
    moved = next(case for case in document["testcases"] if case["key"] == "SHOP-T10")
    moved["folder"] = {"id": UNDER_LOOP, "self": f"{API}/folders/{UNDER_LOOP}"}
    return document


@pytest.fixture(scope="module")
def odd_run(
    new_embedded_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The odd project through the whole graph once, into a clean qTest sandbox."""
    database_url = new_embedded_database("zq_odd")
    with (
        start_in_thread(fixture=odd_document()) as zephyr,
        start_qtest_in_thread(tmp_path_factory.mktemp("qtest_odd"), seed=1) as qtest,
    ):
        result = materialize_partition(
            ALL_ASSETS, PROJECT, database_url=database_url, zephyr=zephyr, qtest=qtest
        )
        yield {"database_url": database_url, "qtest": qtest, "zephyr": zephyr, "result": result}


def rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with connect(database_url) as conn:
        return conn.execute(query, params).fetchall()


def qtest_ids(database_url: str, object_type: str) -> dict[str, int]:
    return {
        key: int(qtest_id)
        for key, qtest_id in rows(
            database_url,
            "select source_key, qtest_id from migration.id_map where project_key = %s and object_type = %s "
            "and state = 'done'",
            PROJECT,
            object_type,
        )
    }


def qtest_get(odd_run: dict[str, Any], path: str, **params: Any) -> Any:
    qtest = odd_run["qtest"]
    response = httpx.get(f"{qtest.api_url}/{path}", params=params, headers=qtest.headers, timeout=30)
    response.raise_for_status()
    return response.json()


def report_text(odd_run: dict[str, Any]) -> str:
    for event in odd_run["result"].get_asset_materialization_events():
        if event.materialization.asset_key.path == ["qtest", "reconciliation"]:
            return Path(str(event.materialization.metadata["report"].value)).with_suffix(".md").read_text()
    raise AssertionError("no reconciliation report")


def test_every_other_object_arrives_once_and_equal(odd_run: dict[str, Any]) -> None:
    """No stage fails, and the reconciliation finds every object the marts send in qTest, equal: the odd
    references stop nothing (runs, logs and attachments of the other cases included)."""
    result, database_url = odd_run["result"], odd_run["database_url"]
    assert loader_failures(result) == [] and result.success, loader_failures(result)
    checks = {
        e.check_name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == "qtest"
    }
    # Every object the marts send was published (the publishing checks); the verdict is for the proof.
    assert checks and all(passed for name, passed in checks.items() if name.endswith("_all_published")), (
        checks
    )
    published = {
        event.materialization.asset_key.path[1]: event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key.path[0] == "qtest"
    }
    expected = {
        "test_case": ("qtest_test_cases", ""),
        "test_run": ("qtest_test_runs", " and skip_reason is null"),
        "test_log": ("qtest_test_logs", " and skip_reason is null"),
        "attachment": ("qtest_attachments", " and skip_reason is null and qtest_object_type is not null"),
    }
    for object_type, (table, where) in expected.items():
        ((count,),) = rows(
            database_url, f"select count(*) from qtest_mapping.{table} where project_key = %s{where}", PROJECT
        )
        assert count > 0 and len(qtest_ids(database_url, object_type)) == count, object_type
    for stage in ("test_runs", "test_logs", "attachments"):
        assert published[stage]["failed"].value == 0, stage
    assert published["reconciliation"]["loader_check_equal"].value is True
    assert checks["complete"] is published["reconciliation"]["complete"].value


def test_a_call_cycle_is_cut_at_one_call_and_named(odd_run: dict[str, Any]) -> None:
    database_url = odd_run["database_url"]
    steps = rows(
        database_url,
        "select parent_source_key, called_test_case_source_key, linked_test_case_source_key, description, "
        "mapping_issue from qtest_mapping.qtest_test_steps where project_key = %s and step_type = 'call_to_test'",
        PROJECT,
    )
    calls = {
        (caller, callee): (linked, description, issue) for caller, callee, linked, description, issue in steps
    }
    for call in CALLS:
        linked, description, issue = calls[call]
        if call in CUT:
            assert linked is None
            assert description == f"Call to test {call[1]} (not linked: call cycle {CUT[call]})"
            assert (
                issue
                == f"the call {call[0]} -> {call[1]} is not linked in qTest: it closes the call cycle {CUT[call]}"
            )
        else:
            assert (linked, issue) == (call[1], None), call
    # Every case arrives, once; in qTest the linked calls name their callee, the cut ones are plain steps.
    case_ids = qtest_ids(database_url, "test_case")
    project_id = qtest_ids(database_url, "project")[PROJECT]
    for caller in {caller for caller, _ in CALLS}:
        case = qtest_get(odd_run, f"projects/{project_id}/test-cases/{case_ids[caller]}", expand="teststep")
        called = {step.get("called_test_case_id") for step in case["test_steps"]}
        for call_caller, callee in CALLS:
            if call_caller == caller:
                assert (case_ids[callee] in called) == ((caller, callee) not in CUT), (caller, callee)
    issues = dict(rows(database_url, "select source_key, mapping_issue from qtest_mapping.qtest_test_cases "
                                     "where project_key = %s and mapping_issue is not null", PROJECT))  # fmt: skip
    assert {caller for caller, _ in CUT} <= set(issues)
    report = report_text(odd_run)
    for (caller, callee), cycle in CUT.items():
        issue = f"the call {caller} -> {callee} is not linked in qTest: it closes the call cycle {cycle}"
        assert f"| call_cycle_cut | {cell(issue)} | 1 |" in report


def test_executions_of_a_deleted_case_are_named_and_skipped(odd_run: dict[str, Any]) -> None:
    database_url = odd_run["database_url"]
    executions = [
        key
        for (key,) in rows(
            database_url,
            "select key from canonical.test_execution where project_key = %s and test_case_key = %s order by execution_id",
            PROJECT,
            DELETED_CASE,
        )
    ]
    assert len(executions) >= 2
    runs = rows(database_url, "select source_key, skip_reason from qtest_mapping.qtest_test_runs "
                              "where project_key = %s and test_case_source_key = %s", PROJECT, DELETED_CASE)  # fmt: skip
    assert runs and all(f"its test case {DELETED_CASE} is not in the project" in reason for _, reason in runs)
    logs = dict(rows(database_url, "select source_key, skip_reason from qtest_mapping.qtest_test_logs "
                                   "where project_key = %s and test_case_source_key = %s", PROJECT, DELETED_CASE))  # fmt: skip
    assert sorted(logs) == sorted(executions)
    assert all(
        reason.startswith(f"its test case {DELETED_CASE} is not in the project") for reason in logs.values()
    )
    attachments = rows(database_url, "select skip_reason from qtest_mapping.qtest_attachments where project_key = %s "
                                     "and parent_source_key = any(%s)", PROJECT, executions)  # fmt: skip
    assert attachments and all("test case is not in the project" in reason for (reason,) in attachments)
    # Nothing of them reached qTest, and nothing of them failed: they are not sent at all.
    assert not set(qtest_ids(database_url, "test_run")) & {key for key, _ in runs}
    assert not set(qtest_ids(database_url, "test_log")) & set(executions)
    ((failed,),) = rows(
        database_url,
        "select count(*) from migration.id_map where project_key = %s and state <> 'done'",
        PROJECT,
    )
    assert failed == 0
    report = report_text(odd_run)
    line = f"| test_run_without_test_case | {DELETED_CASE} (executions {', '.join(executions)}) | {len(executions)} |"
    assert line in report


def test_folder_loops_and_orphans_are_placed_at_the_root_and_named(odd_run: dict[str, Any]) -> None:
    database_url = odd_run["database_url"]
    modules = {
        folder_id: (parent, issue)
        for folder_id, parent, issue in rows(
            database_url,
            "select folder_id, parent_source_key, mapping_issue from qtest_mapping.qtest_modules "
            "where project_key = %s and folder_id is not null",
            PROJECT,
        )
    }
    first, second = CASE_FOLDER_LOOP
    assert modules[first] == (
        None,
        f"its parent chain is a loop (folders {first} -> {second} -> {first}); placed at the root",
    )
    assert modules[second] == (
        None,
        f"its parent chain is a loop (folders {second} -> {first} -> {second}); placed at the root",
    )
    assert modules[ORPHAN_FOLDER] == (
        None, f"parent folder {MISSING_PARENT} is not a test-case folder of the project; placed at the root"
    )  # fmt: skip
    # What hangs under them stays under them.
    assert modules[UNDER_LOOP] == (f"folder:{first}", None)
    assert all(
        issue is None
        for folder, (_, issue) in modules.items()
        if folder not in (first, second, ORPHAN_FOLDER)
    )
    cycle_folders = dict(rows(database_url, "select zephyr_id, mapping_issue from qtest_mapping.qtest_test_cycles "
                                            "where project_key = %s and source_type = 'cycle_folder' "
                                            "and mapping_issue is not null", PROJECT))  # fmt: skip
    assert set(cycle_folders) == set(CYCLE_FOLDER_LOOP)
    # In qTest: the loop's and the orphan's modules at the root, the folder under the loop beneath it.
    module_ids = qtest_ids(database_url, "module")
    project_id = qtest_ids(database_url, "project")[PROJECT]
    for folder in (first, second, ORPHAN_FOLDER):
        module = qtest_get(odd_run, f"projects/{project_id}/modules/{module_ids[f'folder:{folder}']}")
        assert not module.get("parent_id"), folder
    under = qtest_get(odd_run, f"projects/{project_id}/modules/{module_ids[f'folder:{UNDER_LOOP}']}")
    assert under.get("parent_id") == module_ids[f"folder:{first}"]
    report = report_text(odd_run)
    for folder in (first, second, ORPHAN_FOLDER):
        assert f"| folder_placed_at_root | test-case folder {folder} " in report, folder
        assert cell(modules[folder][1]) in report, folder
    for folder in CYCLE_FOLDER_LOOP:
        assert f"| folder_placed_at_root | test-cycle folder {folder} " in report, folder
        assert cell(cycle_folders[folder]) in report, folder


def test_a_rerun_publishes_nothing_again_and_fails_nothing(odd_run: dict[str, Any]) -> None:
    """The odd references are settled in the marts, not retried: a re-run of the qTest stages skips
    everything and fails nothing."""
    result = materialize_partition(
        [*publish_assets, reconciliation],
        PROJECT,
        database_url=odd_run["database_url"],
        zephyr=odd_run["zephyr"],
        qtest=odd_run["qtest"],
    )
    assert loader_failures(result) == [] and result.success, loader_failures(result)
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        if event.materialization.asset_key.path[1] != "reconciliation":
            counts = [metadata[name].value for name in ("created", "updated", "adopted", "failed")]
            assert counts == [0, 0, 0, 0], event.materialization.asset_key


def test_folders_keep_their_place_among_their_siblings(odd_run: dict[str, Any]) -> None:
    """Siblings are created in Zephyr's order: the proof (raw payloads against qTest read back) finds every
    module and cycle folder at its Zephyr rank among its siblings, loops and orphans included (no `index`
    line). A user who then drags the second root module to the front in qTest's tree makes both root
    test-case folders `differs in qTest` lines that say how to put them back."""
    database_url, qtest = odd_run["database_url"], odd_run["qtest"]
    assert [line for line in ledger_of(database_url, qtest, PROJECT).lines if line.field == "index"] == []

    # The root test-case folders in Zephyr's order, from the raw payloads.
    roots = [
        f"folder:{folder_id}"
        for (folder_id,) in rows(
            database_url,
            "select id from zephyr_raw.folders where project_key = %s and payload->>'folderType' = 'TEST_CASE' "
            "and payload->>'parentId' is null order by (payload->>'index')::int, id",
            PROJECT,
        )
    ]
    assert roots == [f"folder:{ROOT_FOLDER}", f"folder:{SECOND_ROOT}"], roots
    project_id = qtest_ids(database_url, "project")[PROJECT]
    qtest.drag(project_id, "module", qtest_ids(database_url, "module")[roots[-1]], 1)

    lines = [line for line in ledger_of(database_url, qtest, PROJECT).lines if line.field == "index"]
    # The last became the first: every root folder moved by one place (and it by all of them).
    assert sorted(line.object_key for line in lines) == sorted(roots)
    assert {line.reason for line in lines} == {Reason.DIFFERS}
    (moved,) = [line for line in lines if line.object_key == roots[-1]]
    assert moved.detail == (
        f"of its {len(roots)} sibling folders that qTest holds, Zephyr puts it {len(roots)} and qTest 1"
    )
    assert "drag the folder to its Zephyr position in qTest" in moved.remedy
