"""Publishing survives `kill -9`: the migrate command, publishing into the qTest sandbox, is killed with
SIGKILL at random points several times and then run again until it completes; qTest then holds every
object exactly once (the reconciliation finds nothing missing, nothing extra, nothing different).

The kill points are chosen by progress, not by time: one per publishing stage, in the order the stages
run (test cases, test runs, test logs, attachments), each when the id map has gained a random share of
that stage's objects as ``done``. So every attempt is killed among the writes of its stage however fast or
slow the machine is.

The qTest site is a bare one (the sandbox's default template, as a new site is): the first run creates the
fields the migration sets, the Zephyr key among them, so the lookups by Zephyr key that find what a killed
run created are on.

The Dagster instance is the one the CLI sets up by default (the project's dagster.yaml: one slot per
pool), and every publishing stage runs in the `qtest_api` pool. So each kill leaves a run that holds that
slot; the next `migrate` must close it (marked failed, slot freed, a line saying so) before its own
stages can claim the slot, and the one plain re-run after the last kill must finish."""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import psycopg
import pytest

from tests.graph_helpers import materialize_partition
from zephyr_qtest.cli import REPO_ROOT
from zephyr_qtest.defs.ingest.assets import raw_assets
from zephyr_qtest.defs.transform.dbt_models import zephyr_dbt_models
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

pytestmark = pytest.mark.e2e

CLI = Path(sys.executable).with_name("zephyr-qtest")
# The id-map type of each stage killed in, in publishing order, and how many objects of it the marts
# hold (each is recorded `done` once it is in qTest).
KILL_STAGES = {
    "test_case": "select count(*) from qtest_mapping.qtest_test_cases where project_key = %s",
    "test_run": "select count(*) from qtest_mapping.qtest_test_runs where project_key = %s",
    "test_log": "select count(*) from qtest_mapping.qtest_test_logs where project_key = %s and skip_reason is null",
    "attachment": "select count(*) from qtest_mapping.qtest_attachments where project_key = %s "
    "and skip_reason is null and qtest_object_type is not null",
}
# Waiting for a kill point is bounded by progress (the process exits first: no kill); this only ends a
# migration that hangs, which is a failure.
HUNG_AFTER_S = 600.0
POLL_S = 0.02
# What `migrate` prints for each run a killed process left behind (zephyr_qtest/defs/dead_runs.py).
DEAD_RUN_LINE = "was left by a process that no longer exists: marked failed, its qtest_api slot freed"


@pytest.fixture(scope="module")
def zephyr() -> Iterator[ZephyrSandboxHandle]:
    with start_in_thread(seed=5, size="tiny") as handle:
        yield handle


@pytest.fixture
def transformed(new_embedded_database: Callable[[str], str], zephyr: ZephyrSandboxHandle) -> tuple[str, str]:
    """A database with one project extracted and transformed (what publishing reads)."""
    database_url = new_embedded_database("zq_kill")
    project = sorted(zephyr.info()["counts"]["per_project"])[0]
    result = materialize_partition(
        [*raw_assets, zephyr_dbt_models],
        project,
        database_url=database_url,
        zephyr=zephyr,
        raise_on_error=True,
    )
    assert result.success
    return database_url, project


@dataclass(frozen=True)
class KillPoint:
    """Kill once the id map holds at least ``done`` rows of ``object_type`` in state ``done``."""

    object_type: str
    done: int


def _kill_points(database_url: str, project: str, rng: random.Random) -> list[KillPoint]:
    """One point per stage, at 20-80 % of its objects (never its last one, when it has two or more)."""
    points = []
    with connect(database_url) as conn:
        for object_type, count_sql in KILL_STAGES.items():
            (total,) = conn.execute(count_sql, (project,)).fetchone()
            assert total > 0, f"the project has no {object_type} to kill among"
            points.append(
                KillPoint(object_type, max(1, min(total - 1, math.ceil(total * rng.uniform(0.2, 0.8)))))
            )
    return points


def _done(conn: psycopg.Connection, project: str, object_type: str) -> int:
    # The id map's table appears with the first publishing run.
    if conn.execute("select to_regclass('migration.id_map') is null").fetchone()[0]:
        return 0
    (done,) = conn.execute(
        "select count(*) from migration.id_map where project_key = %s and object_type = %s and state = 'done'",
        (project, object_type),
    ).fetchone()
    return done


