"""Jira's answers for the issues Zephyr links to: the Jira sandbox's ``issue/bulkfetch`` and `JiraClient`
over real HTTP, the name a requirement takes from an answer, and how an imported requirement is found by
key.

The sandbox serves the generated tenant's linked issues keyed after their project (every ninth hidden, as
an issue deleted or not visible to the token would be); the client asks 100 ids a call and tells the
issues Jira returned from the ids it named in ``issueErrors`` and those it left out.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from zephyr_qtest.lib.jira import ISSUE_BATCH_SIZE, JiraClient
from zephyr_qtest.lib.jira_issues import issue_names, requirement_name_of
from zephyr_qtest.lib.qtest.kinds.requirement import imported_by_issue, row_issue_refs
from zephyr_qtest.sandbox.jira.issues import HIDDEN_EVERY, issues_of
from zephyr_qtest.sandbox.jira.serve import JiraSandboxHandle, start_jira_in_thread
from zephyr_qtest.sandbox.zephyr.generator import generate


@pytest.fixture(scope="module")
def jira() -> JiraSandboxHandle:
    with start_jira_in_thread(seed=7, size="tiny") as handle:
        yield handle


def test_every_linked_issue_has_a_key_of_its_project_and_a_summary() -> None:
    document = generate(7, "tiny")
    issues = issues_of(document)
    linked = {
        str(link["issueId"])
        for collection in ("testcases", "testexecutions", "testcycles", "testplans")
        for item in document[collection]
        for link in (item.get("links") or {}).get("issues") or []
    }
    assert linked <= set(issues)
    assert {issue.key.split("-")[0] for issue in issues.values()} == {p["key"] for p in document["projects"]}
    assert all(issue.summary for issue in issues.values())
    hidden = [issue for issue in issues.values() if not issue.visible]
    assert hidden and all(int(issue.key.rsplit("-", 1)[1]) % HIDDEN_EVERY == 0 for issue in hidden)
    # The same tenant, the same keys.
    assert issues == issues_of(generate(7, "tiny"))


def test_bulkfetch_answers_issue_beans_in_id_order_and_leaves_out_what_it_does_not_show(
    jira: JiraSandboxHandle,
) -> None:
    visible = [issue for issue in jira.issues.values() if issue.visible][:3]
    hidden = next(issue for issue in jira.issues.values() if not issue.visible)
    asked = [visible[2].issue_id, hidden.issue_id, visible[0].key.lower(), "999999", visible[1].issue_id]
    answer = httpx.post(
        f"{jira.base_url}/rest/api/3/issue/bulkfetch",
        json={"issueIdsOrKeys": asked, "fields": ["summary"]},
        headers=jira.headers,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["issueErrors"] == []
    assert [bean["key"] for bean in body["issues"]] == [issue.key for issue in visible]
    assert body["issues"][0]["fields"] == {"summary": visible[0].summary}
    assert set(body["issues"][0]) == {"expand", "id", "self", "key", "fields"}
    # More than 100 ids without named fields is refused, as Jira refuses it; so is a missing list.
    many = [str(n) for n in range(101)]
    for payload in ({"issueIdsOrKeys": many}, {"fields": ["summary"]}):
        refused = httpx.post(
            f"{jira.base_url}/rest/api/3/issue/bulkfetch", json=payload, headers=jira.headers
        )
        assert refused.status_code == 400 and refused.json()["errorMessages"]
    unauthorized = httpx.post(f"{jira.base_url}/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": ["1"]})
    assert unauthorized.status_code == 401


def test_the_client_asks_a_hundred_ids_a_call_and_tells_returned_failed_and_absent(
    jira: JiraSandboxHandle,
) -> None:
    ids = sorted(jira.issues, key=int)
    assert len(ids) > 2 * ISSUE_BATCH_SIZE  # several calls
    failing = next(i for i in reversed(ids) if jira.issues[i].visible)
    jira.sandbox.failing_issue_ids = {failing}
    before = jira.stats()["by_path"].get("issue/bulkfetch", 0)

    async def ask():  # type: ignore[no-untyped-def]
        async with JiraClient(jira.base_url, jira.email, jira.token) as client:
            return await client.issues([*ids, "424242", ids[0]])

    try:
        answer = asyncio.run(ask())
    finally:
        jira.sandbox.failing_issue_ids = set()
    visible = {i for i, issue in jira.issues.items() if issue.visible}
    assert set(answer.issues) == visible - {failing}
    assert answer.issues[ids[0]]["key"] == jira.issues[ids[0]].key
    assert set(answer.errors) == {failing}
    assert set(answer.absent) == (set(ids) - visible) | {"424242"}
    # Each id once (the repeated one too), 100 to a call; the one in issueErrors asked once more.
    calls = jira.stats()["by_path"]["issue/bulkfetch"] - before
    assert calls == -(-(len(ids) + 1) // ISSUE_BATCH_SIZE) + 1


def test_a_requirement_is_named_key_and_summary_trimmed_and_cut_to_qtests_length() -> None:
    bean = {"id": "5", "key": "PAY-12", "fields": {"summary": "  Refund fails for EUR\n"}}
    assert requirement_name_of(bean) == "PAY-12 Refund fails for EUR"
    assert requirement_name_of({"key": "PAY-13", "fields": {"summary": " "}}) == "PAY-13"
    assert (
        requirement_name_of({"key": "PAY-14", "fields": {"summary": "x" * 600}})
        == ("PAY-14 " + "x" * 600)[:500]
    )
    assert requirement_name_of({"id": "6", "fields": {"summary": "no key"}}) is None
    assert issue_names([(5, bean), (6, {"fields": {}}), (None, bean)]) == {"5": "PAY-12 Refund fails for EUR"}


def test_an_imported_requirement_is_found_by_the_issues_key_too() -> None:
    imported = imported_by_issue(
        [
            {"id": 3, "external_properties": {"id": "pay-12"}},
            {"id": 4, "external_properties": {"id": "", "link": "https://acme.atlassian.net/browse/PAY-13"}},
        ]
    )
    row = {"source_key": "jira-issue:80001", "issue_id": 80001, "issue_key": "PAY-12"}
    assert row_issue_refs(row) == ["80001", "PAY-12"]
    assert next(imported[ref] for ref in row_issue_refs(row) if ref in imported)["id"] == 3
    assert imported["PAY-13"]["id"] == 4
    # Without Jira's answer the row names the id only: a key-only import matches nothing.
    assert row_issue_refs({"source_key": "jira-issue:80001", "issue_id": 80001, "issue_key": None}) == [
        "80001"
    ]
