"""The requirement kind against the real qTest sandbox and a real id map: a requirement or a link whose
answer was lost is found again (never made twice), a run killed between its pending row and the answer
(kill -9) is completed by the next run without a duplicate, and a re-run sends nothing. Requirements the
site's Jira integration imported are adopted and linked, never duplicated, never changed, and a rollback
leaves them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.exactly_once import PublishSummary
from zephyr_qtest.lib.qtest.id_map import IdMap
from zephyr_qtest.lib.qtest.kinds.base import Marts, PublishContext, Row
from zephyr_qtest.lib.qtest.kinds.requirement import publish_requirements, read_links
from zephyr_qtest.lib.qtest.kinds.vocabulary import PROJECT as PROJECT_TYPE
from zephyr_qtest.lib.qtest.kinds.vocabulary import REQUIREMENT, REQUIREMENT_LINK, TEST_CASE, TEST_RUN
from zephyr_qtest.lib.qtest.rollback import plan_rollback, roll_back
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread

PROJECT = "REQ"


class Rows:
    """The two marts of the kind, as rows written here (the MartSource protocol)."""

    def __init__(self, tables: dict[str, list[Row]]) -> None:
        self.tables = tables

    def rows(self, table: str, project_key: str, order_by: Sequence[str]) -> list[Row]:
        return list(self.tables.get(table, []))

    def attachment_contents(self) -> Any:
        return nullcontext()


def requirement(issue: int) -> Row:
    return {
        "source_key": f"jira-issue:{issue}",
        "issue_id": issue,
        "name": f"Jira issue {issue}",
        "description": f"<p><b>Zephyr details</b><br>Linked from: {PROJECT}-T1 (COVERAGE)</p>",
        "load_order": 0,
        "payload_hash": f"h{issue}",
    }


def link(issue: int, object_type: str, object_key: str) -> Row:
    return {
        "source_key": f"jira-issue:{issue}|{object_type}:{object_key}",
        "parent_source_key": f"jira-issue:{issue}",
        "qtest_object_type": object_type,
        "object_source_key": object_key,
        "load_order": 0,
        "payload_hash": f"l{issue}{object_type}",
    }


TABLES = {
    "qtest_requirements": [requirement(1), requirement(2)],
    "qtest_requirement_links": [
        link(1, "test-cases", f"{PROJECT}-T1"),
        link(1, "test-runs", f"C1|{PROJECT}-T1"),
        link(2, "test-cases", f"{PROJECT}-T1"),
    ],
}


@pytest.fixture(scope="module")
def qtest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QTestSandboxHandle]:
    with start_qtest_in_thread(tmp_path_factory.mktemp("qtest_req"), seed=3, projects=[PROJECT]) as handle:
        yield handle


@pytest.fixture(scope="module")
def target(qtest: QTestSandboxHandle) -> dict[str, int]:
    return make_target(qtest, PROJECT)


def make_target(qtest: QTestSandboxHandle, name: str) -> dict[str, int]:
    """The project with one test case and one run of it, made directly through the API (the project too,
    when the sandbox did not start with it)."""
    with httpx.Client(base_url=qtest.api_url, headers=qtest.headers, timeout=10) as api:
        project_id = next((p["id"] for p in api.get("/projects").json() if p["name"] == name), None)
        if project_id is None:
            made = api.post("/projects", json={"name": name})
            made.raise_for_status()
            project_id = made.json()["id"]
        case = api.post(f"/projects/{project_id}/test-cases", json={"name": "Login", "properties": []})
        case.raise_for_status()
        cycle = api.post(f"/projects/{project_id}/test-cycles", params={"parentId": 0, "parentType": "root"},
                         json={"name": "C1"})  # fmt: skip
        cycle.raise_for_status()
        run = api.post(
            f"/projects/{project_id}/test-runs",
            params={"parentId": cycle.json()["id"], "parentType": "test-cycle"},
            json={"name": "Login", "test_case": {"id": case.json()["id"]}, "properties": []},
        )
        run.raise_for_status()
    return {"project": project_id, "case": case.json()["id"], "run": run.json()["id"]}


@pytest.fixture
def database_url(new_embedded_database: Callable[[str], str]) -> str:
    return new_embedded_database("zq_requirements")


async def publish(
    database_url: str,
    qtest: QTestSandboxHandle,
    target: dict[str, int],
    project: str = PROJECT,
    tables: dict[str, list[Row]] = TABLES,
) -> PublishSummary:
    id_map = await IdMap.open(Store(database_url), project, qtest.base_url)
    try:
        async with QtestClient(qtest.base_url, qtest.token) as client:
            ctx = PublishContext(client, target["project"], id_map, Marts(Rows(tables), project))
            ctx.ids[TEST_CASE.name][f"{PROJECT}-T1"] = target["case"]
            ctx.ids[TEST_RUN.name][f"C1|{PROJECT}-T1"] = target["run"]
            await ctx.load_ids(REQUIREMENT.name, REQUIREMENT_LINK.name)
            return await publish_requirements(ctx)
    finally:
        await id_map.close()


def held(qtest: QTestSandboxHandle, target: dict[str, int]) -> tuple[list[str], dict[str, set]]:
    """qTest's requirements by name, and the links of each."""

    async def read() -> tuple[list[str], dict[str, set]]:
        async with QtestClient(qtest.base_url, qtest.token) as client:
            requirements = await client.list_requirements(target["project"], external_properties=True)
            links = await read_links(client, target["project"], [r["id"] for r in requirements])
        return sorted(r["name"] for r in requirements), {r["name"]: links[r["id"]] for r in requirements}

    return asyncio.run(read())


