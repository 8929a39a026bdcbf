"""Jira issues the qTest site's Jira integration already imported as requirements: the migration links those
and makes no requirement of its own beside them; the others are named after Jira's answer. One generated
project (the tiny tenant's SHOP) through the whole graph (Zephyr sandbox -> raw, with the Jira sandbox
asked for the linked issues -> dbt -> qTest sandbox -> reconciliation) into a qTest project whose
integration imported some of the issues its cases and executions link to (one of them keeping only the
issue's key).

Proves, against the raw Zephyr payloads and Jira's answers as extracted: the migration's requirements are
exactly the issues that were not imported, each named '<KEY> <summary>' as Jira answered, or
'Jira issue <id>' for an issue Jira did not return; each imported requirement is linked to the qTest test case (or run) of every
Zephyr object linking its issue; the proof has no line for them (but the one link type an imported
requirement cannot hold: BLOCKS); the reconciliation's checks pass; a rollback deletes the migration's
requirements and leaves the imported ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.graph_helpers import materialize_partition
from tests.proof_helpers import ledger_of
from zephyr_qtest.defs.ingest.assets import raw_assets
from zephyr_qtest.defs.publish.qtest import publish_assets, reconciliation
from zephyr_qtest.defs.transform.dbt_models import zephyr_dbt_models
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.kinds.requirement import read_links
from zephyr_qtest.lib.qtest.kinds.vocabulary import REQUIREMENT, TEST_CASE
from zephyr_qtest.lib.qtest.rollback import plan_rollback, roll_back
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.jira.serve import start_jira_in_thread
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.serve import start_in_thread

pytestmark = pytest.mark.e2e

SEED = 7
PROJECT = "SHOP"
ALL_ASSETS = [*raw_assets, zephyr_dbt_models, *publish_assets, reconciliation]
# Issues of seed 7's SHOP the integration imported: linked by SHOP-T4 (COVERAGE), SHOP-T8 (BLOCKS),
# SHOP-T10 (COVERAGE) and the execution SHOP-E1 (COVERAGE), keyed as the Jira sandbox keys them. 80002's
# external id is its key, its external link names the id; 80056's external id and link name only its key
# (an integration that keeps keys): found through the key Jira answered.
IMPORTED = [
    {"issue_id": 80001, "key": "SHOP-1", "summary": "Sign-in"},
    {"issue_id": 80002, "key": "SHOP-2", "summary": "Basket", "id": "SHOP-2"},
    {"issue_id": 80007, "key": "SHOP-7", "summary": "Payment"},
    {"issue_id": 80056, "key": "SHOP-35", "summary": "Receipts", "id": "SHOP-35",
     "link": "https://jira.example.invalid/browse/SHOP-35"},
]  # fmt: skip
IMPORTED_IDS = {str(issue["issue_id"]) for issue in IMPORTED}


@pytest.fixture(scope="module")
def migrated(
    new_embedded_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """SHOP through the whole graph once, into a qTest project holding the imported requirements."""
    database_url = new_embedded_database("zq_imported_reqs")
    document = generate(SEED, "tiny")
    with (
        start_in_thread(fixture=document) as zephyr,
        start_jira_in_thread(document=document, seed=SEED) as jira,
        start_qtest_in_thread(tmp_path_factory.mktemp("qtest_imported"), seed=2, projects=[PROJECT]) as qtest,
    ):
        assert all(jira.issues[str(issue["issue_id"])].key == issue["key"] for issue in IMPORTED)
        project_id = next(
            p["id"]
            for p in httpx.get(f"{qtest.api_url}/projects", headers=qtest.headers, timeout=30).json()
            if p["name"] == PROJECT
        )
        # Issue id -> the requirement the integration imported for it.
        answer = qtest.import_jira_issues(project_id, IMPORTED)
        imported = {str(issue["issue_id"]): made for issue, made in zip(IMPORTED, answer, strict=True)}
        result = materialize_partition(
            ALL_ASSETS, PROJECT, database_url=database_url, zephyr=zephyr, qtest=qtest, jira=jira
        )
        yield {
            "jira": jira,
            "database_url": database_url,
            "qtest": qtest,
            "project_id": project_id,
            "imported": imported,
            "result": result,
        }


# Each Zephyr object's issue links, from the raw payloads of cases and executions.
RAW_ISSUE_LINKS = """
    select 'case', key, link from zephyr_raw.test_cases,
        jsonb_array_elements(coalesce(payload->'links'->'issues', '[]'::jsonb)) as link
    where project_key = %(p)s
    union all
    select 'execution', key, link from zephyr_raw.test_executions,
        jsonb_array_elements(coalesce(payload->'links'->'issues', '[]'::jsonb)) as link
    where project_key = %(p)s
"""


def raw_issue_links(database_url: str) -> dict[str, list[tuple[str, str, str | None]]]:
    """Jira issue id -> (object type, Zephyr key, link type) of each link, from the raw payloads."""
    links: dict[str, list[tuple[str, str, str | None]]] = {}
    with connect(database_url) as conn:
        for object_type, key, link in conn.execute(RAW_ISSUE_LINKS, {"p": PROJECT}):
            links.setdefault(str(link["issueId"]), []).append((object_type, key, link.get("type")))
    return links


def jira_answers(database_url: str) -> dict[str, dict[str, Any]]:
    """Issue id -> Jira's IssueBean as extracted (zephyr_raw.jira_issues)."""
    with connect(database_url) as conn:
        return {
            str(issue_id): payload
            for issue_id, payload in conn.execute(
                "select id, payload from zephyr_raw.jira_issues where project_key = %s", (PROJECT,)
            )
        }


