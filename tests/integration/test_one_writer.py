"""One project, one writer: two runs that publish the same project to the same qTest site at once never
both write. Through the real publishing path (``loader.publish_stage``: the advisory lock on the stage's
id-map connection, the id map, the qTest sandbox), two runs as two asyncio tasks, each with its own
store and client, as two Dagster runs would have.

Proves: started together, every object is in qTest once and the objects created by both runs add up to
one migration; a run that finds the project held waits, naming the run that holds it, and then goes on
from what that run recorded (creating nothing); told to stop, it stops before any call to qTest, naming
that run. And the Dagster instance the CLI sets up queues one run per partition.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tests.graph_helpers import TransformedDatabase
from tests.integration.test_publish import expected_counts
from zephyr_qtest.lib.qtest import reconcile
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.comparison import Reconciliation
from zephyr_qtest.lib.qtest.id_map import IdMap, site_of
from zephyr_qtest.lib.qtest.kinds import stages
from zephyr_qtest.lib.qtest.loader import publish_stage
from zephyr_qtest.lib.qtest.one_writer import ProjectBusy, WhenBusy, Writer
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread

REPO = Path(__file__).resolve().parents[2]


async def migrate(
    database_url: str, qtest: QTestSandboxHandle, project: str, writer: Writer, only: tuple[str, ...] = ()
) -> dict[str, dict[str, Any]]:
    """One run: every publishing stage of `project` in load order (or `only` those), as a run of the
    migration job does; its stages' summaries."""
    summaries: dict[str, dict[str, Any]] = {}
    with Store(database_url) as store:
        async with QtestClient(qtest.base_url, qtest.token) as client:
            for stage in only or stages():
                stage_writer = Writer(writer.run_id, stage, writer.when_busy, writer.log)
                summary, _, _ = await publish_stage(stage, store, client, project, writer=stage_writer)
                summaries[stage] = summary.as_metadata()
    return summaries


def project_id(database_url: str, site: str, project: str) -> int:
    with Store(database_url) as store, store.connection() as conn:
        row = conn.execute(
            "select qtest_id from migration.id_map where target_site = %s and project_key = %s "
            "and object_type = 'project'",
            (site_of(site), project),
        ).fetchone()
    assert row, project
    return int(row[0])


@pytest.fixture
def target(transformed_database: TransformedDatabase, tmp_path: Path) -> Any:
    """A copy of the session's transformed database and a qTest sandbox nothing was published to."""
    with start_qtest_in_thread(tmp_path / "qtest", seed=5) as qtest:
        yield transformed_database.copy("zq_one_writer"), qtest, transformed_database.projects[0]


def reconciled(database_url: str, qtest: QTestSandboxHandle, project: str) -> Reconciliation:
    """qTest read back through its API and compared with the marts (a duplicate is "not accounted for")."""

    async def read_back() -> Reconciliation:
        with Store(database_url) as store:
            async with QtestClient(qtest.base_url, qtest.token) as client:
                return await reconcile.reconcile(store, client, project)

    return asyncio.run(read_back())


def test_two_runs_started_together_leave_every_object_once(target: Any) -> None:
    database_url, qtest, project = target
    said: list[str] = []

    async def both() -> list[dict[str, dict[str, Any]]]:
        return await asyncio.gather(
            migrate(database_url, qtest, project, Writer("run-A", log=said.append)),
            migrate(database_url, qtest, project, Writer("run-B", log=said.append)),
        )

    first, second = asyncio.run(both())

    outcome = reconciled(database_url, qtest, project)
    assert outcome.ok, {kind: (r.expected, r.found, r.unaccounted[:5]) for kind, r in outcome.results.items()}
    for result in outcome.results.values():
        assert result.found == result.expected and not result.unaccounted, result
    expected = expected_counts(database_url, project)
    in_qtest = qtest.counts(outcome.qtest_project_id)
    # (qTest's own default module aside, which the reconciliation leaves out, every object is ours.)
    assert in_qtest["test-cases"] == expected["test_case"]
    # Between them the two runs created each object once.
    # The test-case stage also replays the cases' older versions, each an object of its own.
    expected["test_cases_stage"] = expected["test_case"] + expected["test_case_version"]
    for stage, kind in (("modules", "module"), ("test_cases", "test_cases_stage"), ("test_runs", "test_run")):
        made = [run[stage]["created"] + run[stage]["adopted"] for run in (first, second)]
        assert sum(made) == expected[kind], (stage, made)
    # One of them found the project held by the other and said whom it waited for.
    assert any(
        line.startswith(("waiting for run run-A ", "waiting for run run-B ")) and project in line
        for line in said
    ), said


