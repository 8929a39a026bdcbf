"""Publishing survives `kill -9`: the migrate command, publishing into the qTest sandbox, is killed with
SIGKILL at random points several times and then run again until it completes; qTest then holds every
object exactly once (the reconciliation finds nothing missing, nothing extra, nothing different)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt import DbtCliResource

from zephyr_qtest.defs.ingest.assets import raw_assets
from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.defs.resources import PostgresResource, ZephyrResource
from zephyr_qtest.defs.transform.dbt_models import dbt_project, zephyr_dbt_models
from zephyr_qtest.lib.dbt import dbt_executable
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

pytestmark = pytest.mark.e2e

KILLS = 4
CLI = Path(sys.executable).with_name("zephyr-qtest")


@pytest.fixture(scope="module")
def zephyr() -> Iterator[ZephyrSandboxHandle]:
    with start_in_thread(seed=5, size="tiny") as handle:
        yield handle


@pytest.fixture
def transformed(new_embedded_database: Callable[[str], str], zephyr: ZephyrSandboxHandle) -> tuple[str, str]:
    """A database with one project extracted and transformed (what publishing reads)."""
    database_url = new_embedded_database("zq_kill")
    project = sorted(zephyr.info()["counts"]["per_project"])[0]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(zephyr_projects.name, [project])
    result = dg.materialize(
        [*raw_assets, zephyr_dbt_models],
        partition_key=project,
        instance=instance,
        resources={
            "postgres": PostgresResource(database_url=database_url),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
            "zephyr": ZephyrResource(base_url=zephyr.base_url, api_token=zephyr.token),
        },
    )
    assert result.success
    return database_url, project


def _migrate(env: dict[str, str], project: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(CLI), "migrate", "--project", project, "--only", "qtest"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_sigkill_at_random_points_then_a_rerun_leaves_every_object_once(
    transformed: tuple[str, str], zephyr: ZephyrSandboxHandle, tmp_path: Path
) -> None:
    database_url, project = transformed
    rng = random.Random(20261122)
    # A rate limit stretches publishing over several seconds, so that the kills land among the writes.
    with start_qtest_in_thread(tmp_path / "qtest", seed=3, rate_limit=40) as qtest:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ZEPHYR_BASE_URL": zephyr.base_url,
            "ZEPHYR_API_TOKEN": zephyr.token,
            "QTEST_BASE_URL": qtest.base_url,
            "QTEST_API_TOKEN": qtest.token,
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "ZEPHYR_QTEST_HOME": str(tmp_path / "home"),
            "ZEPHYR_QTEST_REPORTS": str(tmp_path / "reports"),
        }
        (tmp_path / "dagster_home").mkdir()
        log = tmp_path / "migrate.log"
        killed = 0
        for _ in range(KILLS):
            process = _migrate(env, project, log)
            time.sleep(rng.uniform(7.0, 16.0))
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                killed += 1
            process.wait(timeout=60)
        assert killed >= 2, f"the migration finished before most kills: {log.read_text()[-3000:]}"
        final = None
        for _ in range(3):
            final = _migrate(env, project, log)
            if final.wait(timeout=600) == 0:
                break
        assert final is not None and final.returncode == 0, log.read_text()[-5000:]
        with connect(database_url) as conn:
            rows = conn.execute(
                "select object_type, expected, found, matched, missing, unaccounted, mismatches "
                "from migration.reconciliation where project_key = %s order by 1",
                (project,),
            ).fetchall()
            states = dict(
                conn.execute("select state, count(*) from migration.id_map group by state").fetchall()
            )
    assert {row[0] for row in rows} >= {
        "module",
        "test_case",
        "test_cycle",
        "test_run",
        "test_log",
        "attachment",
    }
    for object_type, expected, found, matched, missing, unaccounted, mismatches in rows:
        assert (matched, missing, unaccounted, mismatches) == (expected, 0, 0, 0), object_type
        if object_type != "test_step":
            assert found == expected, object_type  # nothing in qTest twice, nothing left over
    assert set(states) == {"done"}, states
