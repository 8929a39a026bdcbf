"""The proof's comparison, on payloads and qTest objects written here: each kind of loss gets its line and
its reason, what arrived gets none, and values are compared as a reader sees them."""

from __future__ import annotations

from typing import Any

import pytest

from zephyr_qtest.lib.proof import images
from zephyr_qtest.lib.proof.compare import Proof, reader_text, same_value
from zephyr_qtest.lib.proof.ledger import Ledger, LedgerLine, Reason
from zephyr_qtest.lib.proof.source import RawObject, Recorded, Seeds, Source
from zephyr_qtest.lib.qtest.comparison import Reconciliation
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.kinds.base import ReadBack

CASE_FIELDS = [
    {"id": 1, "label": "Zephyr Key", "data_type": 1},
    {"id": 2, "label": "Priority", "data_type": 3, "allowed_values": [
        {"label": "Low", "value": 21}, {"label": "Medium", "value": 22}, {"label": "High", "value": 23}]},
    {"id": 3, "label": "Labels", "data_type": 17, "multiple": True, "allowed_values": [
        {"label": "smoke", "value": 31}, {"label": "api", "value": 32}]},
    {"id": 4, "label": "Risk Score", "data_type": 7},
    {"id": 5, "label": "Implemented", "data_type": 3, "allowed_values": [
        {"label": "true", "value": 51}, {"label": "false", "value": 52}]},
]  # fmt: skip
RUN_FIELDS = [
    {"id": 11, "label": "Zephyr Key", "data_type": 1},
    {"id": 12, "label": "Environment", "data_type": 3, "allowed_values": [{"label": "Chrome", "value": 121}]},
    {"id": 13, "label": "Estimated Time (ms)", "data_type": 7},
]


def raw(key: str | None, payload: dict[str, Any], *, id_: int | None = None, parent: str | None = None,
        position: int | None = None) -> RawObject:  # fmt: skip
    return RawObject(key, id_, parent, position, payload)


def case_payload(**fields: Any) -> dict[str, Any]:
    return {"id": 100, "key": "P-T1", "name": "Login", "objective": None, "precondition": None, **fields}


def qtest_case(properties: dict[int, str], **fields: Any) -> dict[str, Any]:
    return {
        "id": 900,
        "name": "Login",
        "description": "",
        "precondition": "",
        "properties": [{"field_id": fid, "field_value": value} for fid, value in properties.items()],
        "test_steps": [],
        **fields,
    }


def prove_offline(
    objects: dict[str, list[RawObject]],
    found: dict[str, dict[int, Any]],
    ids: dict[str, dict[str, int]],
    *,
    seeds: Seeds | None = None,
    names: dict[str, dict[int, str]] | None = None,
    recorded: dict[tuple[str, str], Recorded] | None = None,
    replaced: dict[tuple[str, str], list[tuple[str, str]]] | None = None,
    statuses: dict[str, int] | None = None,
    run_fields: list[dict[str, Any]] | None = None,
    users: dict[str, int] | None = None,
    pictures: images.PictureEvidence | None = None,
) -> Ledger:
    source = Source("P", objects, names or {}, seeds or Seeds(), recorded or {}, {}, replaced or {})
    read_back = ReadBack(
        client=None,  # type: ignore[arg-type]  # the comparison reads nothing more from qTest
        project_id=1,
        marts=None,  # type: ignore[arg-type]
        ids=ids,
        outcome=Reconciliation("P", 1),
        test_case_fields=FieldCatalog(CASE_FIELDS, users),
        test_run_fields=FieldCatalog([*RUN_FIELDS, *(run_fields or [])], users),
        statuses=statuses or {"passed": 1, "failed": 2},
        found=found,
    )
    ledger = Ledger("P", "site", "site")
    Proof(source, read_back, ledger, pictures=pictures or images.PictureEvidence()).run()
    return ledger


def lines_of(ledger: Ledger, field: str) -> list[LedgerLine]:
    return [line for line in ledger.lines if line.field == field]


def test_each_label_is_compared_on_its_own() -> None:
    ledger = prove_offline(
        {"test_cases": [raw("P-T1", case_payload(labels=["smoke", "nightly"]), id_=100)]},
        {"test_case": {900: qtest_case({1: "P-T1", 3: "[31]"})}},
        {"test_case": {"P-T1": 900}},
        seeds=Seeds(labels={("TestCase", "labels"): "Labels", ("TestCase", "key"): "Zephyr Key"}),
    )
    [line] = lines_of(ledger, "labels")
    assert (line.object_key, line.value, line.reason) == ("P-T1", "nightly", Reason.VALUE_NOT_ALLOWED)
    assert "allowed values of qTest field 'Labels'" in line.remedy
    assert ledger.count("test case").in_qtest == 1


def test_an_unmapped_priority_names_the_seed_and_a_mapped_one_arrives() -> None:
    seeds = Seeds(priorities={"Highest": "High"}, labels={("TestCase", "priority"): "Priority"})
    names = {"priorities": {7: "Blocker", 8: "Highest"}}
    objects = {
        "test_cases": [
            raw("P-T1", case_payload(priority={"id": 7}), id_=100),
            raw("P-T2", case_payload(key="P-T2", priority={"id": 8}), id_=101),
        ]
    }
    found = {"test_case": {900: qtest_case({2: "22"}), 901: qtest_case({2: "23"}, id=901)}}
    ledger = prove_offline(
        objects, found, {"test_case": {"P-T1": 900, "P-T2": 901}}, seeds=seeds, names=names
    )
    [line] = lines_of(ledger, "priority")
    assert (line.object_key, line.value, line.reason) == ("P-T1", "Blocker", Reason.NO_MAPPING)
    assert "priority_map.csv" in line.remedy
    assert "medium" in line.detail.lower()


def test_a_field_the_qtest_project_lacks_is_named_with_what_to_create() -> None:
    ledger = prove_offline(
        {
            "test_cases": [
                raw("P-T1", case_payload(customFields={"Reviewer notes": "ok", "Risk Score": 9.650}))
            ]
        },
        {"test_case": {900: qtest_case({4: "9.65"})}},
        {"test_case": {"P-T1": 900}},
    )
    [line] = [line for line in ledger.lines if line.field.startswith("customFields.")]
    assert (line.field, line.reason) == ("customFields.Reviewer notes", Reason.FIELD_MISSING)
    assert "create the field 'Reviewer notes'" in line.remedy


