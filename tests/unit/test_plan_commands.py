"""The dry run's and the rollback's command-line pieces that need no database: the groups a dry run
materializes, a rollback refused before anything is read when the configured site is another, and a
planning client that refuses any write it has no plan for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from zephyr_qtest.lib.qtest.plan import PlanningClient, PlanWriteRefused
from zephyr_qtest.plan_commands import dry_run_groups, run_rollback
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread
from zephyr_qtest.settings import load_settings


def test_a_dry_run_extracts_and_transforms_but_never_publishes() -> None:
    assert dry_run_groups(None) == ["zephyr_raw", "staging", "canonical", "qtest_mapping"]
    assert dry_run_groups(["qtest_mapping", "qtest", "snowflake"]) == ["qtest_mapping"]


def test_a_rollback_names_the_variables_when_the_configured_site_is_another(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings()
    qtest = settings.qtest.model_copy(
        update={"base_url": "https://live.qtestnet.com", "api_token": SecretStr("t")}
    )
    settings = settings.model_copy(update={"qtest": qtest})
    code = run_rollback(settings, "postgresql://unused", "SHOP", "https://rehearsal.qtestnet.com", yes=True)
    assert code == 2
    assert "QTEST_BASE_URL" in capsys.readouterr().err


def test_a_planning_client_sends_reads_and_refuses_any_other_write(tmp_path: Path) -> None:
    with start_qtest_in_thread(tmp_path, projects=["Plan"]) as handle:

        async def use() -> None:
            async with PlanningClient(handle.base_url, handle.token) as client:
                project = next(p for p in await client.list_projects() if p["name"] == "Plan")
                made = await client.create_module(int(project["id"]), {"name": "m"}, None)
                assert client.made_up(made["id"]) and client.writes == {"POST modules": 1}
                with pytest.raises(PlanWriteRefused):
                    await client.request_json("POST", f"projects/{project['id']}/modules", json_body={})

        handle.reset_stats()
        asyncio.run(use())
        routes = handle.stats()["by_path"]
        assert not [route for route in routes if route.split()[0] != "GET" and "/api/" in route]


def test_the_default_module_is_recorded_only_when_the_migrations_cases_made_it(tmp_path: Path) -> None:
    from zephyr_qtest.lib.qtest.client import QtestClient
    from zephyr_qtest.lib.qtest.plan import PlannedIdMap
    from zephyr_qtest.lib.qtest.rollback import (
        DEFAULT_MODULE,
        DEFAULT_MODULE_NAME,
        Row,
        _delete_default_module,
        default_module_id,
        note_default_module,
    )

    with start_qtest_in_thread(tmp_path, projects=["Cases"]) as handle:

        async def use() -> None:
            async with QtestClient(handle.base_url, handle.token) as client:
                project_id = int(next(p for p in await client.list_projects() if p["name"] == "Cases")["id"])
                id_map = PlannedIdMap("CASES", handle.base_url, {})
                await note_default_module(client, project_id, id_map, before=True)
                assert (await id_map.load(DEFAULT_MODULE))[DEFAULT_MODULE_NAME].state == "pending"
                # A case without a module: qTest puts it in the module it makes for such cases.
                await client.create_test_case(project_id, {"name": "c", "properties": []})
                await note_default_module(client, project_id, id_map, before=False)
                made = await default_module_id(client, project_id)
                entry = (await id_map.load(DEFAULT_MODULE))[DEFAULT_MODULE_NAME]
                assert made is not None and (entry.state, entry.qtest_id) == ("done", made)
                # A module that was there before a run is never recorded.
                later = PlannedIdMap("CASES", handle.base_url, {})
                await note_default_module(client, project_id, later, before=True)
                await note_default_module(client, project_id, later, before=False)
                assert await later.load(DEFAULT_MODULE) == {}
                # Deleted only once empty (qTest refuses a module holding cases).
                row = Row(DEFAULT_MODULE, DEFAULT_MODULE_NAME, made, "done", {})
                for case in [c async for c in client.iter_test_cases(project_id)]:
                    await client.request("DELETE", f"projects/{project_id}/test-cases/{case['id']}")
                await _delete_default_module(client, project_id, row)
                assert await default_module_id(client, project_id) is None

        asyncio.run(use())
