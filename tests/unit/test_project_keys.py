"""Only Zephyr project keys become partitions: discovery leaves out anything else the API lists, and the
CLI refuses a --project that is not a key before it creates anything."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zephyr_qtest.lib.zephyr.client import ZephyrClient
from zephyr_qtest.lib.zephyr.discovery import discover_project_keys, project_key_problem
from zephyr_qtest.sandbox.zephyr.serve import start_in_thread


@pytest.mark.parametrize("key", ["SHOP", "A", "QA_2", "X9"])
def test_project_keys(key: str) -> None:
    assert project_key_problem(key) is None


@pytest.mark.parametrize("key", ["shop", "9LIVES", "SHOP-1", "", "SH OP", "ÄPFEL", "SHOP\n"])
def test_not_project_keys(key: str) -> None:
    problem = project_key_problem(key)
    assert problem is not None and repr(key) in problem


def test_discovery_leaves_out_what_is_not_a_project_key(caplog: pytest.LogCaptureFixture) -> None:
    projects = [
        {"id": 1, "jiraProjectId": 10, "key": "SHOP", "enabled": True},
        {"id": 2, "jiraProjectId": 20, "key": "bad key", "enabled": True},
        {"id": 3, "jiraProjectId": 30, "key": "OFF", "enabled": False},
        {"id": 4, "jiraProjectId": 40, "key": "PAY_2", "enabled": True},
    ]
    with start_in_thread(fixture={"projects": projects}) as zephyr:

        async def discover() -> list[str]:
            async with ZephyrClient(zephyr.base_url, zephyr.token) as client:
                return await discover_project_keys(client)

        assert asyncio.run(discover()) == ["PAY_2", "SHOP"]
    assert "'bad key' is not a Zephyr project key" in caplog.text


def test_migrate_refuses_a_bad_key_before_anything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "ZEPHYR_QTEST_HOME": str(home)}
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "zephyr-qtest"), "migrate", "--project", "shop", "--sandbox"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "'shop' is not a Zephyr project key" in completed.stderr
    assert not home.exists() or not any(home.iterdir()), list(home.rglob("*"))
