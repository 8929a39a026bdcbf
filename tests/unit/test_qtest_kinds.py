"""The rules of each qTest kind, without a server or a database: the request bodies built from mart rows,
what the reconciliation expects qTest to hold, and the registry that drives the assets and the loops."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from zephyr_qtest.lib.details_block import details_of
from zephyr_qtest.lib.qtest.comparison import TypeResult, pair
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds import (
    KINDS,
    id_types_of_stage,
    kinds_of_stage,
    reconciled_types,
    stage_marts,
    stages,
    upstream_stages,
)
from zephyr_qtest.lib.qtest.kinds import automated_test_log as automated

# Imported as modules: pytest would collect functions named test_* imported into this file.
from zephyr_qtest.lib.qtest.kinds import test_case as cases
from zephyr_qtest.lib.qtest.kinds import test_run as runs
from zephyr_qtest.lib.qtest.kinds.attachment import (
    ATTACHMENT_OWNERS,
    attachment_owner,
    content_identity,
    expected_attachment,
    held_attachment,
    not_uploaded,
)
from zephyr_qtest.lib.qtest.kinds.automated_test_log import (
    AutomatedLogs,
    AutomatedTestLogs,
    automation_item,
    automation_waves,
    pairs_by_position,
)
from zephyr_qtest.lib.qtest.kinds.base import Marts, PublishContext, encoded_properties
from zephyr_qtest.lib.qtest.kinds.manual_test_log import (
    ManualTestLogs,
    expected_test_log,
    held_test_log,
    manual_log_body,
    run_of_log,
    sent_step_results,
    step_log_children,
)
from zephyr_qtest.lib.qtest.kinds.module import expected_module, held_module, module_body, module_parent_id
from zephyr_qtest.lib.qtest.kinds.release import (
    carry_over_legacy_entries,
    expected_release,
    expected_release_with_dates,
    held_release,
    held_release_with_dates,
    is_release,
    release_body,
    release_properties,
)
from zephyr_qtest.lib.qtest.kinds.test_cycle import cycle_body, cycle_parent
from zephyr_qtest.lib.qtest.kinds.vocabulary import BY_API_SEGMENT, BY_NAME, OBJECT_TYPES

CASE_FIELDS = [
    {"id": 9101, "label": "Priority", "data_type": 3, "multiple": False, "constrained": True,
     "allowed_values": [{"value": 7701, "label": "Low"}, {"value": 7702, "label": "Medium"}]},
    {"id": 9102, "label": "Zephyr Key", "data_type": 1, "multiple": False},
]  # fmt: skip
STATUSES = {"passed": 601, "failed": 602, "blocked": 603}


# ---------------------------------------------------------------------------------------------- registry


def test_the_registry_lists_the_stages_in_load_order_with_todays_dependencies() -> None:
    assert stages() == (
        "modules", "test_cases", "test_cycles", "test_runs", "test_logs", "requirements", "attachments"
    )  # fmt: skip
    assert [kind.name for kind in kinds_of_stage("test_cycles")] == ["release", "test_cycle"]
    assert stage_marts("test_cases") == ("qtest_test_case_versions", "qtest_test_cases", "qtest_test_steps")
    assert stage_marts("test_logs") == ("qtest_test_logs", "qtest_test_step_logs")
    assert upstream_stages("test_runs") == ("test_cases", "test_cycles")
    assert upstream_stages("attachments") == ("test_cases", "test_logs")
    assert upstream_stages("test_cycles") == ()
    assert id_types_of_stage("test_cycles") == ("release", "test_cycle")
    assert "release" in id_types_of_stage("attachments")
    assert stage_marts("requirements") == ("qtest_requirements", "qtest_requirement_links")
    assert upstream_stages("requirements") == ("test_cases", "test_runs")
    with pytest.raises(ValueError, match="unknown stage 'defects'"):
        kinds_of_stage("defects")


def test_every_kind_comes_after_the_kinds_it_refers_to() -> None:
    seen: set[str] = set()
    for kind in KINDS:
        assert {upstream.name for upstream in kind.upstream} <= seen, kind.name
        assert kind.object_type in kind.id_types, kind.name
        assert kind.description
        seen.add(kind.name)


def test_the_reconciliation_rows_are_todays() -> None:
    assert reconciled_types() == (
        "module", "test_case_version", "test_case", "test_step", "test_cycle", "test_run", "test_log",
        "requirement", "requirement_link", "attachment"
    )  # fmt: skip


def test_each_object_type_is_spelled_once() -> None:
    assert BY_NAME["test_case"].api_segment == "test-cases"
    assert BY_NAME["test_case"].mart == "qtest_test_cases"
    assert BY_NAME["test_case"].stage == "test_cases"
    assert BY_NAME["test_case"].display_name == "test case"
    assert len(BY_NAME) == len(BY_API_SEGMENT) == len(OBJECT_TYPES)
    assert ATTACHMENT_OWNERS == {
        "test-cases": "test_case",
        "test-steps": "test_step",
        "test-logs": "test_log",
        "test-step-logs": "test_step_log",
        "releases": "release",
    }


# ----------------------------------------------------------------------------------------------- modules


def test_a_module_body_and_its_parent() -> None:
    root = {"source_key": "folder:1", "name": "Checkout", "description": None}
    child = {"source_key": "folder:2", "name": "Cart", "description": "cart", "parent_source_key": "folder:1"}
    assert module_body(root) == {"name": "Checkout", "description": ""}
    assert module_body(child) == {"name": "Cart", "description": "cart"}
    assert module_parent_id(root, {}) is None
    assert module_parent_id(child, {"folder:1": 11}) == 11
    with pytest.raises(KeyError):
        module_parent_id(child, {})  # the parent failed: this module cannot be placed


def test_a_module_is_expected_under_its_parent() -> None:
    child = {"source_key": "folder:2", "name": "Cart", "parent_source_key": "folder:1"}
    expected = expected_module(child, {"folder:1": 11})
    assert expected == {"name": "Cart", "parent": 11}
    assert held_module({"name": "Cart", "parent_id": 11}, expected) == expected
    assert held_module({"name": "Cart", "parent_id": 0}, expected_module({"name": "Cart"}, {})) == {
        "name": "Cart",
        "parent": None,
    }


# -------------------------------------------------------------------------------------------- test cases


def test_a_test_case_body_carries_its_steps_a_callee_and_its_module() -> None:
    row = {"source_key": "SHOP-T2", "name": "Pay", "description": None, "precondition": "logged in",
           "parent_source_key": "folder:1"}  # fmt: skip
    steps = [
        {"description": "open the cart", "expected": "the cart shows", "called_test_case_source_key": None},
        {"description": None, "expected": None, "called_test_case_source_key": "SHOP-T1",
         "linked_test_case_source_key": "SHOP-T1"},
        {"description": "call outside", "expected": "", "called_test_case_source_key": "OTHER-T9",
         "linked_test_case_source_key": None},
        # A call left unlinked to break a call cycle: a plain step, whose description says so.
        {"description": "Call to test SHOP-T2 (not linked: call cycle SHOP-T2 -> SHOP-T2)", "expected": "",
         "called_test_case_source_key": "SHOP-T2", "linked_test_case_source_key": None},
    ]  # fmt: skip
    ids = {"module": {"folder:1": 11}, "test_case": {"SHOP-T1": 21}}
    body = cases.test_case_body(row, steps, ids, [{"field_id": 9102, "field_value": "SHOP-T2"}])
    assert body == {
        "name": "Pay",
        "description": "",
        "precondition": "logged in",
        "properties": [{"field_id": 9102, "field_value": "SHOP-T2"}],
        "test_steps": [
            {"description": "open the cart", "expected": "the cart shows", "order": 1},
            {"description": "", "expected": "", "order": 2, "called_test_case_id": 21},
            {"description": "call outside", "expected": "", "order": 3},
            {
                "description": "Call to test SHOP-T2 (not linked: call cycle SHOP-T2 -> SHOP-T2)",
                "expected": "",
                "order": 4,
            },
        ],
        "parent_id": 11,
    }
    assert "parent_id" not in cases.test_case_body({**row, "parent_source_key": None}, [], ids, [])
    with pytest.raises(KeyError):
        cases.steps_body(steps, {})  # the callee is not in qTest


def test_test_case_properties_are_encoded_by_label_and_expected_as_encoded() -> None:
    catalog = FieldCatalog(CASE_FIELDS)
    properties = json.dumps([
        {"field_label": "Priority", "value": "Medium"},
        {"field_label": "Zephyr Key", "value": "SHOP-T2"},
        {"field_label": "Component", "value": "Cart"},  # no such field: not sent, not expected
    ])  # fmt: skip
    assert encoded_properties(catalog, properties) == [
        {"field_id": 9101, "field_value": "7702"},
        {"field_id": 9102, "field_value": "SHOP-T2"},
    ]
    row = {"source_key": "SHOP-T2", "name": "Pay", "description": "d", "precondition": None,
           "parent_source_key": "folder:1", "properties": properties}  # fmt: skip
    expected = cases.expected_test_case(row, {"module": {"folder:1": 11}, "test_case": {}}, catalog)
    assert expected == {
        "name": "Pay",
        "description": "d",
        "precondition": "",
        "module": 11,
        "properties": {9101: "7702", 9102: "SHOP-T2"},
    }
    case = {"name": "Pay", "description": "d", "precondition": None, "parent_id": 11,
            "properties": [{"field_id": 9101, "field_value": "7702"}, {"field_id": 9102, "field_value": "SHOP-T2"},
                           {"field_id": 9999, "field_value": "not ours"}]}  # fmt: skip
    assert cases.held_test_case(case, expected) == expected


def test_steps_are_paired_by_order_and_expected_with_their_callee() -> None:
    sources = [
        {"source_key": "SHOP-T2#1", "payload_hash": "h1"},
        {"source_key": "SHOP-T2#2", "payload_hash": "h2"},
    ]
    case = {"test_steps": [{"id": 32, "order": 2}, {"id": 31, "order": 1}]}
    assert cases.step_children(sources, case) == [
        ("test_step", "SHOP-T2#1", 31, "h1"),
        ("test_step", "SHOP-T2#2", 32, "h2"),
    ]
    step = {"description": "call", "expected": None, "called_test_case_source_key": "SHOP-T1",
            "linked_test_case_source_key": "SHOP-T1"}  # fmt: skip
    expected = cases.expected_test_step(step, 2, {"SHOP-T1": 21})
    assert expected == {"description": "call", "expected": "", "order": 2, "called test case": 21}
    assert (
        cases.held_test_step({"description": "call", "expected": "", "order": 2, "called_test_case_id": 21})
        == expected
    )
    unlinked = {**step, "linked_test_case_source_key": None}
    assert cases.expected_test_step(unlinked, 2, {"SHOP-T1": 21})["called test case"] is None


# -------------------------------------------------------------------------------- releases and cycles


def test_a_release_body_and_expectation() -> None:
    row = {"source_key": "SHOP-P1", "name": "Plan 1", "description": None, "qtest_object_type": "release"}
    assert is_release(row) and not is_release({**row, "qtest_object_type": "test_cycle"})
    # qTest requires properties on a release, even empty (REAL_SHAPES qTest 6).
    assert release_body(row) == {"name": "Plan 1", "description": "", "properties": []}
    key_field = {"id": 7, "label": "Zephyr Key", "data_type": 1}
    assert release_properties(FieldCatalog([key_field]), {**row, "zephyr_key": "SHOP-P1"}) == [
        {"field_id": 7, "field_value": "SHOP-P1"}
    ]
    assert release_properties(FieldCatalog([]), {**row, "zephyr_key": "SHOP-P1"}) == []
    expected = expected_release(row)
    assert expected == {"name": "Plan 1", "description": ""}
    assert held_release({"name": "Plan 1", "description": None}, expected) == expected


def test_a_release_spans_its_cycles_dates_and_compares_them_as_instants() -> None:
    row = {"name": "Plan 1", "description": "d", "planned_start_date": datetime(2024, 2, 1, 8),
           "planned_end_date": datetime(2024, 3, 15, 17)}  # fmt: skip
    assert release_body(row) == {
        "name": "Plan 1",
        "description": "d",
        "properties": [],
        "start_date": "2024-02-01T08:00:00.000Z",
        "end_date": "2024-03-15T17:00:00.000Z",
    }
    expected = expected_release_with_dates(row)
    # qTest may answer the same instant in another offset.
    found = {"name": "Plan 1", "description": "d", "start_date": "2024-02-01T09:00:00+01:00",
             "end_date": "2024-03-15T17:00:00Z"}  # fmt: skip
    assert held_release_with_dates(found, expected) == expected
    moved = held_release_with_dates({**found, "end_date": "2024-03-16T17:00:00Z"}, expected)
    assert moved["end_date"] == "2024-03-16T17:00:00Z" != expected["end_date"]
    # A plan without planned cycles: a release without dates.
    assert "start_date" not in release_body({"name": "Plan 2", "planned_start_date": None})


def test_a_cycle_finds_its_parent_in_the_right_map() -> None:
    ids = {"test_cycle": {"SHOP-R1": 41}, "release": {"SHOP-P1": 51}}
    assert cycle_body({"name": "R1", "description": "x"}) == {"name": "R1", "description": "x"}
    assert cycle_parent({"parent_source_key": None}, ids) == (0, "root")
    assert cycle_parent({"parent_source_key": "SHOP-R1"}, ids) == (41, "test-cycle")
    assert cycle_parent({"parent_source_key": "SHOP-P1"}, ids) == (51, "release")
    with pytest.raises(KeyError):
        cycle_parent({"parent_source_key": "SHOP-R9"}, ids)  # the parent failed


# --------------------------------------------------------------------------------------------- test runs


def test_a_test_run_body_and_expectation() -> None:
    row = {"source_key": "SHOP-R1|SHOP-T2", "name": "Pay", "parent_source_key": "SHOP-R1",
           "test_case_source_key": "SHOP-T2", "properties": "[]"}  # fmt: skip
    assert runs.test_run_body(row, {"SHOP-T2": 21}, []) == {
        "name": "Pay",
        "test_case": {"id": 21},
        "properties": [],
    }
    assert runs.run_parent_id(row, {"SHOP-R1": 41}) == 41
    with pytest.raises(KeyError):
        runs.test_run_body(row, {}, [])
    expected = runs.expected_test_run(
        row, {"test_cycle": {"SHOP-R1": 41}, "test_case": {"SHOP-T2": 21}}, FieldCatalog([])
    )
    assert expected == {"cycle": 41, "test case": 21, "runs of this (cycle, case)": 1, "properties": {}}
    held = runs.held_test_run({"parentId": 41, "test_case": {"id": 21}, "_runs_of_pair": 2}, expected)
    assert held == {**expected, "runs of this (cycle, case)": 2}  # a duplicate shows


def test_a_run_of_a_test_case_not_in_the_project_is_not_created() -> None:
    """The mart's skip_reason (the case was deleted in Zephyr after it ran) keeps the run out of the
    rows to create and to reconcile, instead of a KeyError on the missing case at every run."""

    class Source:
        def rows(self, table: str, project_key: str, order_by: Any) -> list[dict[str, Any]]:
            return [
                {"source_key": "SHOP-R1|SHOP-T2", "skip_reason": None},
                {
                    "source_key": "SHOP-R1|SHOP-T9",
                    "skip_reason": "its test case SHOP-T9 is not in the project",
                },
            ]

        def attachment_contents(self) -> Any:
            raise AssertionError("not read")

    assert [row["source_key"] for row in runs.test_run_rows(Marts(Source(), "SHOP"))] == ["SHOP-R1|SHOP-T2"]


# --------------------------------------------------------------------------------------------- test logs

LOG = {"source_key": "SHOP-E1", "parent_source_key": "SHOP-R1|SHOP-T2", "status": "Passed",
       "exe_start_date": datetime(2026, 1, 2, 3, 4, 5), "exe_end_date": datetime(2026, 1, 2, 3, 5, 0),
       "note": None, "properties": "[]", "log_order": 1, "automated": True, "payload_hash": "hE1"}  # fmt: skip
STEP_RESULTS = [
    {"source_key": "SHOP-E1#1", "test_step_source_key": "SHOP-T2#1", "status": "Passed", "actual_result": "ok",
     "step_order": 1, "payload_hash": "s1"},
    {"source_key": "SHOP-E1#2", "test_step_source_key": "SHOP-T2#2", "status": "failed", "actual_result": None,
     "step_order": 2, "payload_hash": "s2"},
    # a step the case's qTest version lacks, and one the mart skips: neither is sent
    {"source_key": "SHOP-E1#3", "test_step_source_key": "SHOP-T2#9", "status": "Passed", "step_order": 3},
    {"source_key": "SHOP-E1#4", "test_step_source_key": "SHOP-T2#2", "status": "Passed", "step_order": 4,
     "skip_reason": "no step"},
]  # fmt: skip
STEP_IDS = {"SHOP-T2#1": 31, "SHOP-T2#2": 32}
LOG_IDS = {"test_step": STEP_IDS, "test_case": {"SHOP-T2": 22}}


def test_a_manual_log_body_carries_its_step_logs() -> None:
    sent = sent_step_results(STEP_RESULTS, LOG_IDS)
    assert [step["source_key"] for step in sent] == ["SHOP-E1#1", "SHOP-E1#2"]
    assert manual_log_body(LOG, STEP_RESULTS, LOG_IDS, STATUSES, []) == {
        "status": {"id": 601},
        "exe_start_date": "2026-01-02T03:04:05.000Z",
        "exe_end_date": "2026-01-02T03:05:00.000Z",
        # the result whose step qTest lacks is kept, readable, in the note's details block
        "note": "<p><b>Zephyr details</b><br>Step result 3: Passed; not a step log: its step is not in qTest"
        " (see that test case's failure)</p>",
        "properties": [],
        "test_step_logs": [
            {"test_step_id": 31, "status": {"id": 601}, "actual_result": "ok", "order": 1},
            {"test_step_id": 32, "status": {"id": 602}, "actual_result": "", "order": 2},
        ],
    }


def test_an_unknown_status_names_the_object_it_is_on() -> None:
    with pytest.raises(ValueError, match=r"execution SHOP-E1: no qTest execution status named 'Flaky'"):
        manual_log_body({**LOG, "status": "Flaky"}, [], LOG_IDS, STATUSES, [])
    steps = [{**STEP_RESULTS[0], "status": "Skipped"}]
    with pytest.raises(ValueError, match=r"step result SHOP-E1#1: no qTest execution status named 'Skipped'"):
        manual_log_body(LOG, steps, LOG_IDS, STATUSES, [])


def test_results_of_called_steps_are_step_logs_on_the_called_steps() -> None:
    """Zephyr flattens a called case's steps into the results; the mart names the called step, the case
    and the calling step, and the body names them as qTest's test_step_logs take called steps."""
    ids = {"test_step": {**STEP_IDS, "SHOP-T5#1": 51, "SHOP-T5#2": 52}, "test_case": {"SHOP-T5": 5}}
    results = [
        {"source_key": "SHOP-E1#1", "test_step_source_key": "SHOP-T2#1", "status": "Passed", "step_order": 1},
        {"source_key": "SHOP-E1#2", "test_step_source_key": "SHOP-T5#1", "called_test_case_source_key": "SHOP-T5",
         "parent_test_step_source_key": "SHOP-T2#2", "status": "Passed", "actual_result": "in", "step_order": 2},
        {"source_key": "SHOP-E1#3", "test_step_source_key": "SHOP-T5#2", "called_test_case_source_key": "SHOP-T5",
         "parent_test_step_source_key": "SHOP-T2#2", "status": "failed", "step_order": 3},
        {"source_key": "SHOP-E1#4", "placement": "note", "note_reason": "the case has 3 steps now",
         "zephyr_status": "Fail", "status": "failed", "actual_result": "<b>gone</b>", "description": "Old",
         "step_order": 4},
    ]  # fmt: skip
    body = manual_log_body(LOG, results, ids, STATUSES, [])
    assert body["test_step_logs"] == [
        {"test_step_id": 31, "status": {"id": 601}, "actual_result": "", "order": 1},
        {"test_step_id": 51, "status": {"id": 601}, "actual_result": "in", "order": 2,
         "called_test_case_id": 5, "parent_test_step_id": 32},
        {"test_step_id": 52, "status": {"id": 602}, "actual_result": "", "order": 3,
         "called_test_case_id": 5, "parent_test_step_id": 32},
    ]  # fmt: skip
    assert details_of(body["note"]) == {
        "Step result 4": ["Fail: <b>gone</b> (step: Old); not a step log: the case has 3 steps now"]
    }


