"""The qTest project a Zephyr project goes to stays the one of its first run on a site: a project map that
later names another project stops the run with what to do, instead of being ignored (the id map's objects
are all in the first project) or creating the whole project again beside it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.id_map import IdMap, site_of
from zephyr_qtest.lib.qtest.loader import ProjectTargetError, resolve_project
from zephyr_qtest.lib.store import Store
from zephyr_qtest.preflight import BLOCKER, PreflightReport, _id_map_check
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.settings import load_settings


@pytest.fixture
def qtest(tmp_path: Path) -> Iterator[QTestSandboxHandle]:
    with start_qtest_in_thread(tmp_path / "qtest", seed=3, projects=["Webshop", "Storefront"]) as handle:
        yield handle


def test_a_project_map_naming_another_project_after_a_first_run_stops_with_what_to_do(
    qtest: QTestSandboxHandle, embedded_databases: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = embedded_databases()

    async def resolve(target: str | None) -> int:
        with Store(database_url) as store:
            id_map = await IdMap.open(store, "SHOP", qtest.base_url)
            try:
                async with QtestClient(qtest.base_url, qtest.token) as client:
                    return await resolve_project(client, id_map, "SHOP", target)
            finally:
                await id_map.close()

    first = asyncio.run(resolve("Webshop"))
    projects = qtest.counts()["projects"]
    # The same project by name, by id, or with no map entry at all: the one of the first run.
    assert asyncio.run(resolve("Webshop")) == first
    assert asyncio.run(resolve(str(first))) == first
    assert asyncio.run(resolve(None)) == first
    with pytest.raises(ProjectTargetError) as moved:
        asyncio.run(resolve("Storefront"))
    message = str(moved.value)
    assert "ZEPHYR_QTEST_PROJECT_MAP" in message and "'Webshop'" in message and "'Storefront'" in message
    assert "zephyr-qtest rollback --project SHOP" in message
    assert qtest.counts()["projects"] == projects, "a project was created"
    # Preflight says so before the run: a blocker naming both projects and the setting.
    monkeypatch.setenv("QTEST_BASE_URL", qtest.base_url)
    monkeypatch.setenv("ZEPHYR_QTEST_PROJECT_MAP", '{"SHOP": "Storefront"}')
    report = PreflightReport()
    with psycopg.connect(database_url) as conn:
        _id_map_check(conn, load_settings(env_file=None), ["SHOP"], report)
    [blocker] = report.blockers
    assert blocker.name == "SHOP: qTest project" and blocker.result == BLOCKER
    assert "'Webshop'" in blocker.detail and "'Storefront'" in blocker.detail
    assert "ZEPHYR_QTEST_PROJECT_MAP" in blocker.remedy and site_of(qtest.base_url) in blocker.remedy
