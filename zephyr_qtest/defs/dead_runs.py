"""Runs left behind by a process that died (SIGKILL, OOM, power): found and closed before new runs start.

A run whose process dies keeps its status (STARTED) and the concurrency slots its steps claimed: with one
slot per pool (dagster.yaml), the next run's pooled steps then wait for that slot forever and start
nothing. Marking the run failed does not give the slot back; ``free_concurrency_slots_for_run`` does.

Only runs the CLI launched can be judged here: they carry the host and the pid of the process that owns
them (``owner_tags``). A run without those tags (launched from the UI, a sensor or a backfill), on another
host, or whose process is alive is left alone: a live run keeps its slots, and two live runs of one
project are kept apart by the project lock (``lib/qtest/one_writer.py``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

import dagster as dg
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

PARTITION_TAG = "dagster/partition"
HOST_TAG = "zephyr_qtest/host"
PID_TAG = "zephyr_qtest/pid"


def owner_tags() -> dict[str, str]:
    """The tags naming this process as the owner of a run it executes (read back by ``close_dead_runs``)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _dead_owner(run: dg.DagsterRun) -> int | None:
    """The pid of the run's owner when it is known to be gone, else None (unknown owners count as alive)."""
    host, pid = run.tags.get(HOST_TAG), run.tags.get(PID_TAG)
    if host != socket.gethostname() or not (pid and pid.isdigit()):
        return None
    if int(pid) == os.getpid() or process_alive(int(pid)):
        return None
    return int(pid)


def _claimed_pools(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    return sorted(
        pool
        for pool in storage.get_concurrency_keys()
        if any(slot.run_id == run_id for slot in storage.get_concurrency_info(pool).claimed_slots)
    )


def close_dead_runs(instance: dg.DagsterInstance, projects: Iterable[str]) -> list[str]:
    """Marks failed the unfinished runs of these projects (partitions) whose owning process no longer
    exists, and frees their concurrency slots. Returns one line per run closed, for the user."""
    lines = []
    for project_key in projects:
        records = instance.get_run_records(
            filters=dg.RunsFilter(statuses=list(NOT_FINISHED_STATUSES), tags={PARTITION_TAG: project_key})
        )
        for record in records:
            run = record.dagster_run
            pid = _dead_owner(run)
            if pid is None:
                continue
            pools = _claimed_pools(instance, run.run_id)
            instance.report_run_failed(
                run,
                f"The process that ran it (pid {pid} on {run.tags[HOST_TAG]}) no longer exists "
                "(killed, out of memory or a power loss); closed by the next `zephyr-qtest migrate`.",
            )
            # Failing the run does not release what its steps claimed: without this, the next run's
            # pooled steps would wait for these slots forever.
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            freed = (
                f"its {', '.join(pools)} slot{'s' if len(pools) > 1 else ''} freed"
                if pools
                else "no slot held"
            )
            lines.append(
                f"run {run.run_id} of {project_key} was left by a process that no longer exists: "
                f"marked failed, {freed}"
            )
    return lines