def test_fields_that_are_not_carried_give_a_line_per_value() -> None:
    step = {"inline": {"description": "Open", "expectedResult": "Shown", "reflectRef": "ai-7"}}
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload())],
            "test_steps": [raw(None, step, parent="P-T1", position=1)],
        },
        {
            "test_case": {
                900: qtest_case(
                    {1: "P-T1"}, test_steps=[{"order": 1, "description": "Open", "expected": "Shown"}]
                )
            }
        },
        {"test_case": {"P-T1": 900}},
    )
    [line] = lines_of(ledger, "inline.reflectRef")
    assert (line.object_key, line.value, line.reason) == ("P-T1#1", "ai-7", Reason.NOT_CARRIED)


def test_a_refused_object_is_one_line_with_qtests_answer() -> None:
    ledger = prove_offline(
        {"test_cases": [raw("P-T1", case_payload(labels=["smoke"]), id_=100)]},
        {"test_case": {}},
        {"test_case": {}},
        recorded={("test_case", "P-T1"): Recorded("failed", "400: name too long")},
    )
    assert [(line.field, line.reason, line.detail) for line in ledger.lines] == [
        ("(object)", Reason.REFUSED, "400: name too long")
    ]
    assert (ledger.count("test case").in_zephyr, ledger.count("test case").in_qtest) == (1, 0)


def test_an_object_not_sent_for_want_of_its_parent_is_missing_not_refused() -> None:
    """qTest refused the module; the case in it was never sent (the run recorded a KeyError, not an answer
    of qTest): 'object not in qTest', naming what it needs, not 'refused by qTest'."""
    ledger = prove_offline(
        {"test_cases": [raw("P-T1", case_payload(), id_=100)]},
        {"test_case": {}},
        {"test_case": {}},
        recorded={("test_case", "P-T1"): Recorded("failed", "KeyError: 'folder:20006'")},
    )
    [line] = ledger.lines
    assert (line.field, line.reason) == ("(object)", Reason.OBJECT_MISSING)
    assert "folder:20006" in line.detail and "its own line" in line.remedy


def test_what_a_missing_objects_line_accounts_for_is_counted() -> None:
    """A missing case's steps and a missing execution's step results have no lines of their own (the one
    line of their parent says it): the counts say how many the parent's line accounts for, so that
    Zephyr against qTest per type adds up."""
    steps = [
        raw(None, {"id": n, "inline": {"description": f"s{n}"}}, parent="P-T1", position=n) for n in (1, 2)
    ]
    execution = {"id": 5, "key": "P-E1", "testCase": {"id": 100}, "testCycle": None,
                 "testExecutionStatus": {"id": 77}, "actualEndDate": "2024-01-01T00:00:00Z"}  # fmt: skip
    results = [raw(None, {"id": 9, "inline": {}}, parent="5", position=1)]
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(), id_=100)],
            "test_steps": steps,
            "test_executions": [raw("P-E1", execution, id_=5)],
            "test_execution_steps": results,
        },
        {"test_case": {}, "test_run": {950: {"id": 950}}, "test_log": {}},
        {"test_case": {}, "test_run": {"adhoc:P|P-T1": 950}},
        names={"statuses": {77: "Old Skip"}},
        recorded={("test_case", "P-T1"): Recorded("failed", "400: no")},
    )
    counts = {kind: (c.in_zephyr, c.in_qtest, c.accounted) for kind, c in ledger.counts.items()}
    assert counts["test step"] == (2, 0, 2) and counts["execution step"] == (1, 0, 1)
    # The execution's line is on its status (qTest knows no "Old Skip"): it accounts for the execution.
    assert counts["test execution"] == (1, 0, 1)
    assert [line.field for line in ledger.lines] == ["(object)", "testExecutionStatus"]


def test_an_execution_in_a_status_qtest_does_not_know_names_status_map() -> None:
    execution = {
        "id": 5,
        "key": "P-E1",
        "testCase": {"id": 100},
        "testCycle": None,
        "testExecutionStatus": {"id": 77},
        "actualEndDate": "2024-01-01T00:00:00Z",
    }
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(), id_=100)],
            "test_executions": [raw("P-E1", execution, id_=5)],
        },
        {"test_case": {900: qtest_case({})}, "test_run": {950: {"id": 950}}, "test_log": {}},
        {"test_case": {"P-T1": 900}, "test_run": {"adhoc:P|P-T1": 950}},
        names={"statuses": {77: "Old Skip"}},
        recorded={("test_log", "P-E1"): Recorded("failed", "400: unknown status")},
    )
    [line] = lines_of(ledger, "testExecutionStatus")
    assert (line.object_key, line.value, line.reason) == ("P-E1", "Old Skip", Reason.NO_MAPPING)
    assert "status_map.csv" in line.remedy


def test_an_unmapped_executor_names_user_map_even_where_qtest_lacks_the_field() -> None:
    """The mapping leaves an account without user_map row out, so no run ever needed 'Executed By': the
    remedy is the seed row (the run then creates the field), not the field."""
    execution = {
        "id": 5,
        "key": "P-E1",
        "testCase": {"id": 100},
        "testCycle": None,
        "testExecutionStatus": {"id": 70},
        "actualEndDate": "2024-01-01T00:10:00Z",
        "executedById": "5b10ac8d82e05b22cc7d4ef5",
    }
    log = {"id": 960, "_run_id": 950, "status": {"name": "Passed"}, "exe_end_date": "2024-01-01T00:10:00Z",
           "properties": [], "test_step_logs": []}  # fmt: skip
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(), id_=100)],
            "test_executions": [raw("P-E1", execution, id_=5)],
        },
        {"test_case": {900: qtest_case({})}, "test_run": {950: {"id": 950}}, "test_log": {960: log}},
        {"test_case": {"P-T1": 900}, "test_run": {"adhoc:P|P-T1": 950}, "test_log": {"P-E1": 960}},
        seeds=Seeds(
            statuses={"TEST_EXECUTION": {"Pass": "Passed"}},
            labels={("TestExecution", "executedById"): "Executed By"},
        ),
        names={"statuses": {70: "Pass"}},
    )
    [line] = lines_of(ledger, "executedById")
    assert (line.value, line.reason) == ("5b10ac8d82e05b22cc7d4ef5", Reason.NO_MAPPING)
    assert "user_map.csv" in line.remedy and "Executed By" in line.detail


