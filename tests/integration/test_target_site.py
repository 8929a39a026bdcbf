"""From rehearsal to live: the id map belongs to a target. A project is migrated through Dagster into one
qTest sandbox (the rehearsal), then, with the same staging database, into a second one (the live site,
another server with its own state).

Proves: the second site gets every object (read back through its API by the reconciliation, counted by
the sandbox), none of the first site's ids are used there, and the first site's map rows are exactly as
they were; the report and the CLI's summary name the site and the qTest project they are about. And an id
map of the earlier version (no site) is upgraded in place: its rows are adopted only by the site that
still holds their qTest project, and left aside, untouched, by another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.graph_helpers import TransformedDatabase
from tests.integration.test_publish import PUBLISH_ASSETS, expected_counts, failures, proof_of, published, run
from zephyr_qtest.cli import print_reports
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.id_map import NO_SITE, site_of
from zephyr_qtest.lib.qtest.loader import adopt_rows_without_site
from zephyr_qtest.lib.qtest.one_writer import Writer
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle

pytestmark = pytest.mark.e2e

# migration.id_map as the version before target sites created it.
EARLIER_ID_MAP_DDL = """
create schema if not exists migration;
create table migration.id_map (
    project_key   text not null,
    object_type   text not null,
    source_key    text not null,
    qtest_id      bigint,
    payload_hash  text,
    state         text not null check (state in ('pending', 'done', 'failed')),
    updated_at    timestamptz not null default now(),
    qtest_project_id bigint,
    detail        jsonb not null default '{}'::jsonb,
    error         text,
    primary key (project_key, object_type, source_key)
);
"""
COLUMNS = "project_key, object_type, source_key, qtest_id, payload_hash, state, updated_at, qtest_project_id, detail, error"


def map_rows(database_url: str, site: str) -> list[tuple[Any, ...]]:
    """Every id-map row of `site`, whole (its update time included), in key order."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            f"select {COLUMNS} from migration.id_map where target_site = %s order by 1, 2, 3",
            (site_of(site),),
        ).fetchall()


