"""The proof of links, on payloads and qTest objects written here: an issue link arrived when a requirement
named after the issue (or one the site's Jira integration imported for it) is linked to the case (or the
execution's run) and its description names the link with its type; a web link when the case's 'Web Links'
property holds its line."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit import test_proof_compare
from tests.unit.test_proof_compare import case_payload, lines_of, prove_offline, qtest_case, raw
from zephyr_qtest.lib.proof.ledger import Reason
from zephyr_qtest.lib.proof.source import Recorded, Seeds
from zephyr_qtest.lib.qtest.kinds.requirement import DESCRIPTION, LINKS, imported_by_issue, imported_issues

WEB_LINKS_FIELD = {"id": 6, "label": "Web Links", "data_type": 2}
JIRA_ISSUES_FIELD = {"id": 7, "label": "Jira Issues", "data_type": 2}


def requirement(requirement_id: int, issue: int, links: set, *linked_from: str) -> dict[str, Any]:
    lines = "".join(f"<br>Linked from: {line}" for line in linked_from)
    return {
        "id": requirement_id,
        "name": f"Jira issue {issue}",
        DESCRIPTION: f"<p><b>Zephyr details</b><br>Jira issue id: {issue}{lines}</p>",
        LINKS: links,
    }


def issue(issue_id: int, link_type: str | None = "COVERAGE") -> dict[str, Any]:
    return {"issueId": issue_id, "id": issue_id + 1, "type": link_type,
            "target": f"https://jira.invalid/rest/api/2/issue/{issue_id}"}  # fmt: skip


def test_each_issue_link_of_a_case_is_its_requirement_linked_with_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        test_proof_compare, "CASE_FIELDS", [*test_proof_compare.CASE_FIELDS, JIRA_ISSUES_FIELD]
    )
    case = ("test-cases", 900)
    issues = [issue(1), issue(2, "BLOCKS"), issue(3), issue(4)]
    payload = case_payload(links={"issues": issues})
    # The case's 'Jira Issues' property holds them all: only the requirements are at stake here.
    urls = ", ".join(link["target"] for link in issues)
    ledger = prove_offline(
        {"test_cases": [raw("P-T1", payload, id_=100)]},
        {
            "test_case": {900: qtest_case({7: urls})},
            "requirement": {
                71: requirement(71, 1, {case}, "P-T1 (COVERAGE)"),
                # Linked, but its description names another type.
                72: requirement(72, 2, {case}, "P-T1 (RELATED)"),
                # In qTest, not linked to the case.
                73: requirement(73, 3, set(), "P-T1 (COVERAGE)"),
            },
        },
        {"test_case": {"P-T1": 900}},
        seeds=Seeds(labels={("TestCase", "issueLinks"): "Jira Issues"}),
        recorded={
            ("requirement_link", "jira-issue:4|test-cases:P-T1"): Recorded(
                "failed", "POST requirements/1/link -> 400: gone"
            )
        },
    )
    lines = {(line.field, line.value): line for line in ledger.lines if line.field.startswith("links.issues")}
    assert set(lines) == {("links.issues.type", "2 (BLOCKS)"), ("links.issues", "3 (COVERAGE)"),
                          ("links.issues", "4 (COVERAGE)")}  # fmt: skip
    assert lines[("links.issues.type", "2 (BLOCKS)")].reason is Reason.DIFFERS
    assert "not linked to the test case" in lines[("links.issues", "3 (COVERAGE)")].detail
    assert lines[("links.issues", "4 (COVERAGE)")].reason is Reason.REFUSED
    assert "holds no requirement 'Jira issue 4'" in lines[("links.issues", "4 (COVERAGE)")].detail


def imported(requirement_id: int, name: str, links: set, **external: str) -> dict[str, Any]:
    """A requirement the site's Jira integration made, read with its external properties."""
    return {"id": requirement_id, "name": name, DESCRIPTION: "<p>From Jira</p>", LINKS: links,
            "external_properties": external}  # fmt: skip