def test_call_parameters_and_step_fields_are_checked_in_the_details_block() -> None:
    """qTest steps have no fields and its calls no parameters: the proof reads them in the step's "Zephyr
    details" block, a parameter missing there is a line with its value, and one that is there is none."""
    call = {
        "testCaseKey": "P-T2",
        "parameters": [
            {"name": "amount", "type": "DEFAULT_VALUE", "value": "19.99"},
            {"name": "currency", "type": "DEFAULT_VALUE", "value": "EUR"},
        ],
    }
    inline = {"description": "Pay", "customFields": {"Critical": True, "Devices": ["iOS", "Web"], "Note": ""}}
    steps = [
        raw(None, {"id": 1, "testCase": call}, parent="P-T1", position=1),
        raw(None, {"id": 2, "inline": inline}, parent="P-T1", position=2),
    ]
    held = [
        {
            "id": 1,
            "order": 1,
            "description": "Call to test P-T2<p><b>Zephyr details</b><br>Parameter currency: EUR</p>",
            "called_test_case_id": 901,
        },
        {
            "id": 2,
            "order": 2,
            "description": "Pay<p><b>Zephyr details</b><br>Critical: true<br>Devices: iOS, Web</p>",
        },
    ]
    ledger = prove_offline(
        {
            "test_cases": [
                raw("P-T1", case_payload(), id_=100),
                raw("P-T2", case_payload(key="P-T2"), id_=101),
            ],
            "test_steps": steps,
        },
        {"test_case": {900: qtest_case({}, test_steps=held), 901: qtest_case({}, id=901)}},
        {"test_case": {"P-T1": 900, "P-T2": 901}},
    )
    [line] = lines_of(ledger, "testCase.parameters")
    assert (line.object_key, line.value, line.reason) == ("P-T1#1", "Parameter amount=19.99", Reason.DIFFERS)
    assert "Zephyr details" in line.detail
    assert [line for line in ledger.lines if line.field.startswith("inline.customFields")] == []


def test_what_arrived_gives_no_line() -> None:
    execution = {
        "id": 5,
        "key": "P-E1",
        "testCase": {"id": 100},
        "testCycle": None,
        "testExecutionStatus": {"id": 70},
        "environment": {"id": 3},
        "actualEndDate": "2024-01-01T00:10:00Z",
        "executionTime": 600000,
        "comment": "<p>All &amp; well</p>",
    }
    log = {
        "id": 960,
        "_run_id": 950,
        "status": {"name": "Passed"},
        "exe_end_date": "2024-01-01T00:10:00.000+00:00",
        "exe_start_date": "2024-01-01T00:00:00Z",
        "note": "All & well",
        "properties": [{"field_id": 11, "field_value": "P-E1"}, {"field_id": 12, "field_value": "121"}],
        "test_step_logs": [],
    }
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(), id_=100)],
            "test_executions": [raw("P-E1", execution, id_=5)],
        },
        {"test_case": {900: qtest_case({1: "P-T1"})}, "test_run": {950: {"id": 950}}, "test_log": {960: log}},
        {"test_case": {"P-T1": 900}, "test_run": {"adhoc:P|P-T1": 950}, "test_log": {"P-E1": 960}},
        seeds=Seeds(
            statuses={"TEST_EXECUTION": {"Pass": "Passed"}},
            labels={
                ("TestCase", "key"): "Zephyr Key",
                ("TestExecution", "key"): "Zephyr Key",
                ("TestExecution", "environment"): "Environment",
            },
        ),
        names={"statuses": {70: "Pass"}, "environments": {3: "Chrome"}},
    )
    assert ledger.lines == []
    assert ledger.values_compared >= 6


def test_a_changed_value_is_a_difference_with_what_qtest_holds() -> None:
    ledger = prove_offline(
        {"test_cases": [raw("P-T1", case_payload(objective="<p>Check the <b>login</b></p>"))]},
        {"test_case": {900: qtest_case({}, description="Check the logout")}},
        {"test_case": {"P-T1": 900}},
    )
    [line] = lines_of(ledger, "objective")
    assert line.reason is Reason.DIFFERS
    assert "Check the logout" in line.detail


def step_results_ledger(
    results: list[dict[str, Any]], log: dict[str, Any], pictures: images.PictureEvidence | None = None
) -> Any:
    """The ledger of one execution of P-T1 (which calls P-T2) with these results, qTest holding `log`."""
    steps = [
        raw(None, {"id": 1, "inline": {"description": "open", "expectedResult": "", "testData": None}},
            parent="P-T1", position=1),
        raw(None, {"id": 2, "testCase": {"testCaseKey": "P-T2"}}, parent="P-T1", position=2),
    ]  # fmt: skip
    execution = {"id": 5, "key": "P-E1", "testCase": {"id": 100}, "actualEndDate": "2024-01-01T00:00:00Z"}
    case = qtest_case({}, test_steps=[{"order": 1, "description": "open", "expected": ""},
                                      {"order": 2, "description": "", "expected": "", "called_test_case_id": 901}])  # fmt: skip
    return prove_offline(
        {
            "test_cases": [
                raw("P-T1", case_payload(), id_=100),
                raw("P-T2", case_payload(key="P-T2"), id_=101),
            ],
            "test_steps": steps,
            "test_executions": [raw("P-E1", execution, id_=5)],
            "test_execution_steps": [
                raw(None, result, parent="5", position=position) for position, result in enumerate(results, 1)
            ],
        },
        {
            "test_case": {900: case, 901: qtest_case({}, id=901)},
            "test_run": {950: {"id": 950}},
            "test_log": {960: {"id": 960, "_run_id": 950, "status": {"name": "Passed"}, **log}},
        },
        {
            "test_case": {"P-T1": 900, "P-T2": 901},
            "test_run": {"adhoc:P|P-T1": 950},
            "test_log": {"P-E1": 960},
        },
        seeds=Seeds(statuses={"TEST_EXECUTION": {"Pass": "Passed", "Fail": "Failed"}}),
        names={"statuses": {70: "Pass", 71: "Fail"}},
        pictures=pictures,
    )


