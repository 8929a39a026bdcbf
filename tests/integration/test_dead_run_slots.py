"""`close_dead_runs` on a real Dagster instance (SQLite, the project's dagster.yaml): a run whose owning
process is gone is marked failed and gives its pool slot back; a run whose owner is alive, or that the CLI
did not launch, keeps its status and its slot."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from zephyr_qtest.cli import REPO_ROOT
from zephyr_qtest.defs.dead_runs import HOST_TAG, PID_TAG, close_dead_runs, owner_tags

POOL = "qtest_api"


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    shutil.copyfile(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        yield instance


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _started_run(instance: dg.DagsterInstance, project: str, tags: dict[str, str]) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(
        dg.DagsterRun(
            job_name="migration_job",
            run_id=run_id,
            status=dg.DagsterRunStatus.STARTED,
            tags={"dagster/partition": project, **tags},
        )
    )
    return run_id


def _holders(instance: dg.DagsterInstance) -> list[str]:
    return [slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]


def test_a_run_of_a_dead_process_is_failed_and_its_slot_freed(instance: dg.DagsterInstance) -> None:
    tags = {**owner_tags(), PID_TAG: str(_dead_pid())}
    run_id = _started_run(instance, "SHOP", tags)
    assert instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "qtest/test_case").is_claimed

    lines = close_dead_runs(instance, ["SHOP"])

    assert lines == [
        f"run {run_id} of SHOP was left by a process that no longer exists: marked failed, its {POOL} slot freed"
    ]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert _holders(instance) == []
    # The next run's step gets the slot.
    assert instance.event_log_storage.claim_concurrency_slot(POOL, "next", "qtest/test_case").is_claimed


def test_an_owner_killed_but_not_reaped_counts_as_dead(instance: dg.DagsterInstance) -> None:
    # A killed CLI's child is reparented to PID 1, which in a container may never reap it: a zombie.
    # A live process until it is killed (it waits for input that never comes), then a zombie.
    owner = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        owner.kill()
        while Path(f"/proc/{owner.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            pass  # the kernel makes it a zombie at once; not reaped: no wait() yet
        run_id = _started_run(instance, "SHOP", {**owner_tags(), PID_TAG: str(owner.pid)})

        assert len(close_dead_runs(instance, ["SHOP"])) == 1
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    finally:
        owner.wait()
        owner.stdin.close()


def test_live_foreign_and_other_project_runs_are_left_alone(instance: dg.DagsterInstance) -> None:
    live = _started_run(instance, "SHOP", owner_tags())  # this process: alive
    from_ui = _started_run(instance, "SHOP", {})  # no owner tags: cannot be judged
    elsewhere = _started_run(instance, "SHOP", {HOST_TAG: "another-host", PID_TAG: str(_dead_pid())})
    other_project = _started_run(instance, "BANK", {**owner_tags(), PID_TAG: str(_dead_pid())})
    assert instance.event_log_storage.claim_concurrency_slot(POOL, live, "qtest/test_case").is_claimed

    assert close_dead_runs(instance, ["SHOP"]) == []

    for run_id in (live, from_ui, elsewhere, other_project):
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert _holders(instance) == [live]


def test_a_backfill_run_of_a_dead_process_is_found_by_its_project(instance: dg.DagsterInstance) -> None:
    # A backfill's run names its project in the range tags, not in dagster/partition.
    run_id = str(uuid.uuid4())
    instance.add_run(
        dg.DagsterRun(
            job_name="__ASSET_JOB",
            run_id=run_id,
            status=dg.DagsterRunStatus.STARTED,
            tags={
                "dagster/asset_partition_range_start": "SHOP",
                "dagster/asset_partition_range_end": "SHOP",
                **owner_tags(),
                PID_TAG: str(_dead_pid()),
            },
        )
    )

    assert close_dead_runs(instance, ["BANK"]) == []
    assert close_dead_runs(instance, ["SHOP"]) == [
        f"run {run_id} of SHOP was left by a process that no longer exists: marked failed, no slot held"
    ]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