@pytest.fixture(scope="module")
def two_sites(
    transformed_database: TransformedDatabase,
    shared_zephyr: ZephyrSandboxHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """One project migrated into the rehearsal site, then into the live site, with one staging database."""
    database_url = transformed_database.copy("zq_target")
    project = transformed_database.projects[0]
    with (
        start_qtest_in_thread(tmp_path_factory.mktemp("qtest_rehearsal"), seed=1) as rehearsal,
        start_qtest_in_thread(tmp_path_factory.mktemp("qtest_live"), seed=2) as live,
    ):
        first = run(database_url, project, shared_zephyr, rehearsal, PUBLISH_ASSETS)
        assert first.success, failures(first)
        before = map_rows(database_url, rehearsal.base_url)
        second = run(database_url, project, shared_zephyr, live, PUBLISH_ASSETS)
        yield {
            "database_url": database_url,
            "project": project,
            "rehearsal": rehearsal,
            "live": live,
            "rehearsal_rows_before": before,
            "live_result": second,
        }


def test_the_live_site_gets_every_object_of_its_own(two_sites: dict[str, Any]) -> None:
    result, live = two_sites["live_result"], two_sites["live"]
    database_url, project = two_sites["database_url"], two_sites["project"]
    assert result.success and failures(result) == [], failures(result)
    metadata = published(result)
    for stage in ("modules", "test_cases", "test_cycles", "test_runs", "test_logs", "attachments"):
        # Nothing skipped as done: every object was created on the live site.
        assert metadata[stage]["skipped"] == 0 and metadata[stage]["created"] > 0, (stage, metadata[stage])
        assert metadata[stage]["qtest_site"] == site_of(live.base_url)
    # The reconciliation read the live site back through its API: every object there once, equal.
    assert proof_of(result, database_url)["loader_check_equal"] is True, metadata["reconciliation"]["summary"]
    live_rows = map_rows(database_url, live.base_url)
    (project_row,) = [row for row in live_rows if row[1] == "project"]
    live_project_id = project_row[3]
    counts = live.counts(live_project_id)
    expected = expected_counts(database_url, project)
    assert counts["test-cases"] == expected["test_case"] and counts["test-runs"] == expected["test_run"]
    assert counts["test-logs"] == expected["test_log"]
    # No id of the rehearsal's is used on the live site.
    rehearsal_ids = {row[3] for row in two_sites["rehearsal_rows_before"] if row[3] is not None}
    live_ids = {row[3] for row in live_rows if row[3] is not None}
    assert live_ids and not live_ids & rehearsal_ids
    assert {row[7] for row in live_rows if row[1] != "project"} == {live_project_id}
    assert len(live_rows) == len(two_sites["rehearsal_rows_before"])


def test_the_rehearsal_map_is_untouched(two_sites: dict[str, Any]) -> None:
    before = two_sites["rehearsal_rows_before"]
    assert before and all(row[5] == "done" for row in before)
    assert map_rows(two_sites["database_url"], two_sites["rehearsal"].base_url) == before


def test_the_report_and_the_summary_name_the_target(
    two_sites: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    database_url, project, live = two_sites["database_url"], two_sites["project"], two_sites["live"]
    site = site_of(live.base_url)
    live_project_id = next(row[3] for row in map_rows(database_url, site) if row[1] == "project")
    target = f"qTest site {site}, project '{project}' (id {live_project_id})"
    reconciliation = published(two_sites["live_result"])["reconciliation"]
    assert reconciliation["target"] == target
    assert f"Target: {target}." in Path(reconciliation["report"]).with_suffix(".md").read_text()

    this_run = {project: two_sites["live_result"].run_id}
    assert print_reports(database_url, [project], live.base_url, this_run) is reconciliation["complete"]
    out = capsys.readouterr().out
    assert (
        f"target: qTest site {site}\n  {project} -> qTest project '{project}' (id {live_project_id})" in out
    )
    assert "loader check: equal" in out
    # The verdict of this run, and the report's real path.
    assert f"  {project}: {reconciliation['verdict']}\n" in out
    assert out.rstrip().endswith(f"report: {reconciliation['report_markdown']}")
    assert Path(reconciliation["report_markdown"]).is_absolute()
    # Another run's proof is not this one's: none of its numbers are shown.
    assert not print_reports(database_url, [project], live.base_url, {project: "another-run"})
    out = capsys.readouterr().out
    assert f"{project}: not reconciled in this run" in out and reconciliation["verdict"] not in out
    # A site nothing was published to has nothing reconciled: the summary does not borrow another's.
    assert not print_reports(database_url, [project], "https://live.qtestnet.invalid", this_run)
    out = capsys.readouterr().out
    assert f"{project} -> no qTest project there yet" in out and f"{project}: not reconciled" in out


def test_an_earlier_id_map_is_adopted_only_by_the_site_that_holds_its_project(
    two_sites: dict[str, Any], new_embedded_database: Callable[[str], str]
) -> None:
    """An id map from before target sites holds the rehearsal's rows: the live site leaves them aside,
    untouched; the rehearsal site (which holds their qTest project) takes them as they are."""
    rehearsal, live, project = two_sites["rehearsal"], two_sites["live"], two_sites["project"]
    rows = two_sites["rehearsal_rows_before"]
    (rehearsal_project_id,) = [row[3] for row in rows if row[1] == "project"]
    database_url = new_embedded_database("zq_earlier_map")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(EARLIER_ID_MAP_DDL)
        with conn.cursor() as cursor:
            cursor.executemany(
                f"insert into migration.id_map ({COLUMNS}) values ({', '.join(['%s'] * 10)})",
                [(*row[:8], Jsonb(row[8]), row[9]) for row in rows],
            )

    async def adopt(qtest: QTestSandboxHandle) -> list[str]:
        said: list[str] = []
        with Store(database_url) as store:
            id_map = await store.open_id_map(project, qtest.base_url)
            try:
                async with QtestClient(qtest.base_url, qtest.token) as client:
                    await adopt_rows_without_site(client, id_map, Writer("test", log=said.append))
            finally:
                await id_map.close()
        return said

    said = asyncio.run(adopt(live))
    assert said == [
        f"{len(rows)} id-map rows of {project} written before the id map named its site are kept aside and "
        f"not used (their qTest project {rehearsal_project_id} is not on {site_of(live.base_url)}); they stay in "
        f"migration.id_map with target_site '{NO_SITE}'"
    ]
    assert map_rows(database_url, NO_SITE) == rows and map_rows(database_url, live.base_url) == []

    said = asyncio.run(adopt(rehearsal))
    assert said and said[0].startswith(f"{len(rows)} id-map rows of {project} ") and "are now" in said[0]
    assert map_rows(database_url, rehearsal.base_url) == rows and map_rows(database_url, NO_SITE) == []
    # The upgrade is done once: opening the map again changes nothing, and the key names the site.
    assert asyncio.run(adopt(rehearsal)) == []
    with psycopg.connect(database_url) as conn:
        (key,) = conn.execute(
            "select pg_get_constraintdef(oid) from pg_constraint where conrelid = 'migration.id_map'::regclass "
            "and contype = 'p'"
        ).fetchone()
    assert key == "PRIMARY KEY (target_site, project_key, object_type, source_key)"