def test_a_step_results_picture_arrived_where_its_step_log_or_note_line_points_at_an_attachment_of_the_log() -> (
    None
):
    """A step result's pictures go on its test log: one arrived when its step log (or, with no step log, its
    line of the note) points at an attachment of the log with the picture's bytes; one whose text still
    names the CDN is a line, and so is one pointing at an attachment of another object."""
    cdn = "https://cloudfront.tm4j.smartbear.com/tenant/t1/project/10/embedded-"
    results = [
        {"id": 9, "inline": {"status": {"id": 70}, "actualResult": f'ok <img src="{cdn}1.png">'}},
        {"id": 10, "inline": {"status": {"id": 71}, "actualResult": f'broke <img src="{cdn}2.png">'}},
        {"id": 11, "inline": {"status": {"id": 70}, "actualResult": f'fine <img src="{cdn}3.png">'}},
        {"id": 12, "inline": {"status": {"id": 70}, "actualResult": f'same <img src="{cdn}4.png">'}},
    ]
    note = (
        '<p><b>Zephyr details</b><br>Step result 2: Fail: broke &lt;img src="https://q/att/2"&gt; (step: x); '
        "not a step log: gone</p>"
    )
    held = [
        {"order": 1, "status": {"name": "Passed"}, "actual_result": 'ok <img src="https://q/att/1">'},
        {"order": 3, "status": {"name": "Passed"}, "actual_result": f'fine <img src="{cdn}3.png">'},
        {"order": 4, "status": {"name": "Passed"}, "actual_result": 'same <img src="https://q/att/9">'},
    ]
    pictures = images.PictureEvidence(
        has_token=True,
        source={f"{cdn}{n}.png": f"sha-{n}" for n in (1, 2, 3, 4)},
        attachments={
            ("test-logs", 960): {"https://q/att/1": "sha-1", "https://q/att/2": "sha-2"},
            ("test-cases", 900): {"https://q/att/9": "sha-4"},
        },
    )
    ledger = step_results_ledger(results, {"note": note, "test_step_logs": held}, pictures)
    lines = [line for line in ledger.lines if line.object_type == "execution step"]
    assert [(line.object_key, line.field, line.value) for line in lines] == [
        ("P-E1#3", "inline.actualResult (inline image)", f"{cdn}3.png"),
        ("P-E1#4", "inline.actualResult (inline image)", f"{cdn}4.png"),
    ]
    assert all("re-run" in line.remedy for line in lines)


def test_every_step_result_is_a_step_log_or_a_line_of_the_logs_note() -> None:
    """Results of called steps are step logs (in order, after the results the note holds are set aside);
    a result qTest has no step for is checked in the note's details block; each data row is named there
    with its test data. What is in neither is a line."""
    results = [
        {"id": 9, "inline": {"status": {"id": 70}, "actualResult": "ok", "testDataRowNumber": 1, "testData": "u=a"}},
        {"id": 10, "inline": {"status": {"id": 71}, "actualResult": "it <b>broke</b>", "testDataRowNumber": 1}},
        {"id": 11, "inline": {"status": {"id": 70}, "actualResult": None, "testDataRowNumber": 2, "testData": "u=b"}},
        {"id": 12, "inline": {"status": {"id": 70}, "actualResult": "fine", "testDataRowNumber": 2}},
    ]  # fmt: skip
    note = (
        "<p><b>Zephyr details</b><br>Step result 2: Fail: it &lt;b&gt;broke&lt;/b&gt; (step: x); not a step"
        " log: gone<br>Data row 1: step results 1-2; test data: u=a<br>Data row 2: step results 3-4; test data: u=b</p>"
    )
    held = [
        {"order": 1, "status": {"name": "Passed"}, "actual_result": "ok", "called_test_case_id": 901},
        {"order": 3, "status": {"name": "Passed"}, "actual_result": ""},
        {"order": 4, "status": {"name": "Passed"}, "actual_result": "fine"},
    ]
    ledger = step_results_ledger(results, {"note": note, "test_step_logs": held})
    assert [line for line in ledger.lines if line.object_type == "execution step"] == []
    assert ledger.count("execution step").in_qtest == 4

    # the second row not named, the noted result with another status, the last step log missing
    note = note.replace("Data row 2", "Data row 7").replace("Fail: it", "Pass: it")
    ledger = step_results_ledger(results, {"note": note, "test_step_logs": held[:2]})
    lines = {(line.object_key, line.field) for line in ledger.lines if line.object_type == "execution step"}
    assert lines == {
        ("P-E1#2", "(object)"),
        ("P-E1#3", "inline.testDataRowNumber"),
        ("P-E1#4", "inline.testDataRowNumber"),
        ("P-E1#4", "(object)"),
    }
    [missing] = [line for line in ledger.lines if line.object_key == "P-E1#4" and line.field == "(object)"]
    assert (missing.value, missing.reason) == ("Pass: fine", Reason.NOT_CARRIED)
    assert not [line for line in ledger.lines if line.object_type == "test step"]


def test_replaced_characters_are_named_per_field() -> None:
    ledger = prove_offline(
        {},
        {},
        {},
        replaced={
            ("test_cases", "P-T1"): [("name", "held a lone surrogate; stored with U+FFFD in its place")]
        },
    )
    [line] = ledger.lines
    assert (line.object_type, line.object_key, line.field, line.reason) == (
        "test case",
        "P-T1",
        "name",
        Reason.REPLACED,
    )


def test_replaced_characters_are_named_by_the_keys_the_other_lines_use() -> None:
    """The extraction names objects "<entity> <key>" (a step result by its execution's id): the ledger
    names them by their Zephyr keys, with the text as stored."""
    result = {"id": 9, "inline": {"actualResult": "stopped at \ufffd byte"}}
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(name="Pay with \ufffd"), id_=100)],
            "test_executions": [raw("P-E1", {"id": 5, "key": "P-E1", "testCase": {"id": 100}}, id_=5)],
            "test_execution_steps": [raw("5#1", result, id_=9, parent="5", position=1)],
        },
        {},
        {},
        replaced={
            ("test_cases", "test_cases P-T1"): [("name", "held a lone UTF-16 surrogate ...")],
            ("test_execution_steps", "test_execution_steps 5#1"): [("inline.actualResult", "held a NUL ...")],
        },
    )
    replaced = {(line.object_type, line.object_key, line.field, line.value) for line in ledger.lines
                if line.reason is Reason.REPLACED}  # fmt: skip
    assert replaced == {
        ("test case", "P-T1", "name", "Pay with \ufffd"),
        ("execution step", "P-E1#1", "inline.actualResult", "stopped at \ufffd byte"),
    }


@pytest.mark.parametrize(
    ("expected", "held", "same"),
    [
        ("<p>A &amp; B</p>", "A & B", True),
        ("Zeile 1<br>Zeile 2", "Zeile 1 Zeile 2", True),
        (9.65, "9.650", True),
        (4260, "4260", True),
        (True, "true", True),
        (False, "true", False),
        ("Regression", "regression", True),
        ("a", "b", False),
        # A day in a date picker: its midnight, in any offset; an instant in a date-time picker.
        ("2024-03-05", "2024-03-05T00:00:00+00:00", True),
        ("2024-03-05", "2024-03-04T19:00:00-05:00", True),
        ("2024-03-05", "2024-03-06T00:00:00+00:00", False),
        ("2024-01-05T10:11:12Z", "2024-01-05T10:11:12.000+00:00", True),
    ],
)
def test_values_are_compared_in_their_normal_form(expected: Any, held: str, same: bool) -> None:
    assert same_value(expected, held) is same