def requirements(migrated: dict[str, Any]) -> tuple[dict[int, dict], dict[int, set]]:
    """qTest's requirements of the project (with their external properties), and the links of each."""
    qtest: QTestSandboxHandle = migrated["qtest"]

    async def read() -> tuple[dict[int, dict], dict[int, set]]:
        async with QtestClient(qtest.base_url, qtest.token) as client:
            found = await client.list_requirements(migrated["project_id"], external_properties=True)
            links = await read_links(client, migrated["project_id"], [r["id"] for r in found])
        return {int(r["id"]): r for r in found}, links

    return asyncio.run(read())


def case_ids(database_url: str) -> dict[str, int]:
    with connect(database_url) as conn:
        return {
            str(key): int(qtest_id)
            for key, qtest_id in conn.execute(
                "select source_key, qtest_id from migration.id_map where project_key = %s "
                "and object_type = %s and state = 'done'",
                (PROJECT, TEST_CASE.name),
            )
        }


def test_imported_issues_are_linked_and_only_the_others_get_requirements(migrated: dict[str, Any]) -> None:
    database_url = migrated["database_url"]
    issues = raw_issue_links(database_url)
    assert set(issues) >= IMPORTED_IDS
    found, links = requirements(migrated)
    imported_ids = {int(made["id"]) for made in migrated["imported"].values()}
    ours = sorted(r["name"] for requirement_id, r in found.items() if requirement_id not in imported_ids)
    # Jira answered every linked issue it shows (the sandbox's, asked independently here); the others it
    # left out, and their requirements keep the id's name.
    answers = jira_answers(database_url)
    jira = migrated["jira"]
    assert set(answers) == {issue for issue in issues if jira.issues[issue].visible}
    hidden = set(issues) - set(answers)
    assert hidden - IMPORTED_IDS
    # Each issue Jira left out is named, with why, in the extraction's issues.
    with connect(database_url) as conn:
        named = {
            ref.removeprefix("Jira issue ")
            for ref, reason in conn.execute(
                "select object_ref, reason from zephyr_raw.extraction_issues where project_key = %s "
                "and entity = 'jira_issues'",
                (PROJECT,),
            )
            if "did not return" in reason
        }
    assert named == hidden
    # No duplicate: every issue has one requirement, the imported ones the integration's (80056 by its key).
    assert len(imported_ids) == len(IMPORTED)
    assert ours == sorted(
        f"{answers[issue]['key']} {answers[issue]['fields']['summary'].strip()}"
        if issue in answers
        else f"Jira issue {issue}"
        for issue in set(issues) - IMPORTED_IDS
    )
    assert all(
        f"{jira.issues[issue].key} {jira.issues[issue].summary}" in ours
        for issue in set(answers) - IMPORTED_IDS
    )
    # Each imported requirement is linked to the qTest test case of every Zephyr case linking its issue
    # (and, for the execution's issue, to a run), unchanged.
    cases = case_ids(database_url)
    for issue, made in migrated["imported"].items():
        requirement_id = int(made["id"])
        assert found[requirement_id]["name"] == made["name"]
        for object_type, key, _ in issues[issue]:
            if object_type == "case":
                assert ("test-cases", cases[key]) in links[requirement_id], (issue, key)
            else:
                assert any(linked_type == "test-runs" for linked_type, _ in links[requirement_id]), (
                    issue,
                    key,
                )


def test_the_proof_has_no_line_for_the_imported_issues_but_a_type_they_cannot_hold(
    migrated: dict[str, Any],
) -> None:
    ledger = ledger_of(migrated["database_url"], migrated["qtest"], PROJECT)
    lines = [
        line
        for line in ledger.lines
        if line.field.startswith("links.issues") and line.value.split(" ")[0] in IMPORTED_IDS
    ]
    assert [(line.object_key, line.field, line.value, line.reason.name) for line in lines] == [
        ("SHOP-T8", "links.issues.type", "80002 (BLOCKS)", "NOT_CARRIED")
    ]
    # Every other issue's requirement is named as Jira's stored answer says (or after its id).
    assert not [line for line in ledger.lines if "holds no requirement" in (line.detail or "")]


def test_the_reconciliation_finds_every_requirement_and_link(migrated: dict[str, Any]) -> None:
    checks = {
        evaluation.check_name: evaluation.passed
        for evaluation in migrated["result"].get_asset_check_evaluations()
        if "requirement" in evaluation.check_name
    }
    assert checks and all(checks.values()), checks


def test_a_rollback_keeps_the_imported_requirements(migrated: dict[str, Any]) -> None:
    """Last in the module on purpose: it empties the project the tests above read."""
    qtest: QTestSandboxHandle = migrated["qtest"]
    with Store(migrated["database_url"]) as store:
        plan = plan_rollback(store, PROJECT, qtest.base_url)
        assert plan.kept_imported == len(IMPORTED)
        imported_ids = {int(made["id"]) for made in migrated["imported"].values()}
        assert not imported_ids & {row.qtest_id for row in plan.delete[REQUIREMENT.name]}

        async def rollback() -> None:
            async with QtestClient(qtest.base_url, qtest.token) as client:
                result = await roll_back(store, client, plan)
            assert result.ok, result.refused

        asyncio.run(rollback())
    found, _ = requirements(migrated)
    assert sorted(found) == sorted(imported_ids)
