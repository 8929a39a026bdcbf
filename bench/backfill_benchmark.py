"""Tenant backfill benchmark: N projects migrated by one Dagster backfill, against the floor of the slower side.

A tenant takes, at best, the time of its slower vendor: Zephyr and qTest rate-limit independently, so one
project's publishing can go on while the next one extracts. This benchmark runs a whole tenant the way a
user does (README, "A whole tenant"): the instance configured by ``docs/dagster-tenant.yaml``, ``dagster dev`` (webserver, daemon, code server), the projects added as partitions by the
discovery sensor, and one asset backfill of the extraction and transform over all of them, tagged
``zephyr_qtest/then: publish``, launched through the webserver's GraphQL as the UI's "Materialize" launches
it. The daemon does the rest: the backfill loop, the run queue, and the sensor that publishes each project
once it is transformed (``defs/tenant.py``). The Snowflake copy is not selected: it is a report beside the
migration (backfill its group after; it queues on its own pool).

Both sandboxes run in this process (threads), each with a rate limit its clients are not told. From their
request statistics (requests the server answered, 429 refusals apart) come the floors:

    floor(side) = requests answered ÷ that side's rate limit

and the aim (issue 15): wall time of the backfill ≤ 1.15 * max(floor(Zephyr), floor(qTest)), the wall time
running from the launch to the end of the last run.

The report gives, per stage (extraction and transform runs, publishing runs): each run's start and end,
the stage's busy time, requests, rates (requests, cases and executions per second), and the peak resident
memory of the run processes (``VmHWM`` of each run worker and of the dbt it starts, sampled from /proc).
With ``--scales 1,2`` the same tenant shape runs again with projects twice as large: the peak memory of
each stage should not follow (pages are streamed, tables loaded with COPY). From the measured per-stage
rates it projects a tenant of 1,000,000 executions end to end.

    .venv/bin/python bench/backfill_benchmark.py [--projects 4] [--cases 40] [--executions 160]
        [--zephyr-rate-limit 50] [--qtest-rate-limit 4] [--qtest-runs 2] [--scales 1] [--out report.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zephyr_qtest.defs.partitions import zephyr_projects  # noqa: E402
from zephyr_qtest.defs.tenant import AFTER_RUN_TAG, TENANT_BACKFILL_TAG, THEN_PUBLISH, THEN_TAG  # noqa: E402
from zephyr_qtest.lib.postgres import EmbeddedPostgres, live_url_from_env, redact_url, with_database  # noqa: E402
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread  # noqa: E402
from zephyr_qtest.sandbox.zephyr.generator import generate  # noqa: E402
from zephyr_qtest.sandbox.zephyr.serve import start_in_thread  # noqa: E402

TENANT_CONFIG = REPO / "docs" / "dagster-tenant.yaml"
# What the user backfills: the extraction and the transform; the publishing follows per project.
BACKFILLED_GROUPS = ("zephyr_raw", "staging", "canonical", "qtest_mapping")
AIM_RATIO = 1.15
PROJECTION_EXECUTIONS = 1_000_000
# Bounds a hang only: every wait below waits for a state.
DEADLINE_S = 3600
FINISHED = {"COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
RUN_FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    """The backfill's runs (extraction and transform) and the publishing runs that followed them."""
    runs = list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})))
    runs += instance.get_runs(filters=dg.RunsFilter(tags={TENANT_BACKFILL_TAG: backfill_id}))
    return runs


LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""
LOCATION = (
    "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { __typename } } } } }"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
    )
    response.raise_for_status()
    return response.json()["data"]