def test_reader_text_drops_tags_and_decodes_entities() -> None:
    assert reader_text("<b>html</b> &amp; more<br/>next") == "html & more next"
    assert reader_text(None) == ""


def test_a_payload_of_an_unexpected_shape_stops_only_its_own_comparison() -> None:
    ledger = prove_offline(
        {
            "test_cases": [
                raw("P-T1", case_payload(customFields=["not", "a", "map"]), id_=100),
                raw(
                    "P-T2",
                    case_payload(key="P-T2", links={"webLinks": [{"url": "https://a.example"}]}),
                    id_=101,
                ),
            ]
        },
        {"test_case": {900: qtest_case({}), 901: qtest_case({}, id=901)}},
        {"test_case": {"P-T1": 900, "P-T2": 901}},
    )
    unreadable = [line for line in ledger.lines if line.reason is Reason.UNREADABLE]
    assert [(line.object_key, line.field) for line in unreadable] == [("P-T1", "(object)")]
    assert "AttributeError" in unreadable[0].detail
    assert [line.object_key for line in lines_of(ledger, "links.webLinks")] == ["P-T2"]


def test_a_folder_under_another_parent_in_qtest_is_a_difference() -> None:
    folders = [
        raw(None, {"id": 1, "name": "Root", "folderType": "TEST_CASE", "parentId": None}, id_=1),
        raw(None, {"id": 2, "name": "Child", "folderType": "TEST_CASE", "parentId": 1}, id_=2),
        raw(None, {"id": 3, "name": "Other", "folderType": "TEST_CASE", "parentId": None}, id_=3),
    ]
    modules = {
        800: {"id": 800, "name": "Root", "children": []},
        802: {"id": 802, "name": "Other", "children": [{"id": 801}]},
        801: {"id": 801, "name": "Child", "children": []},
    }
    ledger = prove_offline(
        {"folders": folders},
        {"module": modules},
        {"module": {"folder:1": 800, "folder:2": 801, "folder:3": 802}},
    )
    [line] = ledger.lines
    assert (line.object_key, line.field, line.reason) == ("folder:2", "parentId", Reason.DIFFERS)
    assert "802" in line.detail


def test_an_inline_image_is_a_line_even_though_its_text_arrived() -> None:
    """The objective arrives as written, so the text compares equal; the picture still points at SmartBear's
    CDN, which the API token cannot read: a line per picture, named by object, field and address."""
    picture = "https://cloudfront.tm4j.smartbear.com/tenant/t1/project/10/embedded-ab12-1566319668503.png"
    objective = f'<p>Log in</p><img src="{picture}" width="40"><IMG alt=x SRC=\'{picture}?v=2\'>'
    step = {"inline": {"description": f'Open <img src="{picture}">', "expectedResult": "Shown"}}
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(objective=objective))],
            "test_steps": [raw(None, step, parent="P-T1", position=2)],
        },
        {"test_case": {900: qtest_case({1: "P-T1"}, description=objective)}},
        {"test_case": {"P-T1": 900}},
    )
    assert [(line.object_key, line.value) for line in lines_of(ledger, "objective (inline image)")] == [
        ("P-T1", picture),
        ("P-T1", f"{picture}?v=2"),
    ]
    [step_line] = lines_of(ledger, "inline.description (inline image)")
    assert (step_line.object_type, step_line.object_key, step_line.reason) == (
        "test step",
        "P-T1#2",
        Reason.NOT_CARRIED,
    )
    assert lines_of(ledger, "objective") == []


def test_a_picture_arrived_only_where_qtest_points_at_an_attachment_of_the_case_with_its_bytes() -> None:
    """The proof's own reading (the source's bytes, the case's attachments read back): a picture whose text
    points at an attachment of the case with the same sha256 arrived; one whose attachment holds other bytes,
    or whose text still names the old address, is a line; a data: URI's line never shows the bytes."""
    good = "https://cloudfront.tm4j.smartbear.com/tenant/t1/project/10/embedded-aa-1-good.png"
    bad = "https://cloudfront.tm4j.smartbear.com/tenant/t1/project/10/embedded-bb-2-bad.png"
    data = "data:image/png;base64,iVBORw0KGgo="
    objective = f"<p>x</p><img src=\"{good}\"><img src='{bad}'>"
    held = "<p>x</p><img src=\"https://q/att/1\"><img src='https://q/att/2'>"
    pictures = images.PictureEvidence(
        has_token=True,
        source={good: "sha-good", bad: "sha-bad", data: "sha-data"},
        attachments={("test-cases", 900): {"https://q/att/1": "sha-good", "https://q/att/2": "sha-other"}},
    )
    ledger = prove_offline(
        {
            "test_cases": [
                raw("P-T1", case_payload(objective=objective, precondition=f'<img src="{data}">'))
            ],
        },
        {"test_case": {900: qtest_case({1: "P-T1"}, description=held, precondition=f'<img src="{data}">')}},
        {"test_case": {"P-T1": 900}},
        pictures=pictures,
    )
    assert [line.value for line in lines_of(ledger, "objective (inline image)")] == [bad]
    [line] = lines_of(ledger, "precondition (inline image)")
    assert line.value.startswith("data:image/png;base64,...") and "iVBOR" not in line.value