def test_lost_answers_and_a_killed_run_make_nothing_twice(
    database_url: str, qtest: QTestSandboxHandle, target: dict[str, int], tmp_path: Path
) -> None:
    case, run = ("test-cases", target["case"]), ("test-runs", target["run"])

    # A run killed after its pending row of requirement 2 and after qTest made it (kill -9 before the
    # answer was recorded): the id map says pending, qTest holds it.
    async def killed() -> None:
        id_map = await IdMap.open(Store(database_url), PROJECT, qtest.base_url)
        try:
            await id_map.pending(REQUIREMENT.name, "jira-issue:2", "h2")
        finally:
            await id_map.close()

    asyncio.run(killed())
    httpx.post(
        f"{qtest.api_url}/projects/{target['project']}/requirements",
        headers=qtest.headers,
        json={"name": "Jira issue 2", "properties": []},
    ).raise_for_status()
    # The answers of the next two writes to requirements are lost: requirement 1's create, then a link.
    qtest.set_faults(lose_next=2, lost_answer_match="/requirements")
    try:
        summary = asyncio.run(publish(database_url, qtest, target))
    finally:
        qtest.set_faults(lose_next=0, lost_answer_match="")
    assert summary.failures == []
    # Requirement 1 and its first link found again after their lost answers, requirement 2 after the kill.
    assert (summary.created, summary.adopted) == (2, 3), summary
    names, links = held(qtest, target)
    assert names == ["Jira issue 1", "Jira issue 2"]
    assert links == {"Jira issue 1": {case, run}, "Jira issue 2": {case}}

    again = asyncio.run(publish(database_url, qtest, target))
    assert (again.created, again.adopted, again.updated, again.skipped) == (0, 0, 0, 5)
    assert held(qtest, target) == (names, links)


IMPORTED_PROJECT = "REQIMP"
# Issues 11 and 12 were imported by the site's Jira integration (12's external id is its key: its link
# names the id); issue 13 was not.
IMPORTED_ISSUES = [
    {"issue_id": 11, "key": "SHOP-1", "summary": "Checkout"},
    {"issue_id": 12, "key": "SHOP-2", "summary": "Refunds", "id": "SHOP-2"},
]
IMPORTED_TABLES = {
    "qtest_requirements": [requirement(11), requirement(12), requirement(13)],
    "qtest_requirement_links": [
        link(11, "test-cases", f"{PROJECT}-T1"),
        link(11, "test-runs", f"C1|{PROJECT}-T1"),
        link(12, "test-cases", f"{PROJECT}-T1"),
        link(13, "test-cases", f"{PROJECT}-T1"),
    ],
}


def test_requirements_jira_imported_are_linked_not_duplicated_and_kept_by_a_rollback(
    database_url: str, qtest: QTestSandboxHandle
) -> None:
    target = make_target(qtest, IMPORTED_PROJECT)
    imported = {r["name"]: r for r in qtest.import_jira_issues(target["project"], IMPORTED_ISSUES)}
    assert set(imported) == {"SHOP-1 Checkout", "SHOP-2 Refunds"}
    case, run = ("test-cases", target["case"]), ("test-runs", target["run"])

    # A run killed after the pending row of issue 11 (kill -9): the next one adopts the import all the same.
    async def killed() -> None:
        id_map = await IdMap.open(Store(database_url), IMPORTED_PROJECT, qtest.base_url)
        try:
            await id_map.pending(REQUIREMENT.name, "jira-issue:11", "h11")
        finally:
            await id_map.close()

    asyncio.run(killed())
    # The answer of the first link is lost: it is found again, not made twice.
    qtest.set_faults(lose_next=1, lost_answer_match="/link")
    try:
        summary = asyncio.run(publish(database_url, qtest, target, IMPORTED_PROJECT, IMPORTED_TABLES))
    finally:
        qtest.set_faults(lose_next=0, lost_answer_match="")
    assert summary.failures == []
    # Requirements: 11 and 12 adopted, 13 created; links: one found again, three made.
    assert (summary.created, summary.adopted) == (1 + 3, 2 + 1), summary
    names, links = held(qtest, target)
    assert names == ["Jira issue 13", "SHOP-1 Checkout", "SHOP-2 Refunds"]
    assert links == {"SHOP-1 Checkout": {case, run}, "SHOP-2 Refunds": {case}, "Jira issue 13": {case}}

    # A changed description is not written into the integration's requirement (nor anything else).
    changed = {**IMPORTED_TABLES, "qtest_requirements": [{**row, "payload_hash": f"{row['payload_hash']}'"}
                                                          for row in IMPORTED_TABLES["qtest_requirements"]]}  # fmt: skip
    again = asyncio.run(publish(database_url, qtest, target, IMPORTED_PROJECT, changed))
    assert (again.created, again.adopted, again.updated, again.skipped) == (0, 0, 3, 4)
    assert held(qtest, target) == (names, links)
    with httpx.Client(base_url=qtest.api_url, headers=qtest.headers, timeout=10) as api:
        for name, before in imported.items():
            after = api.get(f"/projects/{target['project']}/requirements/{before['id']}",
                            params={"includeExternalProperties": "true"}).json()  # fmt: skip
            assert (after["name"], after["properties"], after["external_properties"]) == (
                name, before["properties"], before["external_properties"])  # fmt: skip

    # A rollback deletes the requirement the migration made and keeps the imported ones.
    async def record_project() -> None:
        id_map = await IdMap.open(Store(database_url), IMPORTED_PROJECT, qtest.base_url)
        try:
            await id_map.done(PROJECT_TYPE.name, IMPORTED_PROJECT, target["project"], None, {})
        finally:
            await id_map.close()

    asyncio.run(record_project())
    with Store(database_url) as store:
        plan = plan_rollback(store, IMPORTED_PROJECT, qtest.base_url)
        assert [row.source_key for row in plan.delete[REQUIREMENT.name]] == ["jira-issue:13"]
        assert plan.kept_imported == 2
        assert "2 requirements the site's Jira integration imported stay" in plan.confirmation()

        async def rollback() -> None:
            async with QtestClient(qtest.base_url, qtest.token) as client:
                result = await roll_back(store, client, plan)
            assert result.ok and result.deleted[REQUIREMENT.name] == 1

        asyncio.run(rollback())
    assert held(qtest, target)[0] == ["SHOP-1 Checkout", "SHOP-2 Refunds"]