def _location_loaded(port: int) -> bool:
    try:
        entries = _graphql(port, LOCATION)["workspaceOrError"]["locationEntries"]
    except (httpx.HTTPError, KeyError, TypeError):
        return False
    return bool(entries) and all(
        (entry["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation" for entry in entries
    )


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to `dagster dev`'s process group (it stops webserver, daemon and code server); SIGKILL after
    a minute."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# ------------------------------------------------------------------------------------------ memory


def _children_table() -> dict[int, list[int]]:
    """Children by parent pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def _peak_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class MemorySampler:
    """Samples the peak RSS (VmHWM) of each run's worker process and of the processes it starts (dbt), by
    run id, until stopped. A process's VmHWM only grows, so the last sample is its peak. The worker's pid is
    the one its run's engine event names ("Started process for run (pid: N)")."""

    dagster_home: Path
    backfill_id: str
    interval_s: float = 0.5
    worker_kib: dict[str, int] = field(default_factory=dict)
    children_kib: dict[str, int] = field(default_factory=dict)
    _pids: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            lookups = 0
            while not self._stop.wait(self.interval_s):
                lookups += 1
                if lookups % 4 == 0:
                    self._find_workers(instance)
                self._sample()

    def _find_workers(self, instance: dg.DagsterInstance) -> None:
        for run in backfill_runs(instance, self.backfill_id):
            if run.run_id in self._pids or run.status.value in ("QUEUED", "NOT_STARTED"):
                continue
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                message = entry.message or ""
                if message.startswith("Started process for run (pid: "):
                    self._pids[run.run_id] = int(message.split("pid: ")[1].split(")")[0])
                    break

    def _sample(self) -> None:
        children = _children_table()
        for run_id, pid in self._pids.items():
            peak = _peak_rss_kib(pid)
            if peak:
                self.worker_kib[run_id] = max(self.worker_kib.get(run_id, 0), peak)
            todo, seen = list(children.get(pid, [])), 0
            while todo:
                child = todo.pop()
                seen = max(seen, _peak_rss_kib(child) or 0)
                todo.extend(children.get(child, []))
            if seen:
                self.children_kib[run_id] = max(self.children_kib.get(run_id, 0), seen)


# --------------------------------------------------------------------------------------------- run


def _stats(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/_sandbox/stats", timeout=30).json()


def _answered(stats: dict[str, Any]) -> int:
    return int(stats["requests"]) - int(stats["rate_limited"])


def _stage_of(run: dg.DagsterRun) -> str:
    """The backfill's own runs extract and transform; the runs the sensor started after them publish."""
    if TENANT_BACKFILL_TAG in run.tags:
        return "publishing"
    if "dagster/backfill" in run.tags:
        return "extraction"
    return "other"


def first_step_start(instance: dg.DagsterInstance, run_id: str) -> float | None:
    """When the run's first step started: a publishing run started ahead of its transform waits before
    it (defs/tenant.py, wait_for_transform), so its work begins here, not at the run's start."""
    starts = [entry.timestamp for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)]
    return min(starts) if starts else None


def startup_seconds(
    instance: dg.DagsterInstance, runs: list[dg.DagsterRun], launched_at: float
) -> dict[str, Any]:
    """Where the time before the first publishing run goes, piece by piece (seconds): the backfill daemon
    seeing the backfill and creating the first run; that run's process starting (the queue, a process,
    the definitions); its extraction and its transform (the dbt step); the sensor seeing the transform
    done and creating the publishing run; that run's process starting."""
    records = {
        record.dagster_run.run_id: record
        for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=[run.run_id for run in runs]))
    }
    extraction = sorted(
        (records[run.run_id] for run in runs if _stage_of(run) == "extraction" and run.run_id in records),
        key=lambda record: record.create_timestamp.timestamp(),
    )
    publishing = sorted(
        (records[run.run_id] for run in runs if _stage_of(run) == "publishing" and run.run_id in records),
        key=lambda record: record.start_time or float("inf"),
    )
    if not extraction or not publishing or extraction[0].start_time is None:
        return {}
    first_publish = publishing[0]
    followed = records.get(first_publish.dagster_run.tags.get(AFTER_RUN_TAG, ""))
    first = followed or extraction[0]
    created = first.create_timestamp.timestamp()
    steps: dict[dg.DagsterEventType, dict[str, float]] = {}
    for entry in instance.all_logs(
        first.dagster_run.run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    ):
        if entry.dagster_event and entry.step_key:
            steps.setdefault(entry.dagster_event.event_type, {})[entry.step_key] = entry.timestamp
    starts = steps.get(dg.DagsterEventType.STEP_START, {})
    ends = steps.get(dg.DagsterEventType.STEP_SUCCESS, {})
    transform = [ends[key] - start for key, start in starts.items() if key in ends and "dbt" in key]
    publish_created = first_publish.create_timestamp.timestamp()

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "project": first.dagster_run.tags.get("dagster/asset_partition_range_start")
        or first.dagster_run.tags.get("dagster/partition"),
        "backfill_daemon_to_first_run_created": rounded(
            extraction[0].create_timestamp.timestamp() - launched_at
        ),
        "run_created_to_started": rounded((first.start_time or created) - created),
        "extraction_and_transform_run": rounded((first.end_time or 0) - (first.start_time or 0)),
        "of_which_dbt_step": rounded(transform[0]) if transform else None,
        "run_ended_to_publishing_run_created": rounded(publish_created - (first.end_time or 0)),
        "publishing_run_created_to_started": rounded((first_publish.start_time or 0) - publish_created),
        # The pieces above overlap when the publishing run started ahead (it is created while the transform
        # runs): what counts is the gap between the transform's end and the publishing's first step.
        "transform_end_to_first_publishing_step": rounded(
            (first_step_start(instance, first_publish.dagster_run.run_id) or 0) - (first.end_time or 0)
        ),
    }