def test_each_older_version_is_checked_in_qtests_version_list_and_its_steps_are_named() -> None:
    """An older version is compared with the version qTest lists for it, by the current version's rules:
    its texts and the values of its properties (its own, not the case's: a priority or label it held and
    qTest's version does not is a line); its steps are named (Zephyr's API does not give them); a version
    qTest does not hold is missing. The log of an execution that ran against an older version must be on
    the qTest version that one became: elsewhere it is a line; on it, or with no log (not run), none."""

    def execution(key: str, version: int) -> RawObject:
        link = f"https://api.zephyrscale.smartbear.com/v2/testcases/P-T1/versions/{version}"
        return raw(key, {"id": int(key[-1]), "key": key, "testCase": {"self": link}})

    first = {
        "id": 7,
        "name": "Login (first)",
        "objective": "<p>Old</p>",
        "priority": {"id": 3},
        "labels": ["smoke"],
    }
    second = {"id": 8, "name": "Login (second)", "priority": {"id": 3}, "labels": ["api"]}
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(priority={"id": 4}))],
            "test_case_versions": [
                raw("P-T1@1", first, parent="P-T1", position=1),
                raw("P-T1@2", second, parent="P-T1", position=2),
                raw("P-T1@3", {"id": 9, "name": "Login (third)"}, parent="P-T1", position=3),
            ],
            "test_executions": [
                execution("P-E1", 1),  # its log on the version v1 became
                execution("P-E2", 4),  # ran against the current version
                execution("P-E3", 2),  # its log on the current version
                execution("P-E4", 1),  # not run: no log
            ],
        },
        {
            "test_case": {900: qtest_case({1: "P-T1", 2: "21"})},
            "test_case_version": {
                501: qtest_case(
                    {1: "P-T1", 2: "23", 3: "[31]"}, name="Login (first)", description="<p>Old</p>"
                ),
                # The case's Low where v2 held High, and its label missing.
                502: qtest_case({1: "P-T1", 2: "21"}, name="Login (2nd)"),
            },
            "test_log": {
                801: {"id": 801, "test_case_version_id": 501},
                803: {"id": 803, "test_case_version_id": 510},
            },
        },
        {
            "test_case": {"P-T1": 900},
            "test_case_version": {"P-T1@1": 501, "P-T1@2": 502},
            "test_log": {"P-E1": 801, "P-E3": 803},
        },
        names={"priorities": {3: "High", 4: "Low"}},
        seeds=Seeds(
            labels={
                ("TestCase", "key"): "Zephyr Key",
                ("TestCase", "priority"): "Priority",
                ("TestCase", "labels"): "Labels",
            }
        ),
    )
    versions = [line for line in ledger.lines if line.object_type == "test case version"]
    assert [(line.object_key, line.field, line.value, line.reason) for line in versions] == [
        ("P-T1 version 1", "steps", "the steps of P-T1 version 1", Reason.NOT_CARRIED),
        ("P-T1 version 2", "name", "Login (second)", Reason.DIFFERS),
        ("P-T1 version 2", "priority", "High", Reason.DIFFERS),
        ("P-T1 version 2", "labels", "api", Reason.DIFFERS),
        ("P-T1 version 2", "steps", "the steps of P-T1 version 2", Reason.NOT_CARRIED),
        ("P-T1 version 3", "(object)", "Login (third)", Reason.OBJECT_MISSING),
    ]
    assert "gives no steps of an older version" in versions[0].detail
    assert (ledger.count("test case version").in_zephyr, ledger.count("test case version").in_qtest) == (3, 2)
    [elsewhere] = lines_of(ledger, "testCase (version)")
    assert (elsewhere.object_key, elsewhere.value, elsewhere.reason) == (
        "P-E3",
        "P-T1 version 2",
        Reason.DIFFERS,
    )
    assert "qTest version 510, not on 502" in elsewhere.detail


# ------------------------------------------------------------------ cycles and plans: releases and details

CYCLE = {
    "id": 10,
    "key": "P-R1",
    "name": "Sprint 1",
    "description": None,
    "plannedStartDate": "2024-03-01T08:00:00Z",
    "plannedEndDate": "2024-03-15T17:30:00Z",
    "status": {"id": 40},
    "owner": {"accountId": "acc-1"},
    "jiraProjectVersion": {"id": 10001},
    "folder": {"id": 5},
    "customFields": {"Risk": "High & <rising>", "Browsers": ["Chrome", "Firefox"], "Empty": None},
    "links": {
        "issues": [{"issueId": 1, "target": "https://jira/browse/P-1"}, {"issueId": 2}],
        "webLinks": [{"url": "https://wiki/a", "description": "Runbook"}],
        "testPlans": [{"testPlanId": 31}, {"testPlanId": 30}],
    },
}
PLAN = {
    "id": 30,
    "key": "P-P1",
    "name": "Release 2",
    "objective": "Ship it",
    "status": {"id": 41},
    "owner": {"accountId": "acc-2"},
    "folder": {"id": 7},
    "labels": ["q1", "urgent"],
    "customFields": {"Approved": True},
    "links": {"issues": [], "webLinks": [{"url": "https://wiki/plan"}]},
}
CYCLE_DETAILS = (
    "Zephyr test cycle P-R1<p><b>Zephyr details</b><br>Planned start: 2024-03-01T08:00:00Z"
    "<br>Planned end: 2024-03-15T17:30:00Z<br>Status: In Progress<br>Owner: acc-1<br>Jira version: 10001"
    "<br>Folder: Cycles / 2024<br>Also in test plans: P-P2<br>Custom field Browsers: Chrome, Firefox"
    "<br>Custom field Risk: High &amp; &lt;rising&gt;<br>Jira issue: https://jira/browse/P-1<br>Jira issue: 2"
    "<br>Web link: https://wiki/a (Runbook)</p>"
)
PLAN_DETAILS = (
    "Ship it<br>Zephyr test plan P-P1<p><b>Zephyr details</b><br>Status: Approved<br>Owner: acc-2"
    "<br>Folder: Plans / 2024<br>Label: q1<br>Label: urgent<br>Custom field Approved: true"
    "<br>Web link: https://wiki/plan</p>"
)
PLAN_FOLDERS = [
    raw(None, {"id": 4, "name": "Cycles", "folderType": "TEST_CYCLE", "parentId": None}, id_=4),
    raw(None, {"id": 5, "name": "2024", "folderType": "TEST_CYCLE", "parentId": 4}, id_=5),
    raw(None, {"id": 6, "name": "Plans", "folderType": "TEST_PLAN", "parentId": None}, id_=6),
    raw(None, {"id": 7, "name": "2024", "folderType": "TEST_PLAN", "parentId": 6}, id_=7),
    raw(None, {"id": 8, "name": "Empty", "folderType": "TEST_PLAN", "parentId": None}, id_=8),
]


# The test-cycle folders as qTest holds them (cycles 804 > 805).
CYCLE_FOLDERS = {
    804: {"id": 804, "name": "Cycles", "test-cycles": [{"id": 805}]},
    805: {"id": 805, "name": "2024", "test-cycles": []},
}


def prove_plans(cycle_description: str, plan_description: str, cycle_under: int | None = 700) -> Ledger:
    """A cycle linked to plans P-P1 and P-P2 (both releases), in qTest under release `cycle_under`."""
    other_plan = {**PLAN, "id": 31, "key": "P-P2", "folder": None, "labels": [], "customFields": {},
                  "links": {}, "status": None, "owner": None, "objective": None}  # fmt: skip
    releases = {
        700: {"id": 700, "name": "Release 2", "description": plan_description, "test-cycles": []},
        701: {"id": 701, "name": "Release 2", "description": "Zephyr test plan P-P2", "test-cycles": []},
    }
    cycle = {"id": 800, "name": "Sprint 1", "description": cycle_description}
    if cycle_under is not None:
        releases[cycle_under]["test-cycles"] = [cycle]
    return prove_offline(
        {
            "folders": PLAN_FOLDERS,
            "test_cycles": [raw("P-R1", CYCLE, id_=10)],
            "test_plans": [raw("P-P1", PLAN, id_=30), raw("P-P2", other_plan, id_=31)],
        },
        {"release": releases, "test_cycle": {800: cycle, **CYCLE_FOLDERS}},
        {
            "release": {"P-P1": 700, "P-P2": 701},
            "test_cycle": {"P-R1": 800, "folder:4": 804, "folder:5": 805},
        },
        names={"statuses": {40: "In Progress", 41: "Approved"}},
    )