def test_a_link_to_the_requirement_jira_imported_for_the_issue_arrived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        test_proof_compare, "CASE_FIELDS", [*test_proof_compare.CASE_FIELDS, JIRA_ISSUES_FIELD]
    )
    case = ("test-cases", 900)
    issues = [issue(1), issue(2, "BLOCKS"), issue(3), issue(4)]
    urls = ", ".join(link["target"] for link in issues)
    ledger = prove_offline(
        {"test_cases": [raw("P-T1", case_payload(links={"issues": issues}), id_=100)]},
        {
            "test_case": {900: qtest_case({7: urls})},
            "requirement": {
                # Its external id is the issue id.
                81: imported(81, "P-11 Checkout", {case}, id="1", link="https://jira.invalid/browse/P-11"),
                # Its external link names the issue id (the id is the key): BLOCKS is written nowhere.
                82: imported(
                    82, "P-12 Refunds", {case}, id="P-12", link="https://jira.invalid/rest/api/2/issue/2"
                ),
                # Imported for issue 3, but not linked to the case.
                83: imported(83, "P-13 Coupons", set(), id="3"),
                # Another issue's: it holds no link of issue 4.
                84: imported(84, "P-14 Other", {case}, id="40"),
            },
        },
        {"test_case": {"P-T1": 900}},
        seeds=Seeds(labels={("TestCase", "issueLinks"): "Jira Issues"}),
    )
    lines = {(line.field, line.value): line for line in ledger.lines if line.field.startswith("links.issues")}
    assert set(lines) == {("links.issues.type", "2 (BLOCKS)"), ("links.issues", "3 (COVERAGE)"),
                          ("links.issues", "4 (COVERAGE)")}  # fmt: skip
    assert lines[("links.issues.type", "2 (BLOCKS)")].reason is Reason.NOT_CARRIED
    assert (
        "Jira integration imported for issue 3 but it is not linked"
        in lines[("links.issues", "3 (COVERAGE)")].detail
    )
    assert "holds no requirement 'Jira issue 4'" in lines[("links.issues", "4 (COVERAGE)")].detail


def test_an_imported_requirement_stands_for_the_issue_its_external_id_or_link_names() -> None:
    assert imported_issues({"external_properties": {"id": "10100", "link": "x"}}) == {"10100"}
    # A key names the issue too (upper case), matched against the key Jira answered for the link's id.
    assert imported_issues(
        {"external_properties": {"id": "SHOP-1", "link": "https://j/rest/api/2/issue/7"}}
    ) == {"7", "SHOP-1"}
    assert imported_issues({"external_properties": {"id": "x", "link": "https://j/browse/shop_2-14"}}) == {
        "SHOP_2-14"
    }
    assert imported_issues({"external_properties": {"id": "SHOP-", "link": "https://j/browse/-1"}}) == set()
    assert imported_issues({"external_properties": None}) == imported_issues({}) == set()
    assert imported_issues({"external_properties": [{"id": "5"}, {"link": "https://j/issue/6?x=1"}]}) == {
        "5",
        "6",
    }
    # Imported twice: the oldest.
    found = imported_by_issue([{"id": 9, "external_properties": {"id": "1"}},
                               {"id": 3, "external_properties": {"id": "1"}}])  # fmt: skip
    assert found["1"]["id"] == 3


def test_an_executions_issue_links_are_on_the_run_its_log_is_on() -> None:
    execution = {"id": 5, "key": "P-E1", "testCase": {"id": 100}, "testCycle": None,
                 "testExecutionStatus": {"id": 70}, "actualEndDate": "2024-01-01T00:10:00Z",
                 "links": {"issues": [issue(1, None), issue(2)]}}  # fmt: skip
    run = ("test-runs", 950)
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(), id_=100)],
            "test_executions": [raw("P-E1", execution, id_=5)],
        },
        {
            "test_case": {900: qtest_case({})},
            "test_run": {950: {"id": 950}},
            "test_log": {960: {"id": 960, "_run_id": 950, "status": {"name": "Passed"}}},
            "requirement": {
                71: requirement(71, 1, {run}, "P-E1"),
                72: requirement(72, 2, {("test-cases", 900)}),
            },
        },
        {"test_case": {"P-T1": 900}, "test_run": {"adhoc:P|P-T1": 950}, "test_log": {"P-E1": 960}},
        names={"statuses": {70: "Pass"}},
        seeds=Seeds(statuses={"TEST_EXECUTION": {"Pass": "Passed"}}),
    )
    [line] = lines_of(ledger, "links.issues")
    assert (line.object_type, line.object_key, line.value) == ("test execution", "P-E1", "2 (COVERAGE)")
    assert "not linked to the test run" in line.detail