def run_backfill(args: argparse.Namespace, scale: int) -> dict[str, Any]:
    cases, executions = args.cases * scale, args.executions * scale
    work = Path(tempfile.mkdtemp(prefix=f"zq_bench_backfill_x{scale}_"))
    home = work / "home"
    dagster_home = work / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copyfile(TENANT_CONFIG, dagster_home / "dagster.yaml")

    document = generate(args.seed, {"projects": args.projects, "cases": cases, "executions": executions})
    project_keys = [project["key"] for project in document["projects"]]
    counts = {
        "projects": len(project_keys),
        "test_cases": len(document.get("testcases", [])),
        "test_executions": len(document.get("testexecutions", [])),
    }
    print(f"scale {scale}: {counts}", flush=True)

    # The embedded server stops when the last process using it (this one) exits.
    server_url = live_url_from_env() or EmbeddedPostgres(home).start()
    name = f"zq_bench_backfill_{datetime.now(UTC):%Y%m%d%H%M%S}_x{scale}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    database_url = with_database(server_url, name)

    zephyr = start_in_thread(fixture=document, rate_limit=args.zephyr_rate_limit)
    del document
    qtest = start_qtest_in_thread(work / "qtest", rate_limit=args.qtest_rate_limit, template="default")
    zephyr_admin = zephyr.base_url.removesuffix("/v2")
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    environment = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "DAGSTER_HOME": str(dagster_home),
        "ZEPHYR_QTEST_HOME": str(home),
        "ZEPHYR_QTEST_REPORTS": str(work / "reports"),
        "DATABASE_URL": database_url,
        "ZEPHYR_BASE_URL": zephyr.base_url,
        "ZEPHYR_API_TOKEN": zephyr.token,
        "QTEST_BASE_URL": qtest.base_url,
        "QTEST_API_TOKEN": qtest.token,
    }
    log_path = work / "dagster-dev.log"
    sampler: MemorySampler | None = None
    dev = None
    try:
        with log_path.open("wb") as log:
            dev = subprocess.Popen(
                [str(Path(bin_dir) / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(port)],
                cwd=REPO,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + DEADLINE_S
        while not _location_loaded(port):
            if dev.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster dev did not load the code location: see {log_path}")
            time.sleep(1)

        if args.qtest_runs != 1:
            # The publishing pool's slots, set as the README tells a user to (dagster-tenant.yaml's default: 1).
            subprocess.run(
                [
                    str(Path(bin_dir) / "dagster"),
                    "instance",
                    "concurrency",
                    "set",
                    "qtest_api",
                    str(args.qtest_runs),
                ],
                cwd=REPO,
                env=environment,
                check=True,
                capture_output=True,
            )
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        # The projects become partitions as they do for a user: the discovery sensor lists them.
        while not set(project_keys) <= set(instance.get_dynamic_partitions(zephyr_projects.name)):
            if dev.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the discovery sensor did not add the projects: see {log_path}")
            time.sleep(1)
        graph_keys = _backfilled_asset_keys()
        httpx.post(f"{zephyr_admin}/_sandbox/stats/reset", timeout=30)
        qtest.reset_stats()
        launched_at = time.time()
        params = {
            "partitionNames": project_keys,
            "assetSelection": [{"path": key.path} for key in graph_keys],
            "fromFailure": False,
            "title": f"tenant of {len(project_keys)} projects",
            # Each project's publishing follows its transform (defs/tenant.py).
            "tags": [{"key": THEN_TAG, "value": THEN_PUBLISH}],
        }
        launched = _graphql(port, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"the backfill was not launched: {launched}")
        backfill_id = launched["backfillId"]
        sampler = MemorySampler(dagster_home, backfill_id)
        sampler.start()
        print(f"backfill {backfill_id} launched over {', '.join(project_keys)}", flush=True)
        # Done when the backfill is, and every project it transformed has been published.
        status = ""
        while True:
            backfill = instance.get_backfill(backfill_id)
            status = backfill.status.value if backfill else "missing"
            runs = backfill_runs(instance, backfill_id)
            transformed = [r for r in runs if _stage_of(r) == "extraction" and r.status.value == "SUCCESS"]
            published = [r for r in runs if _stage_of(r) == "publishing" and r.status.value in RUN_FINISHED]
            if status == "missing" or (status in FINISHED and len(published) >= len(transformed)):
                break
            if dev.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the backfill did not finish: see {log_path}")
            time.sleep(2)
        observed_end = time.time()
        sampler.stop()
        zephyr_stats = _stats(zephyr_admin)
        qtest_stats = qtest.stats()

        runs = backfill_runs(instance, backfill_id)
        run_rows = []
        for run in runs:
            stats = instance.get_run_stats(run.run_id)
            run_rows.append(
                {
                    "run_id": run.run_id,
                    "stage": _stage_of(run),
                    "project": run.tags.get("dagster/partition")
                    or run.tags.get("dagster/asset_partition_range_start"),
                    "status": run.status.value,
                    "start_s": round((stats.start_time or launched_at) - launched_at, 1),
                    "end_s": round((stats.end_time or observed_end) - launched_at, 1),
                    "first_step_s": round(
                        (first_step_start(instance, run.run_id) or stats.start_time or launched_at)
                        - launched_at,
                        1,
                    ),
                    "peak_rss_mib": round(sampler.worker_kib.get(run.run_id, 0) / 1024, 1),
                    "peak_rss_child_mib": round(sampler.children_kib.get(run.run_id, 0) / 1024, 1),
                }
            )
        run_rows.sort(key=lambda row: row["start_s"])
        startup = startup_seconds(instance, runs, launched_at)
        instance.dispose()
    finally:
        if sampler is not None:
            sampler.stop()
        if dev is not None:
            _stop_group(dev)
        zephyr.stop()
        qtest.stop()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    wall = max(row["end_s"] for row in run_rows) if run_rows else observed_end - launched_at
    floors = {
        "extraction": _answered(zephyr_stats) / args.zephyr_rate_limit,
        "publishing": _answered(qtest_stats) / args.qtest_rate_limit,
    }
    bound = max(floors.values())
    stages: dict[str, Any] = {}
    for stage, side_stats, limit in (
        ("extraction", zephyr_stats, args.zephyr_rate_limit),
        ("publishing", qtest_stats, args.qtest_rate_limit),
    ):
        rows = [row for row in run_rows if row["stage"] == stage]
        busy = busy_seconds(rows)
        answered = _answered(side_stats)
        stages[stage] = {
            "runs": len(rows),
            "succeeded": sum(row["status"] == "SUCCESS" for row in rows),
            "busy_seconds": round(busy, 1),
            "first_start_s": min((row["start_s"] for row in rows), default=None),
            "last_end_s": max((row["end_s"] for row in rows), default=None),
            "requests_answered": answered,
            "rate_limited_429": int(side_stats["rate_limited"]),
            "rate_limit_per_s": limit,
            "floor_seconds": round(answered / limit, 1),
            "utilisation_while_busy": round(answered / limit / busy, 3) if busy else None,
            "requests_per_s_while_busy": round(answered / busy, 2) if busy else None,
            "cases_per_s_while_busy": round(counts["test_cases"] / busy, 2) if busy else None,
            "executions_per_s_while_busy": round(counts["test_executions"] / busy, 2) if busy else None,
            "requests_per_execution": round(answered / max(counts["test_executions"], 1), 3),
            "peak_rss_mib": max((row["peak_rss_mib"] for row in rows), default=0.0),
            "peak_rss_child_mib": max((row["peak_rss_child_mib"] for row in rows), default=0.0),
        }
    ratio = wall / bound if bound else None
    publishing_rows = [row for row in run_rows if row["stage"] == "publishing"]
    extraction_rows = [row for row in run_rows if row["stage"] == "extraction"]
    first_publish = min((row["first_step_s"] for row in publishing_rows), default=None)
    # Where the wall time beyond the publishing goes: before the first publishing step (the backfill loop,
    # the first run's start, the first project's extraction and transform, the publishing run's start
    # unless it started ahead) and between publishing runs (none of them doing its steps).
    overhead = {
        "first_extraction_run_start_s": min((row["start_s"] for row in extraction_rows), default=None),
        "first_extraction_run_end_s": min((row["end_s"] for row in extraction_rows), default=None),
        "first_publishing_run_start_s": min((row["start_s"] for row in publishing_rows), default=None),
        "first_publishing_step_s": first_publish,
        "before_first_publishing_step": startup,
        "between_publishing_runs_s": round(
            (max(row["end_s"] for row in publishing_rows) - first_publish) - busy_seconds(publishing_rows), 1
        )
        if publishing_rows and first_publish is not None
        else None,
    }
    return {
        "scale": scale,
        "dataset": {**counts, "cases_per_project": cases, "executions_per_project": executions},
        "backfill_status": status,
        "published_projects": sum(
            row["stage"] == "publishing" and row["status"] == "SUCCESS" for row in run_rows
        ),
        "wall_seconds": round(wall, 1),
        "wall_seconds_until_backfill_seen_complete": round(observed_end - launched_at, 1),
        "floors_seconds": {side: round(value, 1) for side, value in floors.items()},
        "ratio_wall_to_slower_floor": round(ratio, 3) if ratio else None,
        "aim_ratio_at_most": AIM_RATIO,
        "aim_met": bool(
            ratio is not None
            and ratio <= AIM_RATIO
            and status == "COMPLETED_SUCCESS"
            and stages["publishing"]["succeeded"] == counts["projects"]
        ),
        "stages": stages,
        "overhead_seconds": overhead,
        "runs": run_rows,
        "database": redact_url(server_url),
        "dagster_log": str(log_path),
    }


def busy_seconds(rows: list[dict[str, Any]]) -> float:
    """The time at least one of these runs was doing its steps, from its first step's start to its end (two
    publishing runs at once count once; a run waiting for its transform before its first step is not
    busy)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted((row.get("first_step_s", row["start_s"]), row["end_s"]) for row in rows):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _backfilled_asset_keys() -> list[dg.AssetKey]:
    from zephyr_qtest.definitions import defs

    graph = defs().resolve_asset_graph()
    return sorted(
        (
            key
            for key in graph.get_all_asset_keys()
            if graph.get(key).is_materializable and key.path[0] in BACKFILLED_GROUPS
        ),
        key=lambda key: key.to_user_string(),
    )


def projection(result: dict[str, Any]) -> dict[str, Any]:
    """A tenant of 1,000,000 executions (with this tenant's mix of objects per execution), at the measured
    per-stage rates and the same rate limits: each stage's busy time scales with the executions, and the
    stages overlap as well as they did here (the measured ratio of wall time to the slower stage's busy
    time). Requests per execution let anyone redo it for a real tenant's limits."""
    scale = PROJECTION_EXECUTIONS / max(result["dataset"]["test_executions"], 1)
    stages = result["stages"]
    busy = {stage: stages[stage]["busy_seconds"] * scale for stage in ("extraction", "publishing")}
    slower_busy = max(stages["extraction"]["busy_seconds"], stages["publishing"]["busy_seconds"])
    overlap = result["wall_seconds"] / slower_busy if slower_busy else None
    end_to_end = max(busy.values()) * overlap if overlap else None
    return {
        "executions": PROJECTION_EXECUTIONS,
        "assumes": "the measured tenant's objects per execution, the same rate limits, requests growing "
        "linearly with objects, and the measured overlap of the two stages",
        "stage_hours": {stage: round(seconds / 3600, 2) for stage, seconds in busy.items()},
        "requests": {
            stage: round(stages[stage]["requests_per_execution"] * PROJECTION_EXECUTIONS)
            for stage in ("extraction", "publishing")
        },
        "end_to_end_hours": round(end_to_end / 3600, 2) if end_to_end else None,
        "peak_rss_mib_per_stage": {
            stage: {"run": stages[stage]["peak_rss_mib"], "child": stages[stage]["peak_rss_child_mib"]}
            for stage in ("extraction", "publishing")
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=4)
    parser.add_argument("--cases", type=int, default=20, help="test cases per project (at scale 1)")
    parser.add_argument("--executions", type=int, default=80, help="executions per project (at scale 1)")
    parser.add_argument(
        "--zephyr-rate-limit", type=float, default=50.0, help="the Zephyr sandbox's requests/s"
    )
    parser.add_argument("--qtest-rate-limit", type=float, default=4.0, help="the qTest sandbox's requests/s")
    parser.add_argument(
        "--qtest-runs",
        type=int,
        default=2,
        help="slots of the qtest_api pool: publishing runs started at a time (one publishes, the next waits "
        "for qTest's turn; README, 'A whole tenant')",
    )
    parser.add_argument(
        "--scales", default="1", help="comma-separated project size multipliers, one backfill each (e.g. 1,2)"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    results = [run_backfill(args, int(scale)) for scale in args.scales.split(",")]
    for result in results:
        print(
            json.dumps(
                {
                    k: result[k]
                    for k in (
                        "scale",
                        "wall_seconds",
                        "floors_seconds",
                        "ratio_wall_to_slower_floor",
                        "overhead_seconds",
                    )
                }
            ),
            flush=True,
        )
    main_result = results[0]
    memory = {
        f"x{result['scale']}": {
            stage: {
                "peak_rss_mib": result["stages"][stage]["peak_rss_mib"],
                "peak_rss_child_mib": result["stages"][stage]["peak_rss_child_mib"],
            }
            for stage in ("extraction", "publishing")
        }
        for result in results
    }
    report = {
        "benchmark": "backfill",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "configuration": str(TENANT_CONFIG.relative_to(REPO)),
        "rate_limits_per_s": {"zephyr": args.zephyr_rate_limit, "qtest": args.qtest_rate_limit},
        "pool_slots": {"zephyr_api": 1, "postgres": 1, "qtest_api": args.qtest_runs},
        "aim": f"wall ≤ {AIM_RATIO} * max(sum of extraction floors, sum of publishing floors)",
        "aim_met": all(result["aim_met"] for result in results),
        "results": results,
        "peak_memory_by_scale": memory,
        "projection": projection(max(results, key=lambda result: result["scale"])),
    }
    del main_result
    out = args.out or REPO / "bench" / "reports" / f"backfill-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("aim_met", "peak_memory_by_scale", "projection")}, indent=1))
    print("report:", out)
    return 0 if all(result["backfill_status"] == "COMPLETED_SUCCESS" for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
