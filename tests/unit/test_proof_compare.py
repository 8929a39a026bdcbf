"""The proof's comparison, on payloads and qTest objects written here: each kind of loss gets its line and
its reason, what arrived gets none, and values are compared as a reader sees them."""

from __future__ import annotations

from typing import Any

import pytest

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
) -> Ledger:
    source = Source("P", objects, names or {}, seeds or Seeds(), recorded or {}, {}, replaced or {})
    read_back = ReadBack(
        client=None,  # type: ignore[arg-type]  # the comparison reads nothing more from qTest
        project_id=1,
        marts=None,  # type: ignore[arg-type]
        ids=ids,
        outcome=Reconciliation("P", 1),
        test_case_fields=FieldCatalog(CASE_FIELDS),
        test_run_fields=FieldCatalog(RUN_FIELDS),
        statuses=statuses or {"passed": 1, "failed": 2},
        found=found,
    )
    ledger = Ledger("P", "site", "site")
    Proof(source, read_back, ledger).run()
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
    links = {"webLinks": [{"url": "https://a.example", "description": "spec"}, {"url": "https://b.example"}]}
    ledger = prove_offline(
        {"test_cases": [raw("P-T1", case_payload(links=links, createdOn="2023-01-02T03:04:05Z"))]},
        {"test_case": {900: qtest_case({})}},
        {"test_case": {"P-T1": 900}},
    )
    web = lines_of(ledger, "links.webLinks")
    assert [line.value for line in web] == ["https://a.example (spec)", "https://b.example"]
    assert {line.reason for line in web} == {Reason.NOT_CARRIED}
    assert lines_of(ledger, "createdOn")[0].value == "2023-01-02T03:04:05Z"


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


def test_a_call_parameter_is_shown_with_its_value() -> None:
    call = {
        "testCaseKey": "P-T2",
        "parameters": [{"name": "amount", "type": "DEFAULT_VALUE", "value": "19.99"}],
    }
    steps = [raw(None, {"id": 1, "testCase": call}, parent="P-T1", position=1)]
    held = [{"id": 1, "order": 1, "description": "", "called_test_case_id": 901}]
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
    assert (line.object_key, line.value, line.reason) == ("P-T1#1", "amount=19.99", Reason.NOT_CARRIED)


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


def test_step_results_of_a_case_with_calls_are_named_with_why() -> None:
    steps = [
        raw(None, {"id": 1, "inline": {"description": "open", "expectedResult": "", "testData": None}},
            parent="P-T1", position=1),
        raw(None, {"id": 2, "testCase": {"testCaseKey": "P-T2"}}, parent="P-T1", position=2),
    ]  # fmt: skip
    execution = {"id": 5, "key": "P-E1", "testCase": {"id": 100}, "actualEndDate": "2024-01-01T00:00:00Z"}
    result = {"id": 9, "inline": {"status": {"id": 70}, "actualResult": "it broke"}}
    case = qtest_case({}, test_steps=[{"order": 1, "description": "open", "expected": ""},
                                      {"order": 2, "description": "", "expected": "", "called_test_case_id": 901}])  # fmt: skip
    ledger = prove_offline(
        {
            "test_cases": [
                raw("P-T1", case_payload(), id_=100),
                raw("P-T2", case_payload(key="P-T2"), id_=101),
            ],
            "test_steps": steps,
            "test_executions": [raw("P-E1", execution, id_=5)],
            "test_execution_steps": [raw(None, result, parent="5", position=1)],
        },
        {
            "test_case": {900: case, 901: qtest_case({}, id=901)},
            "test_run": {950: {"id": 950}},
            "test_log": {
                960: {"id": 960, "_run_id": 950, "status": {"name": "Passed"}, "test_step_logs": []}
            },
        },
        {
            "test_case": {"P-T1": 900, "P-T2": 901},
            "test_run": {"adhoc:P|P-T1": 950},
            "test_log": {"P-E1": 960},
        },
        seeds=Seeds(statuses={"TEST_EXECUTION": {"Pass": "Passed"}}),
        names={"statuses": {70: "Pass"}},
    )
    [line] = [line for line in ledger.lines if line.object_type == "execution step"]
    assert (line.object_key, line.value, line.reason) == ("P-E1#1", "Pass: it broke", Reason.NOT_CARRIED)
    assert "call-to-test" in line.detail
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


def test_each_older_version_is_checked_in_qtests_version_list_and_its_steps_are_named() -> None:
    """An older version is compared with the version qTest lists for it: a value that did not arrive is a
    line, as is one that is not replayed (its priority), and its steps (Zephyr's API does not give them);
    a version qTest does not hold is missing. An execution that ran against one is a line (its log is on
    the current version); one that ran against the current one is not."""

    def execution(key: str, version: int) -> RawObject:
        link = f"https://api.zephyrscale.smartbear.com/v2/testcases/P-T1/versions/{version}"
        return raw(key, {"id": int(key[-1]), "key": key, "testCase": {"self": link}})

    first = {"id": 7, "name": "Login (first)", "objective": "<p>Old</p>", "priority": {"id": 3}}
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload())],
            "test_case_versions": [
                raw("P-T1@1", first, parent="P-T1", position=1),
                raw("P-T1@2", {"id": 8, "name": "Login (second)"}, parent="P-T1", position=2),
                raw("P-T1@3", {"id": 9, "name": "Login (third)"}, parent="P-T1", position=3),
            ],
            "test_executions": [execution("P-E1", 1), execution("P-E2", 4)],
        },
        {
            "test_case": {900: qtest_case({1: "P-T1"})},
            "test_case_version": {
                501: {"name": "Login (first)", "description": "<p>Old</p>", "precondition": ""},
                502: {"name": "Login (2nd)", "description": "", "precondition": ""},
            },
        },
        {"test_case": {"P-T1": 900}, "test_case_version": {"P-T1@1": 501, "P-T1@2": 502}},
        names={"priorities": {3: "High"}},
    )
    versions = [line for line in ledger.lines if line.object_type == "test case version"]
    assert [(line.object_key, line.field, line.value, line.reason) for line in versions] == [
        ("P-T1 version 1", "steps", "the steps of P-T1 version 1", Reason.NOT_CARRIED),
        ("P-T1 version 1", "priority", "High", Reason.NOT_CARRIED),
        ("P-T1 version 2", "name", "Login (second)", Reason.DIFFERS),
        ("P-T1 version 2", "steps", "the steps of P-T1 version 2", Reason.NOT_CARRIED),
        ("P-T1 version 3", "(object)", "Login (third)", Reason.OBJECT_MISSING),
    ]
    assert "gives no steps of an older version" in versions[0].detail
    assert (ledger.count("test case version").in_zephyr, ledger.count("test case version").in_qtest) == (3, 2)
    [ran_against_old] = lines_of(ledger, "testCase (version)")
    assert (ran_against_old.object_key, ran_against_old.value) == ("P-E1", "P-T1 version 1")
    assert "version 4" in ran_against_old.detail