def test_a_cycle_under_its_first_plans_release_with_its_details_gives_no_line() -> None:
    ledger = prove_plans(CYCLE_DETAILS, PLAN_DETAILS)
    # The empty folder of plans is named nowhere: its one line; the folder of P-P1 is in its details.
    [line] = ledger.lines
    assert (line.object_type, line.object_key, line.reason) == ("folder", "folder:8", Reason.NOT_CARRIED)
    assert ledger.values_compared >= 20


def test_a_cycle_under_another_release_or_none_is_a_difference_of_its_plan_link() -> None:
    for under in (701, None):
        ledger = prove_plans(CYCLE_DETAILS, PLAN_DETAILS, cycle_under=under)
        [line] = lines_of(ledger, "links.testPlans")
        assert (line.object_key, line.value, line.reason) == ("P-R1", "P-P1", Reason.DIFFERS)
        assert "release 700 of test plan P-P1" in line.detail


def test_each_detail_that_did_not_arrive_is_a_line_of_its_own() -> None:
    cycle = (
        CYCLE_DETAILS.replace(
            "<br>Planned end: 2024-03-15T17:30:00Z", "<br>Planned end: 2024-03-16T17:30:00Z"
        )
        .replace("<br>Jira issue: 2", "")
        .replace("<br>Also in test plans: P-P2", "")
    )
    plan = PLAN_DETAILS.replace("<br>Label: urgent", "").replace("Custom field Approved: true", "x: y")
    ledger = prove_plans(cycle, plan)
    lines = {
        (line.object_key, line.field, str(line.value))
        for line in ledger.lines
        if line.reason is Reason.DIFFERS
    }
    assert lines == {
        ("P-R1", "plannedEndDate", "2024-03-15T17:30:00Z"),
        ("P-R1", "links.issues", "2"),
        ("P-R1", "links.testPlans", "P-P2"),
        ("P-P1", "labels", "urgent"),
        ("P-P1", "customFields.Approved", "True"),
    }


def test_a_description_without_the_block_misses_every_detail() -> None:
    ledger = prove_plans("Zephyr test cycle P-R1", PLAN_DETAILS)
    fields = {line.field for line in ledger.lines if line.object_key == "P-R1"}
    assert fields == {
        "plannedStartDate", "plannedEndDate", "status", "owner", "jiraProjectVersion", "folder",
        "links.testPlans", "customFields.Risk", "customFields.Browsers", "links.issues", "links.webLinks",
    }  # fmt: skip
    assert all("have no" in line.detail for line in ledger.lines if line.object_key == "P-R1")


def test_with_plans_as_test_cycle_the_plan_links_are_not_carried_and_the_details_still_checked() -> None:
    cycle = CYCLE_DETAILS.replace("<br>Folder: Cycles / 2024", "").replace("<br>Also in test plans: P-P2", "")
    ledger = prove_offline(
        {"folders": PLAN_FOLDERS[:2], "test_cycles": [raw("P-R1", CYCLE, id_=10)],
         "test_plans": [raw("P-P1", PLAN, id_=30)]},
        {"test_cycle": {
            800: {"id": 800, "name": "Sprint 1", "description": cycle},
            **CYCLE_FOLDERS,
            805: {"id": 805, "name": "2024", "test-cycles": [{"id": 800}]},
            900: {"id": 900, "name": "Release 2", "description": PLAN_DETAILS.replace("<br>Folder: Plans / 2024", "")},
        }},
        {"test_cycle": {"P-R1": 800, "folder:4": 804, "folder:5": 805, "P-P1": 900}},
        names={"statuses": {40: "In Progress", 41: "Approved"}},
    )  # fmt: skip
    assert {(line.field, line.value, line.reason) for line in ledger.lines} == {
        ("links.testPlans", "P-P1", Reason.NOT_CARRIED),
        # A plan that is not in the project's payloads is named by its id.
        ("links.testPlans", "31", Reason.NOT_CARRIED),
    }


def test_an_unrun_executions_values_are_checked_on_its_run_and_a_shadowed_ones_named() -> None:
    """Not run yet: qTest has no log, the run holds the values of the latest such execution of the pair
    (its assignee in the run's 'Assigned To', its comment in a property: a run has no note); an earlier
    one's values are lines saying which run holds another's."""

    def unrun(id_: int, key: str, environment: int, estimated: int, comment: str) -> RawObject:
        payload = {"id": id_, "key": key, "testCase": {"id": 100}, "testCycle": None,
                   "environment": {"id": environment}, "estimatedTime": estimated, "actualEndDate": None,
                   "assignedToId": "acc-jane", "comment": comment}  # fmt: skip
        return raw(key, payload, id_=id_)

    run = {
        "id": 950,
        "properties": [{"field_id": 12, "field_value": "121"}, {"field_id": 13, "field_value": "60000"},
                       {"field_id": 14, "field_value": "7"}, {"field_id": 15, "field_value": "Blocked <b>on data</b>"}],
    }  # fmt: skip
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(), id_=100)],
            "test_executions": [
                unrun(5, "P-E1", 4, 1000, "First look"),
                unrun(6, "P-E2", 3, 60000, "Blocked <b>on data</b>"),
            ],
        },
        {"test_case": {900: qtest_case({1: "P-T1"})}, "test_run": {950: run}},
        {"test_case": {"P-T1": 900}, "test_run": {"adhoc:P|P-T1": 950}},
        seeds=Seeds(
            labels={
                ("TestCase", "key"): "Zephyr Key",
                ("TestExecution", "environment"): "Environment",
                ("TestExecution", "estimatedTime"): "Estimated Time (ms)",
                ("TestExecution", "assignedToId"): "Assigned To",
                ("TestExecution", "comment"): "Zephyr Comment",
            },
            users={"acc-jane": "jane.doe"},
        ),
        names={"environments": {3: "Chrome", 4: "Safari"}},
        run_fields=[
            {"id": 14, "label": "Assigned To", "data_type": 5},
            {"id": 15, "label": "Zephyr Comment", "data_type": 2},
        ],
        users={"jane.doe": 7},
    )
    assert sorted((line.object_key, line.field, line.value) for line in ledger.lines) == [
        ("P-E1", "assignedToId", "acc-jane"),
        ("P-E1", "comment", "First look"),
        ("P-E1", "environment", "Safari"),
        ("P-E1", "estimatedTime", "1000"),
    ]
    assert all("P-T1" in line.detail and line.reason is Reason.NOT_CARRIED for line in ledger.lines)


