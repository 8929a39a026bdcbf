"""Runs left behind by a process that died (SIGKILL, OOM, power): found, marked failed, their slots freed.

A run whose process dies keeps its status (STARTED) and the concurrency slots its steps claimed: with one
slot per pool (dagster.yaml), the next run's pooled steps then wait for that slot forever and start
nothing, and the next run of the project waits in the run queue behind it (one run per partition).
Marking the run failed does not give the slot back; ``free_concurrency_slots_for_run`` does.

Who owned a run, and so whether it is dead, is known in two ways:
- runs the CLI executes carry the host and pid of its process (``owner_tags``);
- runs launched from the UI, a sensor or a backfill through Dagster's default run launcher run in a
  process the code server started, whose pid Dagster records ("Started process for run (pid: N)"). While
  that code server lives, it fails a run whose process died, and run monitoring frees the run's slots
  (dagster.yaml). When the code server died too (a power loss, an OOM kill of the group, `dagster dev`
  killed), nobody is left to notice, and the default launcher cannot check a run's health: the
  ``dead_run_closer`` sensor does, for code servers on this host (a locally spawned or a localhost one).

`migrate` closes the dead runs of its projects before starting its own; the sensor closes any, every
half minute, while the daemon runs (`zephyr-qtest ui`). A run whose owner is unknown, on another host, or
alive is left alone: a live run keeps its slots, and two live runs of one project are kept apart by the
project lock (``lib/qtest/one_writer.py``).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, ManagedGrpcPythonEnvCodeLocationOrigin
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

from zephyr_qtest.defs.partitions import PARTITION_TAG, RANGE_START_TAG, run_project

HOST_TAG = "zephyr_qtest/host"
PID_TAG = "zephyr_qtest/pid"
# The engine event a run's own process writes first (dagster/_grpc/impl.py, dagster/_cli/api.py).
STARTED_PROCESS = re.compile(r"Started process for run \(pid: (\d+)\)")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", socket.gethostname()}


def owner_tags() -> dict[str, str]:
    """The tags naming this process as the owner of a run it executes (read back by ``close_dead_runs``)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (signal 0 checks without signalling). A zombie
    (killed, not yet reaped by its parent) does not count: a killed CLI's child is reparented to PID 1,
    which in a container is often not an init that reaps, so the dead owner would look alive forever."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return _process_state(pid) not in ("Z", "X")


def _process_state(pid: int) -> str | None:
    """The process's state letter from /proc (Linux); None where /proc is not there to tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may itself hold spaces and parentheses: the state follows the last.
    return stat.rsplit(")", 1)[1].split()[0]


def _local_code_server(run: dg.DagsterRun) -> bool:
    """Whether the run's process was started on this host: by a code server this host spawned (the
    workspace's python_module, as `dagster dev` and `zephyr-qtest ui` load it) or one on localhost."""
    origin = run.remote_job_origin
    if origin is None:
        return False
    location = origin.repository_origin.code_location_origin
    if isinstance(location, ManagedGrpcPythonEnvCodeLocationOrigin):
        return True
    return isinstance(location, GrpcServerCodeLocationOrigin) and location.host in LOCAL_HOSTS


def _worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of the process a local code server started for the run, from the run's engine events."""
    if not _local_code_server(run):
        return None
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = STARTED_PROCESS.search(entry.message or "")
        if found:
            return int(found.group(1))
    return None  # not started yet (STARTING): run monitoring's start_timeout_seconds handles those


def _dead_owner(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[int, str] | None:
    """The pid and host of the run's process when it is known to be gone, else None (unknown owners
    count as alive)."""
    host, pid = run.tags.get(HOST_TAG), run.tags.get(PID_TAG)
    if host is None and pid is None:
        worker = _worker_pid(instance, run)
        host, pid = socket.gethostname(), str(worker) if worker is not None else None
    if host != socket.gethostname() or not (pid and pid.isdigit()):
        return None
    if int(pid) == os.getpid() or process_alive(int(pid)):
        return None
    return int(pid), host


def _claimed_pools(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    return sorted(
        pool
        for pool in storage.get_concurrency_keys()
        if any(slot.run_id == run_id for slot in storage.get_concurrency_info(pool).claimed_slots)
    )


def close_dead_runs(
    instance: dg.DagsterInstance,
    projects: Iterable[str] | None = None,
    *,
    closer: str = "`zephyr-qtest migrate`",
) -> list[str]:
    """Marks failed the unfinished runs of these projects (partitions; None: of every project) whose
    process no longer exists, and frees their concurrency slots. Returns one line per run closed."""
    # A backfill's runs name their project in the range tags (start = end), the others in the partition's.
    filters = (
        [
            dg.RunsFilter(statuses=list(NOT_FINISHED_STATUSES), tags={tag: key})
            for key in projects
            for tag in (PARTITION_TAG, RANGE_START_TAG)
        ]
        if projects is not None
        else [dg.RunsFilter(statuses=list(NOT_FINISHED_STATUSES))]
    )
    lines = []
    seen: set[str] = set()
    for runs_filter in filters:
        for record in instance.get_run_records(filters=runs_filter):
            run = record.dagster_run
            if run.run_id in seen:
                continue
            seen.add(run.run_id)
            owner = _dead_owner(instance, run)
            if owner is None:
                continue
            pid, host = owner
            pools = _claimed_pools(instance, run.run_id)
            instance.report_run_failed(
                run,
                f"The process that ran it (pid {pid} on {host}) no longer exists "
                f"(killed, out of memory or a power loss); closed by {closer}.",
            )
            # Failing the run does not release what its steps claimed: without this, the next run's
            # pooled steps would wait for these slots forever.
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            freed = (
                f"its {', '.join(pools)} slot{'s' if len(pools) > 1 else ''} freed"
                if pools
                else "no slot held"
            )
            project = run_project(run.tags) or "no project"
            lines.append(
                f"run {run.run_id} of {project} was left by a process that no longer exists: "
                f"marked failed, {freed}"
            )
    return lines


@dg.sensor(
    name="dead_run_closer",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Marks failed the runs whose process died (killed, out of memory, a power loss) and frees the pool "
        "slots they held, which would otherwise stop every later run's pooled steps. Judges the runs the "
        "CLI executes and those the UI, a sensor or a backfill launched through a code server on this host."
    ),
)
def dead_run_closer(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    lines = close_dead_runs(context.instance, closer="the dead_run_closer sensor")
    for line in lines:
        context.log.warning(line)
    return dg.SkipReason("; ".join(lines) if lines else "no run left by a dead process")