def test_a_run_waits_for_the_run_that_holds_the_project_then_creates_nothing_twice(target: Any) -> None:
    database_url, qtest, project = target

    async def scenario() -> tuple[list[str], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        said: list[str] = []
        waiting = asyncio.Event()

        def log(line: str) -> None:
            said.append(line)
            if line.startswith("waiting for"):
                waiting.set()

        with Store(database_url) as store:
            held = await store.open_id_map(project, qtest.base_url)
            await held.become_sole_writer(Writer("run-A", "modules"))
            second = asyncio.create_task(
                migrate(database_url, qtest, project, Writer("run-B", log=log), only=("modules",))
            )
            await waiting.wait()
            assert not second.done()
            # What run A does while it holds the project: the whole stage, through the unlocked path.
            first = await migrate_while_held(store, qtest, project, held)
            await held.close()
            return said, first, await second

    said, first, second = asyncio.run(scenario())

    site = site_of(qtest.base_url)
    assert said[0].startswith("waiting for run run-A (stage modules, since "), said
    assert said[0].endswith(f") publishing {project} to {site}"), said
    expected = expected_counts(database_url, project)["module"]
    assert first["modules"]["created"] == expected
    assert (second["modules"]["created"], second["modules"]["skipped"]) == (0, expected)
    outcome = reconciled(database_url, qtest, project)
    modules = outcome.results["module"]
    assert (modules.expected, modules.found, modules.matched, modules.unaccounted) == (
        expected,
        expected,
        expected,
        [],
    )


async def migrate_while_held(
    store: Store, qtest: QTestSandboxHandle, project: str, held: IdMap
) -> dict[str, Any]:
    """Run A's modules stage on the id map that holds the project (so not through publish_stage, which
    would take the hold again on a connection of its own)."""
    from zephyr_qtest.lib.qtest.kinds import id_types_of_stage, kinds_of_stage
    from zephyr_qtest.lib.qtest.kinds.base import Marts, PublishContext
    from zephyr_qtest.lib.qtest.loader import resolve_project

    async with QtestClient(qtest.base_url, qtest.token) as client:
        held.qtest_project_id = await resolve_project(client, held, project, None)
        ctx = PublishContext(client, held.qtest_project_id, held, Marts(store.marts(), project))
        await ctx.load_ids(*id_types_of_stage("modules"))
        summary = await kinds_of_stage("modules")[0].publish(ctx)
    return {"modules": summary.as_metadata()}


def test_a_run_told_to_stop_names_the_run_that_holds_the_project(target: Any) -> None:
    database_url, qtest, project = target
    site = site_of(qtest.base_url)

    async def scenario() -> str:
        with Store(database_url) as store:
            held = await store.open_id_map(project, qtest.base_url)
            await held.become_sole_writer(Writer("run-A", "test_cases"))
            try:
                with pytest.raises(ProjectBusy) as stopped:
                    await migrate(database_url, qtest, project, Writer("run-B", when_busy=WhenBusy.stop))
            finally:
                await held.close()
            return str(stopped.value)

    before = qtest.counts()
    message = asyncio.run(scenario())

    assert message.startswith(
        f"{project} is being published to {site} by run run-A (stage test_cases, since "
    )
    assert "ZEPHYR_QTEST_WHEN_BUSY=wait" in message
    # It stopped before writing anything to qTest.
    assert qtest.counts() == before
    # Once run A has let go, the same run goes through.
    summaries = asyncio.run(
        migrate(database_url, qtest, project, Writer("run-B", when_busy=WhenBusy.stop), only=("modules",))
    )
    assert summaries["modules"]["created"] == expected_counts(database_url, project)["module"]


def test_the_dagster_instance_queues_one_run_per_project(tmp_path: Path) -> None:
    """The instance `make ui` and the CLI set up (the project's dagster.yaml in DAGSTER_HOME) lets one run
    of a partition at a time out of its queue."""
    shutil.copyfile(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    finally:
        instance.dispose()
    assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