# ------------------------------------------------------------------ pictures of plans, cycles, scripts, comments

PICTURE = "https://cloudfront.tm4j.smartbear.com/tenant/t1/project/10/embedded-cc-3-plan.png"


def prove_pictured_plan_and_cycle(release_attachments: dict[str, str], *, as_release: bool = True) -> Ledger:
    """P-P1 (its objective holds PICTURE) as a release pointing at https://q/att/7, or as a test cycle
    holding the old address; the cycle P-R1, under it, has PICTURE in its description."""
    plan = {**PLAN, "objective": f'Ship it <img src="{PICTURE}">'}
    cycle_payload = {**CYCLE, "description": f'Go <img src="{PICTURE}">'}
    cycle = {"id": 800, "name": "Sprint 1", "description": f'Go <img src="{PICTURE}"><br>{CYCLE_DETAILS}'}
    pictures = images.PictureEvidence(
        has_token=True, source={PICTURE: "sha-plan"}, attachments={("releases", 700): release_attachments}
    )
    if as_release:
        held = PLAN_DETAILS.replace("Ship it", 'Ship it <img src="https://q/att/7">')
        found = {
            "release": {700: {"id": 700, "name": "Release 2", "description": held, "test-cycles": [cycle]}},
            "test_cycle": {800: cycle, **CYCLE_FOLDERS},
        }
        ids = {"release": {"P-P1": 700}, "test_cycle": {"P-R1": 800, "folder:4": 804, "folder:5": 805}}
    else:
        held = PLAN_DETAILS.replace("Ship it", f'Ship it <img src="{PICTURE}">')
        found = {
            "test_cycle": {
                800: cycle,
                **CYCLE_FOLDERS,
                900: {"id": 900, "name": "Release 2", "description": held},
            }
        }
        ids = {"test_cycle": {"P-R1": 800, "folder:4": 804, "folder:5": 805, "P-P1": 900}}
    return prove_offline(
        {"folders": PLAN_FOLDERS, "test_cycles": [raw("P-R1", cycle_payload, id_=10)],
         "test_plans": [raw("P-P1", plan, id_=30)]},
        found, ids, names={"statuses": {40: "In Progress", 41: "Approved"}}, pictures=pictures,
    )  # fmt: skip


def test_a_plans_picture_arrives_on_its_release_and_a_cycles_is_a_line_qtest_cannot_hold() -> None:
    """A plan's objective picture arrived when its release's description points at an attachment of the
    release with the picture's bytes (another release's, or other bytes, is a line). A cycle's picture is a
    line whatever qTest holds: qTest takes no attachments on test cycles, and the line says so."""
    ledger = prove_pictured_plan_and_cycle({"https://q/att/7": "sha-plan"})
    assert lines_of(ledger, "objective (inline image)") == []
    [line] = lines_of(ledger, "description (inline image)")
    assert (line.object_type, line.object_key, line.value, line.reason) == (
        "test cycle", "P-R1", PICTURE, Reason.NOT_CARRIED,
    )  # fmt: skip
    assert line.detail.startswith("qTest cannot hold it: qTest takes no attachments on test cycles")
    assert "blob-handles take releases" in line.detail and "acceptance file" in line.remedy

    [line] = lines_of(
        prove_pictured_plan_and_cycle({"https://q/att/7": "sha-other"}), "objective (inline image)"
    )
    assert (line.object_type, line.object_key) == ("test plan", "P-P1")
    assert "does not point at an attachment" in line.detail


def test_with_plans_as_test_cycle_a_plans_picture_is_a_line_qtest_cannot_hold() -> None:
    [line] = lines_of(prove_pictured_plan_and_cycle({}, as_release=False), "objective (inline image)")
    assert line.detail.startswith("qTest cannot hold it: plans_as is test_cycle")
    assert "ZEPHYR_QTEST_PLANS_AS=release" in line.remedy


def test_a_scripts_picture_is_checked_on_its_cases_script_step_and_a_comments_on_the_log() -> None:
    """A script's picture goes on its test case (the script is the step after the case's steps); a run
    execution's comment's on its test log (the log's note); an unrun execution's comment has no log (its run
    holds it, and runs take no attachments): a line qTest cannot hold."""
    data = "data:image/png;base64,iVBORw0KGgo="
    script = {"type": "plain", "text": f'Do it <img src="{PICTURE}"> <img src="{data}">'}
    run = {
        "id": 5,
        "key": "P-E1",
        "testCase": {"id": 100},
        "actualEndDate": "2024-03-02T10:00:00Z",
        "comment": f'Broke <img src="{PICTURE}">',
    }
    unrun = {
        "id": 6,
        "key": "P-E2",
        "testCase": {"id": 100},
        "actualEndDate": None,
        "comment": f'Later <img src="{PICTURE}">',
    }
    pictures = images.PictureEvidence(
        has_token=True,
        source={PICTURE: "sha-p", data: "sha-d"},
        attachments={
            ("test-cases", 900): {"https://q/att/1": "sha-p"},
            ("test-logs", 950): {"https://q/att/2": "sha-p"},
        },
    )
    case = qtest_case(
        {1: "P-T1"},
        test_steps=[{"order": 1, "description": f'Do it <img src="https://q/att/1"> <img src="{data}">'}],
    )
    ledger = prove_offline(
        {"test_cases": [raw("P-T1", case_payload(), id_=100)],
         "test_scripts": [raw(None, script, parent="P-T1")],
         "test_executions": [raw("P-E1", run, id_=5), raw("P-E2", unrun, id_=6)]},
        {"test_case": {900: case}, "test_log": {950: {"id": 950, "note": 'Broke <img src="https://q/att/2">'}}},
        {"test_case": {"P-T1": 900}, "test_log": {"P-E1": 950}},
        pictures=pictures,
    )  # fmt: skip
    # The script's CDN picture arrived; its data: one is still the data: URI in qTest: a line.
    [line] = lines_of(ledger, "text (inline image)")
    assert (line.object_type, line.object_key) == ("test step", "P-T1#script")
    assert line.value.startswith("data:image/png;base64,...")
    [line] = lines_of(ledger, "comment (inline image)")
    assert (line.object_type, line.object_key, line.reason) == ("test execution", "P-E2", Reason.NOT_CARRIED)
    assert line.detail.startswith("qTest cannot hold it: the execution has not run")
