"""The dry run and the rollback of one project, against the qTest sandbox and the shared transformed
database (the tiny tenant: modules, cases with versions and steps, releases, cycles, runs, manual and
automated logs, requirements, attachments, fields).

Proves: a dry run sends no write to qTest (the sandbox's request statistics hold no POST but searches, and
no PUT, DELETE or PATCH) and plans writes; the real run afterwards creates exactly the objects the plan
named, per type, and sends the write requests it counted; a plan after the run plans nothing. Then a
rollback killed midway (after a DELETE whose row it never removed) and run again leaves the qTest project
as it was before the migration (every object type, fields and their allowed values, requirements and
links), clears the target's id map, and keeps the project the migration only adopted.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.graph_helpers import TransformedDatabase
from tests.qtest_snapshot import api_writes, snapshot
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.id_map import site_of
from zephyr_qtest.lib.qtest.kinds import stages
from zephyr_qtest.lib.qtest.loader import publish_stage
from zephyr_qtest.lib.qtest.plan import PlanningClient, PlanWriteRefused, ProjectPlan, plan_project
from zephyr_qtest.lib.qtest.rollback import ALLOWED_VALUE, DEFAULT_MODULE, FIELD, plan_rollback, roll_back
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread


def done_rows(url: str, site: str, project: str) -> Counter[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select object_type, count(*) from migration.id_map where target_site = %s and project_key = %s "
            "and state = 'done' group by object_type",
            (site_of(site), project),
        ).fetchall()
    return Counter({object_type: count for object_type, count in rows})


async def make_plan(url: str, qtest: QTestSandboxHandle, project: str) -> ProjectPlan:
    with Store(url) as store:
        async with PlanningClient(qtest.base_url, qtest.token) as client:
            return await plan_project(store, client, project)


async def publish(url: str, qtest: QTestSandboxHandle, project: str) -> None:
    with Store(url) as store:
        async with QtestClient(qtest.base_url, qtest.token) as client:
            for stage in stages():
                summary, _, _ = await publish_stage(stage, store, client, project)
                assert not summary.pending, summary.failure_text(stage)


class KilledAfter(QtestClient):
    """A client whose process "dies" right after its `n`-th DELETE was answered (before the rollback
    could remove that object's id-map row)."""

    def __init__(self, *args: Any, n: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.left = n

    async def request(self, method: str, path_or_url: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        response = await super().request(method, path_or_url, **kwargs)
        if method.upper() == "DELETE":
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt
        return response


@pytest.fixture(scope="module")
def qtest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QTestSandboxHandle]:
    # A new site's default template: the migration creates its fields (and the rollback removes them).
    handle = start_qtest_in_thread(tmp_path_factory.mktemp("qtest-dry-run"), queue_delay_s=0.0)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def rehearsal(transformed_database: TransformedDatabase, qtest: QTestSandboxHandle) -> dict[str, Any]:
    """A project planned, published, planned again; the qTest project made before (adopted by the run)."""
    url = transformed_database.copy("zq_dry")
    project = transformed_database.projects[0]

    async def create_project() -> int:
        async with QtestClient(qtest.base_url, qtest.token) as client:
            return int((await client.create_project(project, "made before the migration"))["id"])

    project_id = asyncio.run(create_project())
    before = snapshot(qtest, project_id)
    qtest.reset_stats()
    plan = asyncio.run(make_plan(url, qtest, project))
    writes_during_plan = api_writes(qtest)
    qtest.reset_stats()
    asyncio.run(publish(url, qtest, project))
    writes_during_run = api_writes(qtest)
    after_run = snapshot(qtest, project_id)
    second_plan = asyncio.run(make_plan(url, qtest, project))
    return {
        "url": url,
        "project": project,
        "project_id": project_id,
        "before": before,
        "plan": plan,
        "writes_during_plan": writes_during_plan,
        "writes_during_run": writes_during_run,
        "after_run": after_run,
        "second_plan": second_plan,
    }


def test_a_dry_run_writes_nothing_and_the_run_after_it_makes_what_it_planned(
    rehearsal: dict[str, Any], qtest: QTestSandboxHandle
) -> None:
    plan: ProjectPlan = rehearsal["plan"]
    assert rehearsal["writes_during_plan"] == Counter()
    assert plan.qtest_project_id == rehearsal["project_id"] and plan.qtest_project_exists
    # Every kind of the tiny tenant is planned.
    for object_type in ("module", "test_case", "test_step", "test_case_version", "release", "test_cycle",
                        "test_run", "test_log", "test_step_log", "requirement", "requirement_link",
                        "attachment"):  # fmt: skip
        assert plan.creates.get(object_type), (object_type, plan.as_dict())
    assert plan.failed_total == 0, plan.failures
    assert plan.fields_to_create, "a default template lacks the Zephyr Key field"
    # The real run created exactly what the plan named, per type, with the requests it counted.
    created = done_rows(rehearsal["url"], qtest.base_url, rehearsal["project"])
    planned = Counter(plan.creates)
    assert {
        t: n for t, n in created.items() if t not in ("project", FIELD, ALLOWED_VALUE, DEFAULT_MODULE)
    } == planned
    assert created[FIELD] == len(plan.fields_to_create)
    assert created[ALLOWED_VALUE] == sum(len(added["values"]) for added in plan.values_to_add)
    assert sum(rehearsal["writes_during_run"].values()) == plan.write_requests, (
        rehearsal["writes_during_run"],
        plan.writes,
    )
    assert plan.uploads == rehearsal["after_run"]["counts"]["attachments"]
    # After the run there is nothing left to write.
    second: ProjectPlan = rehearsal["second_plan"]
    assert second.write_requests == 0 and not second.creates and not second.fields_to_create, second.as_dict()


def test_a_planning_client_refuses_a_write_it_does_not_know(qtest: QTestSandboxHandle) -> None:
    async def write() -> None:
        async with PlanningClient(qtest.base_url, qtest.token) as client:
            await client.request_json("POST", "projects/1/test-cases/1/comments", json_body={})

    with pytest.raises(PlanWriteRefused):
        asyncio.run(write())


def test_a_rollback_killed_midway_and_run_again_leaves_the_project_as_it_was(
    rehearsal: dict[str, Any], qtest: QTestSandboxHandle, tmp_path: Path
) -> None:
    url, project = rehearsal["url"], rehearsal["project"]
    with Store(url) as store:
        plan = plan_rollback(store, project, qtest.base_url)
        assert plan.qtest_project_id == rehearsal["project_id"]
        assert plan.total > 0 and not plan.pending
        assert "the qTest project itself" not in plan.confirmation()  # adopted, not created
        assert f"{len(plan.delete['test_case'])} test_case" in plan.confirmation()

        async def killed() -> None:
            async with KilledAfter(qtest.base_url, qtest.token, n=7) as client:
                await roll_back(store, client, plan)

        with pytest.raises(KeyboardInterrupt):
            asyncio.run(killed())
        partway = snapshot(qtest, rehearsal["project_id"])
        assert partway != rehearsal["before"] and partway != rehearsal["after_run"]

        again = plan_rollback(store, project, qtest.base_url)
        assert again.total == plan.total - 6  # the 7th was deleted, its row left behind

        async def finish() -> Any:
            async with QtestClient(qtest.base_url, qtest.token) as client:
                return await roll_back(store, client, again)

        result = asyncio.run(finish())
    assert result.ok, result.refused
    assert sum(result.already_gone.values()) >= 1  # answered 404: counted as done
    assert snapshot(qtest, rehearsal["project_id"]) == rehearsal["before"]
    assert done_rows(url, qtest.base_url, project) == Counter()