JIRA_PROJECT = "REQJIRA"
# The integration keeps only keys (external id and link name the key, not the id): without Jira's answer
# nothing matches them.
KEY_ONLY = [
    {
        "issue_id": 22,
        "key": "SHOP-22",
        "summary": "Coupons",
        "id": "SHOP-22",
        "link": "https://j/browse/SHOP-22",
    },
    {
        "issue_id": 23,
        "key": "SHOP-23",
        "summary": "Receipts",
        "id": "SHOP-23",
        "link": "https://j/browse/SHOP-23",
    },
]


def answered(issue: int, key: str, summary: str) -> Row:
    """The row once Jira answered the issue (qtest_requirements: its name, key and a new hash)."""
    return {**requirement(issue), "issue_key": key, "name": f"{key} {summary}", "payload_hash": f"j{issue}"}


def test_once_jira_answers_requirements_are_renamed_and_an_import_is_found_by_key(
    database_url: str, qtest: QTestSandboxHandle
) -> None:
    target = make_target(qtest, JIRA_PROJECT)
    imported = {r["name"]: r["id"] for r in qtest.import_jira_issues(target["project"], KEY_ONLY)}
    case = ("test-cases", target["case"])
    # A run without Jira: the ids' names; the key-only import of 22 matches nothing.
    before = {
        "qtest_requirements": [requirement(21), requirement(22)],
        "qtest_requirement_links": [
            link(21, "test-cases", f"{PROJECT}-T1"),
            link(22, "test-cases", f"{PROJECT}-T1"),
        ],
    }
    first = asyncio.run(publish(database_url, qtest, target, JIRA_PROJECT, before))
    assert (first.created, first.adopted, first.failures) == (4, 0, [])
    # With Jira's answers: the two are renamed (updates, their links untouched); 23, linked since, is
    # the key-only import, adopted by its key.
    after = {
        "qtest_requirements": [
            answered(21, "SHOP-21", "Login fails"),
            answered(22, "SHOP-22", "Coupons"),
            answered(23, "SHOP-23", "Receipts"),
        ],
        "qtest_requirement_links": [
            *before["qtest_requirement_links"],
            link(23, "test-cases", f"{PROJECT}-T1"),
        ],
    }
    second = asyncio.run(publish(database_url, qtest, target, JIRA_PROJECT, after))
    assert (second.created, second.adopted, second.updated, second.skipped) == (1, 1, 2, 2), second
    names, links = held(qtest, target)
    # 22's requirement of ours keeps its place beside the import (the choice is made when first published).
    assert names == ["SHOP-21 Login fails", "SHOP-22 Coupons", "SHOP-22 Coupons", "SHOP-23 Receipts"]
    assert links["SHOP-21 Login fails"] == links["SHOP-23 Receipts"] == {case}
    assert held_links_of(qtest, target, imported["SHOP-23 Receipts"]) == {case}
    assert held_links_of(qtest, target, imported["SHOP-22 Coupons"]) == set()


def held_links_of(qtest: QTestSandboxHandle, target: dict[str, int], requirement_id: int) -> set:
    async def read() -> set:
        async with QtestClient(qtest.base_url, qtest.token) as client:
            return (await read_links(client, target["project"], [requirement_id])).get(requirement_id, set())

    return asyncio.run(read())