def test_each_web_link_is_a_line_of_the_web_links_property(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(test_proof_compare, "CASE_FIELDS", [*test_proof_compare.CASE_FIELDS, WEB_LINKS_FIELD])
    links = {"webLinks": [{"url": "https://a.example", "description": "spec", "type": "RELATED"},
                          {"url": "https://b.example"}, {"url": "https://c.example", "description": "Ticket"}]}  # fmt: skip
    held = "https://a.example (spec) [RELATED]\nhttps://b.example\nhttps://c.example (other)"
    ledger = prove_offline(
        {"test_cases": [raw("P-T1", case_payload(links=links), id_=100)]},
        {"test_case": {900: qtest_case({6: held})}},
        {"test_case": {"P-T1": 900}},
        seeds=Seeds(labels={("TestCase", "webLinks"): "Web Links"}),
    )
    [line] = lines_of(ledger, "links.webLinks")
    assert (line.value, line.reason) == ("https://c.example (Ticket)", Reason.DIFFERS)


def jira_answer(issue_id: int, key: str, summary: str) -> Any:
    """A row of zephyr_raw.jira_issues: Jira's IssueBean for the issue, as bulkfetch answers it."""
    bean = {"expand": "", "id": str(issue_id), "self": f"https://jira.invalid/rest/api/3/issue/{issue_id}",
            "key": key, "fields": {"summary": summary}}  # fmt: skip
    return raw(key, bean, id_=issue_id)


def test_with_jiras_answers_the_requirement_is_named_by_key_and_summary_or_found_by_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        test_proof_compare, "CASE_FIELDS", [*test_proof_compare.CASE_FIELDS, JIRA_ISSUES_FIELD]
    )
    case = ("test-cases", 900)
    issues = [issue(5), issue(6), issue(7, "BLOCKS"), issue(8)]
    urls = ", ".join(link["target"] for link in issues)
    named = requirement(75, 5, {case}, "P-T1 (COVERAGE)")
    ledger = prove_offline(
        {
            "test_cases": [raw("P-T1", case_payload(links={"issues": issues}), id_=100)],
            # Jira answered 5, 7 and 8 (the summary's spaces trimmed); 6 it did not return.
            "jira_issues": [
                jira_answer(5, "P-5", " Refund fails for EUR "),
                jira_answer(7, "P-7", "Coupons"),
                jira_answer(8, "P-8", "Gone"),
            ],
        },
        {
            "test_case": {900: qtest_case({7: urls})},
            "requirement": {
                75: {**named, "name": "P-5 Refund fails for EUR"},
                # Not returned by Jira: the id's name.
                76: requirement(76, 6, {case}, "P-T1 (COVERAGE)"),
                # An integration that keeps only the key: found by the key Jira answered.
                77: imported(77, "P-7 Coupons", {case}, id="p-7"),
                # Still the name of a run before Jira was configured: not the one Jira's answer gives.
                78: requirement(78, 8, {case}, "P-T1 (COVERAGE)"),
            },
        },
        {"test_case": {"P-T1": 900}},
        seeds=Seeds(labels={("TestCase", "issueLinks"): "Jira Issues"}),
    )
    lines = {(line.field, line.value): line for line in ledger.lines if line.field.startswith("links.issues")}
    assert set(lines) == {("links.issues.type", "7 (BLOCKS)"), ("links.issues", "8 (COVERAGE)")}
    assert lines[("links.issues.type", "7 (BLOCKS)")].reason is Reason.NOT_CARRIED
    assert "holds no requirement 'P-8 Gone'" in lines[("links.issues", "8 (COVERAGE)")].detail