def test_each_data_row_of_a_log_is_named_in_its_note() -> None:
    results = [
        {"source_key": f"SHOP-E1#{n}", "test_step_source_key": f"SHOP-T2#{1 + (n - 1) % 2}", "status": "Passed",
         "step_order": n, "data_row": 1 + (n - 1) // 2, "test_data": f"user=u{1 + (n - 1) // 2}"}
        for n in range(1, 5)
    ]  # fmt: skip
    body = manual_log_body({**LOG, "note": "Flaky <i>net</i>"}, results, LOG_IDS, STATUSES, [])
    assert [step["test_step_id"] for step in body["test_step_logs"]] == [31, 32, 31, 32]
    assert body["note"].startswith("Flaky <i>net</i><p><b>Zephyr details</b>")
    assert details_of(body["note"]) == {
        "Data row 1": ["step results 1-2; test data: user=u1"],
        "Data row 2": ["step results 3-4; test data: user=u2"],
    }


def test_a_logs_step_logs_are_recorded_by_order() -> None:
    sent = sent_step_results(STEP_RESULTS, LOG_IDS)
    answered = {"test_step_logs": [{"order": 2, "test_step_log_id": 72}, {"order": 1, "id": 71}]}
    assert step_log_children(sent, answered) == [
        ("test_step_log", "SHOP-E1#1", 71, "s1"),
        ("test_step_log", "SHOP-E1#2", 72, "s2"),
    ]


def test_a_log_is_expected_on_its_run_with_its_step_statuses() -> None:
    ids = {"test_run": {"SHOP-R1|SHOP-T2": 61}, **LOG_IDS}
    expected = expected_test_log(LOG, STEP_RESULTS, ids, STATUSES, FieldCatalog([]))
    assert expected["run"] == 61
    assert expected["status"] == 601
    assert expected["step log statuses"] == [601, 602]
    found = {"_run_id": 61, "status": {"id": 601}, "exe_start_date": "2026-01-02T04:04:05+01:00",
             "exe_end_date": "2026-01-02T03:05:00.000Z", "note": manual_log_body(LOG, STEP_RESULTS, LOG_IDS, STATUSES, [])["note"],
             "test_step_logs": [{"order": 2, "status": {"id": 602}}, {"order": 1, "status": {"id": 601}}]}  # fmt: skip
    assert held_test_log(found, expected) == expected


def test_a_step_results_pictures_point_at_the_logs_attachments_in_its_step_log_or_note_line() -> None:
    """The body with addresses: a step log's actual result and a noted result's line name the attachment;
    the loader's check reads the note with the pictures' addresses left out, so it still agrees."""
    cdn = "https://cloudfront.tm4j.smartbear.com/tenant/t/project/1/embedded-a.png"
    results = [
        {**STEP_RESULTS[0], "actual_result": f'ok <img src="{cdn}">'},
        {**STEP_RESULTS[1], "actual_result": f"<img src='{cdn}'>", "placement": "note", "note_reason": "x"},
    ]
    logs = ManualTestLogs.__new__(ManualTestLogs)
    logs.ctx = SimpleNamespace(  # type: ignore[assignment]
        test_run_fields=FieldCatalog([]), ids=LOG_IDS, execution_statuses=STATUSES, encode=lambda *a: []
    )
    logs.step_results_by_log = {"SHOP-E1": results}
    body = logs.body(LOG, {cdn: "https://q/att/7"})
    assert body["test_step_logs"][0]["actual_result"] == 'ok <img src="https://q/att/7">'
    [line] = details_of(body["note"])["Step result 2"]
    assert "https://q/att/7" in line and cdn not in line
    ids = {"test_run": {"SHOP-R1|SHOP-T2": 61}, **LOG_IDS}
    expected = expected_test_log(LOG, results, ids, STATUSES, FieldCatalog([]))
    assert held_test_log({"_run_id": 61, **body}, expected)["note"] == expected["note"]


def test_a_log_of_an_older_version_goes_on_it_where_qtest_holds_it() -> None:
    """An execution that ran against an older version of its case: its log names the qTest version that
    version became (and is expected there); without it in qTest, the log goes on the latest approved one."""
    older = {**LOG, "test_case_version_source_key": "SHOP-T2@1"}
    ids = {"test_run": {"SHOP-R1|SHOP-T2": 61}, "test_case_version": {"SHOP-T2@1": 77}, **LOG_IDS}
    body = manual_log_body(older, [], ids, STATUSES, [])
    assert body["test_case_version_id"] == 77
    assert "test_case_version_id" not in manual_log_body(older, [], LOG_IDS, STATUSES, [])
    assert "test_case_version_id" not in manual_log_body(LOG, [], ids, STATUSES, [])
    expected = expected_test_log(older, [], ids, STATUSES, FieldCatalog([]))
    assert expected["test case version"] == 77
    found = {"_run_id": 61, "test_case_version_id": 78, "status": {"id": 601}}
    assert held_test_log(found, expected)["test case version"] == 78  # a mismatch the reconciliation names
    assert (
        held_test_log(found, expected_test_log(LOG, [], ids, STATUSES, FieldCatalog([])))["test case version"]
        is None
    )


CASE_STEPS = [
    {"source_key": "SHOP-T2#1", "description": "open", "expected": "opens"},
    {"source_key": "SHOP-T2#2", "description": "pay", "expected": None},
    {"source_key": "SHOP-T2#3", "description": "close", "expected": "closes"},
]
AUTOMATION_RUN = {"source_key": "SHOP-R1|SHOP-T2", "name": "Pay", "test_case_source_key": "SHOP-T2",
                  "automation_test_cycle_source_key": "SHOP-R1", "automation_module_names": '["Shop", "Cart"]'}  # fmt: skip


def test_an_automated_log_item_is_built_from_its_run_and_the_cases_steps() -> None:
    sent = sent_step_results(STEP_RESULTS, LOG_IDS)
    manual = manual_log_body(LOG, sent, LOG_IDS, STATUSES, [{"field_id": 1, "field_value": "x"}])
    assert automation_item(LOG, AUTOMATION_RUN, CASE_STEPS, sent, manual) == {
        "name": "Pay",
        "automation_content": "SHOP-T2",
        "status": "PASSED",
        "exe_start_date": "2026-01-02T03:04:05.000Z",
        "exe_end_date": "2026-01-02T03:05:00.000Z",
        "module_names": ["Shop", "Cart"],
        "note": "",
        "properties": [{"field_id": 1, "field_value": "x"}],
        "test_step_logs": [
            {
                "description": "open",
                "expected_result": "opens",
                "actual_result": "ok",
                "status": "PASSED",
                "order": 0,
            },
            {
                "description": "pay",
                "expected_result": "",
                "actual_result": "",
                "status": "FAILED",
                "order": 1,
            },
        ],
    }


def test_a_bulk_made_log_is_rewritten_by_its_step_logs_ids_with_its_pictures_addresses() -> None:
    """The automation log's PUT (swagger modifyAutomationLog) names each step log by its id, in the order it
    was submitted, and sends what it may change: status, dates, note, properties, actual results and
    statuses (not a step's description or expected result, which it cannot modify)."""
    picture = "https://cloudfront.tm4j.smartbear.com/tenant/t/project/1/embedded-a-1-x.png"
    row = {**LOG, "note": f'Saw <img src="{picture}">'}
    steps = [{**STEP_RESULTS[0], "actual_result": f'ok <img src="{picture}">'}, *STEP_RESULTS[1:]]
    logs = bulk_logs(LogsOnRuns({}), steps)
    addresses = {picture: "https://q/att/5"}
    body = automated.automation_update(logs.item(row, addresses), [701, 702])
    assert body == {
        "status": "PASSED",
        "exe_start_date": "2026-01-02T03:04:05.000Z",
        "exe_end_date": "2026-01-02T03:05:00.000Z",
        "note": body["note"],
        "properties": body["properties"],
        "test_step_logs": [
            {"test_step_log_id": 701, "order": 0, "actual_result": 'ok <img src="https://q/att/5">', "status": "PASSED"},
            {"test_step_log_id": 702, "order": 1, "actual_result": "", "status": "FAILED"},
        ],
    }  # fmt: skip
    assert body["note"].startswith('Saw <img src="https://q/att/5">')
    assert picture in logs.item(row)["note"]  # without addresses: as the bulk endpoint first takes it


def test_only_results_of_the_cases_first_steps_in_order_go_in_bulk() -> None:
    keys = ["SHOP-T2#1", "SHOP-T2#2", "SHOP-T2#3"]
    first_two = [{"test_step_source_key": "SHOP-T2#1"}, {"test_step_source_key": "SHOP-T2#2"}]
    assert pairs_by_position(first_two, keys)
    assert pairs_by_position([], keys)
    assert pairs_by_position([*first_two, {"test_step_source_key": "SHOP-T2#3", "skip_reason": "x"}], keys)
    assert not pairs_by_position(list(reversed(first_two)), keys)
    assert not pairs_by_position([{"test_step_source_key": "SHOP-T2#2"}], keys)
    assert AutomatedLogs({}, {"SHOP-T2": CASE_STEPS}).step_keys_by_case == {"SHOP-T2": keys}


def test_consecutive_automated_logs_of_a_run_share_a_wave() -> None:
    def log(key: str, run: str, order: int) -> dict[str, Any]:
        return {"source_key": key, "parent_source_key": run, "log_order": order}

    rows = [log("a3", "A", 3), log("a1", "A", 1), log("a2", "A", 2), log("a4", "A", 4), log("b1", "B", 1)]
    bulk = {"a2", "a3", "b1"}
    waves = automation_waves(rows, lambda row: row["source_key"] in bulk)
    # a2 and a3 follow each other: one submission at a2's level; a4 (manual) waits for them.
    assert waves == {"a1": 1, "a2": 2, "a3": 2, "a4": 4, "b1": 1}


# ------------------------------------------------------------------------------------------ attachments


def test_an_attachment_goes_on_its_owner_or_its_step_logs_test_log() -> None:
    ids = {"test_case": {"SHOP-T2": 21}, "test_log": {"SHOP-E1": 81}, "test_step_log": {"SHOP-E1#1": 71},
           "release": {"SHOP-P1": 51}}  # fmt: skip
    assert attachment_owner(ids, {"qtest_object_type": "test-cases", "parent_source_key": "SHOP-T2"}) == (
        "test-cases",
        21,
    )
    assert attachment_owner(ids, {"qtest_object_type": "releases", "parent_source_key": "SHOP-P1"}) == (
        "releases",
        51,
    )
    step_log = {"qtest_object_type": "test-step-logs", "parent_source_key": "SHOP-E1#1"}
    assert attachment_owner(ids, step_log) == ("test-step-logs", 71)
    # a result of a step the case's version lacks has no step log: its files go on the test log
    assert attachment_owner(ids, {**step_log, "parent_source_key": "SHOP-E1#3"}) == ("test-logs", 81)
    with pytest.raises(KeyError, match="its owner SHOP-E9 is not in qTest"):
        attachment_owner(ids, {**step_log, "parent_source_key": "SHOP-E9#1"})
    with pytest.raises(KeyError, match="SHOP-T9"):
        attachment_owner(ids, {"qtest_object_type": "test-steps", "parent_source_key": "SHOP-T9#1"})


def test_same_named_files_differ_by_content_identity() -> None:
    """A lost upload is matched by size and sha256 too: two screenshots of one name are two files."""
    first, second = content_identity(b"first"), content_identity(b"second")
    assert first == (5, hashlib.sha256(b"first").hexdigest())
    assert first != second and content_identity(b"first") == first


def test_an_attachment_is_expected_byte_for_byte_and_skipped_ones_are_listed() -> None:
    row = {"name": "shot.png", "size_bytes": 3, "sha256": "abc"}
    expected = expected_attachment(row)
    assert expected == {"name": "shot.png", "size": 3, "sha256": "abc"}
    assert held_attachment({"name": "shot.png", "size": 3, "sha256": "abc"}, expected) == expected
    rows = [
        {"name": "a", "size_bytes": 1, "qtest_object_type": "test-cases"},
        {
            "name": "big",
            "size_bytes": 60_000_000,
            "qtest_object_type": "test-cases",
            "skip_reason": "over 50 MB",
        },
        {"name": "plan", "size_bytes": 2, "qtest_object_type": None},
    ]
    assert not_uploaded(rows, "no qTest target") == [
        {"name": "big", "size_bytes": 60_000_000, "skip_reason": "over 50 MB"},
        {"name": "plan", "size_bytes": 2, "skip_reason": "no qTest target"},
    ]


# ------------------------------------------------------------------------------------ the reconciliation


def test_kinds_counting_in_one_result_add_up() -> None:
    result = TypeResult("test_cycle")
    releases = pair(result, [{"source_key": "SHOP-P1"}], {"SHOP-P1": 51}, {51: {}, 52: {}})
    cycles = pair(result, [{"source_key": "SHOP-R1"}, {"source_key": "SHOP-R2"}], {"SHOP-R1": 41}, {41: {}})
    assert len(releases) == 1 and len(cycles) == 1
    assert (result.expected, result.found) == (3, 3)
    assert result.missing == ["SHOP-R2"]
    assert result.unaccounted == [52]


# ------------------------------------------------------------------- a lost bulk submission, looked up


class LogsOnRuns:
    """A qTest client that holds some logs, and counts the lookups (run listings) and searches."""

    def __init__(self, logs: dict[int, list[dict[str, Any]]]) -> None:
        self.logs = logs
        self.lookups = 0
        self.searches: list[tuple[str, str]] = []

    async def iter_test_logs(self, project_id: int, run_id: int) -> AsyncIterator[dict]:
        self.lookups += 1
        for log in self.logs.get(run_id, []):
            yield log

    async def search(self, project_id: int, object_type: str, query: str) -> list[dict]:
        self.searches.append((object_type, query))
        return [
            {
                "id": log["id"],
                "links": [
                    {"rel": "self", "href": f"/api/v3/projects/1/test-runs/{run}/test-logs/{log['id']}"}
                ],
            }
            for run, logs in self.logs.items()
            for log in logs
            if f"'{log.get('zephyr_key')}'" in query
        ]

    async def get_test_log(self, project_id: int, run_id: int, log_id: int) -> dict:
        return next(log for log in self.logs[run_id] if log["id"] == log_id)


def bulk_logs(client: Any, step_results: list[dict[str, Any]] = STEP_RESULTS) -> AutomatedTestLogs:
    ctx = PublishContext(client, 1, None, None)  # type: ignore[arg-type]
    ctx.execution_statuses = STATUSES
    ctx.ids["test_run"]["SHOP-R1|SHOP-T2"] = 61
    ctx.ids["test_case"]["SHOP-T2"] = 21
    ctx.ids["test_step"].update(STEP_IDS)
    manual = ManualTestLogs(ctx, {"SHOP-E1": step_results})
    return AutomatedTestLogs(
        manual, AutomatedLogs({"SHOP-R1|SHOP-T2": AUTOMATION_RUN}, {"SHOP-T2": CASE_STEPS})
    )


SUBMISSION = automated.Submission("ab" * 32, automated.utc_now())


def test_a_lost_submission_whose_logs_show_takes_them() -> None:
    shown = {"id": 91, "status": {"id": 601}, "exe_end_date": "2026-01-02T03:05:00.000Z"}
    client = LogsOnRuns({61: [shown]})
    logs = bulk_logs(client)
    second = {**LOG, "source_key": "SHOP-E2", "exe_end_date": datetime(2026, 1, 3)}
    found = asyncio.run(logs.after_lost_submission([LOG, second], SUBMISSION))
    assert list(found) == ["SHOP-E1"] and found["SHOP-E1"].qtest_id == 91
    assert client.lookups == 2  # the wait's first look found SHOP-E1; then the run listed once for both


def test_a_lost_submission_that_does_not_show_within_this_runs_wait_is_left_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(automated, "LOST_SUBMISSION_WAIT_S", 0.0)
    client = LogsOnRuns({})
    assert asyncio.run(bulk_logs(client).after_lost_submission([LOG], SUBMISSION)) == {}
    assert client.lookups == 1


class LogsComingLater(LogsOnRuns):
    """qTest whose queue makes the logs only after `after` listings of the runs' logs."""

    def __init__(self, logs: dict[int, list[dict[str, Any]]], after: int) -> None:
        super().__init__(logs)
        self.after = after

    async def iter_test_logs(self, project_id: int, run_id: int) -> AsyncIterator[dict]:
        self.lookups += 1
        if self.lookups > self.after:
            for log in self.logs.get(run_id, []):
                yield log


def pending_logs(count: int) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """`count` executions on one run, and the logs qTest's queue makes of them."""
    rows = [
        {**LOG, "source_key": f"SHOP-E{n}", "exe_end_date": datetime(2026, 1, 2, 3, n)} for n in range(count)
    ]
    made = [
        {"id": 90 + n, "status": {"id": 601}, "exe_end_date": f"2026-01-02T03:{n:02d}:00.000Z"}
        for n in range(count)
    ]
    return rows, {61: made}


def test_logs_of_a_submission_whose_answer_was_lost_are_awaited_once_for_all_of_them_then_adopted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A later run: within the queue window the logs are looked for again until they come, one wait for
    the whole submission (not one per log), and each is then found, never sent."""
    monkeypatch.setattr(automated, "LOOK_AGAIN_FIRST_S", 0.0)
    monkeypatch.setattr(automated, "LOOK_AGAIN_MAX_S", 0.0)
    rows, made = pending_logs(3)
    client = LogsComingLater(made, after=4)
    logs = bulk_logs(client)
    logs.automation.submissions.update({row["source_key"]: SUBMISSION for row in rows})

    async def look_up_all() -> list[Any]:
        return await asyncio.gather(*(logs.lookup(row) for row in rows))

    found = asyncio.run(look_up_all())
    assert [created.qtest_id for created in found] == [90, 91, 92]
    # One shared wait: 4 empty looks and the one that found them; then one look per log.
    assert client.lookups == 4 + 1 + 3


def test_after_the_queue_window_a_log_not_in_qtest_is_sent_again() -> None:
    sent_long_ago = automated.Submission("cd" * 32, automated.utc_now() - timedelta(hours=2))
    client = LogsOnRuns({})
    logs = bulk_logs(client)
    logs.automation.submissions["SHOP-E1"] = sent_long_ago
    assert asyncio.run(logs.lookup(LOG)) is None  # absent: the protocol sends it again
    assert client.lookups == 2  # one look in the wait (the window has passed), one for the log itself


def test_a_submission_is_kept_by_its_body_fingerprint_and_time() -> None:
    body = {"test_cycle": 5, "test_logs": [{"name": "Pay", "status": "PASSED"}]}
    reordered = {"test_logs": [{"status": "PASSED", "name": "Pay"}], "test_cycle": 5}
    assert automated.body_fingerprint(body) == automated.body_fingerprint(reordered)
    assert automated.body_fingerprint(body) != automated.body_fingerprint({**body, "test_cycle": 6})
    submission = automated.Submission.of(body)
    detail = submission.detail()
    assert detail["queue_id"] is None and detail["submission"] == automated.body_fingerprint(body)
    assert automated.Submission.from_detail(json.loads(json.dumps(detail))) == submission
    assert automated.Submission.from_detail({"queue_id": 7}) is None  # an earlier version's row
    reason = automated.pending_reason(submission, 3600)
    assert submission.fingerprint[:12] in reason and automated.stamp(submission.until(3600)) in reason


def test_a_log_is_found_on_its_run_else_by_its_zephyr_key_on_the_run_qtest_chose() -> None:
    on_own_run = {"id": 91, "status": {"id": 601}, "exe_end_date": "2026-01-02T03:05:00.000Z"}
    elsewhere = {
        "id": 95,
        "status": {"id": 601},
        "exe_end_date": "2026-01-03T00:00:00Z",
        "zephyr_key": "SHOP-E2",
    }
    client = LogsOnRuns({61: [on_own_run], 77: [elsewhere]})
    logs = bulk_logs(client)
    second = {**LOG, "source_key": "SHOP-E2", "exe_end_date": datetime(2026, 1, 3)}
    # Without a Zephyr Key field on test runs (logs take the run's fields) nothing is searched.
    assert list(asyncio.run(logs.manual.find_many([LOG, second]))) == ["SHOP-E1"]
    assert client.searches == [] and client.lookups == 1  # the run listed once for both
    logs.ctx.test_run_fields = FieldCatalog([{"id": 5, "label": "Zephyr Key", "data_type": 1}])
    found = asyncio.run(logs.manual.find_many([LOG, second]))
    assert found["SHOP-E1"].qtest_id == 91 and found["SHOP-E1"].detail == {"test_run_id": 61}
    assert found["SHOP-E2"].qtest_id == 95 and found["SHOP-E2"].detail == {"test_run_id": 77}
    assert client.searches == [("test-logs", "'Zephyr Key' = 'SHOP-E2'")]
    # A log recorded for another execution is never taken twice.
    logs.ctx.ids["test_log"]["SHOP-E9"] = 95
    assert "SHOP-E2" not in asyncio.run(logs.manual.find_many([second]))


def test_the_run_of_a_log_is_read_from_its_self_link() -> None:
    href = "https://site.qtestnet.com/api/v3/projects/3/test-runs/4417/test-logs/99"
    assert run_of_log({"links": [{"rel": "self", "href": href}]}) == 4417
    assert run_of_log({"links": [{"rel": "test-case", "href": href}]}) is None
    assert run_of_log({"id": 99}) is None


def test_an_automated_execution_of_an_automation_run_goes_in_bulk() -> None:
    # A result of a step that is not the case's third (SHOP-T2#9): qTest would pair it with the wrong step.
    assert not bulk_logs(LogsOnRuns({})).batched(LOG)
    logs = bulk_logs(LogsOnRuns({}), [STEP_RESULTS[0], STEP_RESULTS[1], STEP_RESULTS[3]])
    assert logs.batched(LOG)
    assert not logs.batched({**LOG, "automated": False})
    assert not logs.batched({**LOG, "parent_source_key": "SHOP-R2|SHOP-T2"})  # not an automation run
    item = logs.item(LOG)
    assert item["automation_content"] == "SHOP-T2" and item["module_names"] == ["Shop", "Cart"]
    assert [step["description"] for step in item["test_step_logs"]] == ["open", "pay"]
    logs.ctx.ids["test_case"].clear()
    with pytest.raises(KeyError, match="its test case SHOP-T2 is not in qTest"):
        logs.item(LOG)


class EntriesInMemory:
    """The part of the id map the release kind reads and writes, in memory."""

    def __init__(self, entries: dict[str, dict[str, Entry]]) -> None:
        self.entries = entries

    async def load(self, object_type: str) -> dict[str, Entry]:
        return dict(self.entries.get(object_type, {}))

    async def done(
        self, object_type: str, key: str, qtest_id: int, payload_hash: str | None, detail: Any = None
    ) -> None:
        self.entries.setdefault(object_type, {})[key] = Entry(qtest_id, payload_hash, "done", detail or {})


def test_a_release_an_older_run_recorded_as_a_test_cycle_keeps_its_id() -> None:
    id_map = EntriesInMemory({
        "test_cycle": {
            "SHOP-P1": Entry(51, "h1", "done", {"qtest_type": "release"}),
            "SHOP-P2": Entry(None, "h2", "pending"),
            "SHOP-R1": Entry(41, "h3", "done"),
        },
        "release": {"SHOP-P3": Entry(53, "h4", "done")},
    })  # fmt: skip
    ctx = PublishContext(None, 1, id_map, None)  # type: ignore[arg-type]
    rows = [{"source_key": key} for key in ("SHOP-P1", "SHOP-P2", "SHOP-P3")]
    asyncio.run(carry_over_legacy_entries(ctx, rows))
    assert id_map.entries["release"] == {
        "SHOP-P1": Entry(51, "h1", "done", {"qtest_type": "release"}),
        "SHOP-P3": Entry(53, "h4", "done"),
    }
    assert ctx.ids["release"] == {"SHOP-P1": 51}