def _kill_at(
    process: subprocess.Popen[bytes], point: KillPoint, database_url: str, project: str
) -> str | None:
    """Waits for ``point`` (or one more ``done`` row than now, if the point was passed already) and kills the
    process group there; None when the process ended first."""
    # autocommit: an open transaction would hold a lock on the id map that the migration may need.
    with connect(database_url, autocommit=True) as conn:
        target = max(point.done, _done(conn, project, point.object_type) + 1)
        started = time.monotonic()
        while process.poll() is None:
            done = _done(conn, project, point.object_type)
            if done >= target:
                os.killpg(process.pid, signal.SIGKILL)
                return f"{point.object_type}: killed at {done} done (target {target})"
            if time.monotonic() - started > HUNG_AFTER_S:
                os.killpg(process.pid, signal.SIGKILL)
                pytest.fail(f"the migration made no progress towards {point} in {HUNG_AFTER_S} s")
            time.sleep(POLL_S)  # the next look at the id map, not a wait for the clock to reach a kill point
    return None


def _migrate(env: dict[str, str], project: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(CLI), "migrate", "--project", project, "--only", "qtest"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_sigkill_in_every_pooled_stage_then_one_rerun_leaves_every_object_once(
    transformed: tuple[str, str], zephyr: ZephyrSandboxHandle, tmp_path: Path
) -> None:
    database_url, project = transformed
    rng = random.Random(20261122)
    points = _kill_points(database_url, project, rng)
    with start_qtest_in_thread(tmp_path / "qtest", seed=3, template="default") as qtest:
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
            # A kill between recording a bulk submission and sending it leaves its logs pending with no
            # job: the next run waits out the queue window before sending them. The sandbox's queue makes
            # a job's logs within queue_delay_s (2 s) even unpolled, so 30 s is safe here (not an hour).
            "ZEPHYR_QTEST_QUEUE_WINDOW_S": "30",
        }
        # What `prepare_dagster_home` copies into a new home: one slot per pool.
        (tmp_path / "dagster_home").mkdir()
        shutil.copyfile(REPO_ROOT / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml")
        kills = []
        left_behind = False  # whether the last attempt was killed, leaving its run and slot
        for attempt, point in enumerate(points):
            log = tmp_path / f"migrate-{attempt}.log"
            process = _migrate(env, project, log)
            # Reaching a kill point means writing in a pooled stage, so holding the slot a killed run left.
            where = _kill_at(process, point, database_url, project)
            process.wait(timeout=60)
            assert log.read_text().count(DEAD_RUN_LINE) == left_behind, log.read_text()[-3000:]
            left_behind = where is not None
            if where is not None:
                kills.append(where)
        print("kill points:", *kills, sep="\n  ")
        killed = len(kills)
        assert killed >= 2, f"the migration finished before most kills: {log.read_text()[-3000:]}"
        log = tmp_path / "migrate-final.log"
        final = _migrate(env, project, log)
        code = final.wait(timeout=HUNG_AFTER_S)
        # The exit code is the verdict of this run: 0 only when it printed the project complete.
        (verdict,) = [line for line in log.read_text().splitlines() if line.startswith(f"  {project}: ")]
        assert code == (0 if verdict.startswith(f"  {project}: complete") else 1), log.read_text()[-5000:]
        assert log.read_text().count(DEAD_RUN_LINE) == left_behind, log.read_text()[-3000:]
        # Every killed run is closed and holds no slot.
        with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": project}))
            statuses = [run.status.value for run in runs]  # newest first
            claimed = instance.event_log_storage.get_concurrency_info("qtest_api").claimed_slots
        assert statuses[0] == "SUCCESS" and set(statuses) <= {"SUCCESS", "FAILURE"}, statuses
        assert statuses.count("FAILURE") == killed, statuses
        assert claimed == [], claimed
        # The run that found the site bare created the Zephyr key field.
        project_id = next(
            p["id"] for p in httpx.get(f"{qtest.api_url}/projects", headers=qtest.headers).json()
        )
        case_fields = httpx.get(
            f"{qtest.api_url}/projects/{project_id}/settings/test-cases/fields", headers=qtest.headers
        ).json()
        zephyr_key = next(field for field in case_fields if field["label"] == "Zephyr Key")
        assert zephyr_key["system_field"] is False
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
