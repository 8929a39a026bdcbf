"""Publishing benchmark: a generated project (5,000 cases, 20,000 executions by default) published into the
qTest sandbox at a fixed rate limit that the client is not told.

The raw tables are filled straight from the generator (``bench/load_raw_from_fixture.py``) and dbt builds
the mapping marts; then the real Dagster publish assets run against the qTest sandbox, served by a process
of its own. The report gives, per stage, the objects created and the requests the server saw (429s and
retries included), and compares:

- requests made with the minimum: one per created object, plus one approval per test case (configured),
  plus the lookups a stage makes once (project list, field settings, users, execution statuses); the
  automated executions go through the bulk auto-test-logs queue instead: its submissions, its polls, and
  one read of each log whose step logs receive files (their ids) are named apart, as bulk calls;
- the 429 answers;
- wall time with its floor, minimum requests ÷ rate limit (utilisation = floor ÷ wall).

Aims (issue 4): at least 85% of the rate limit; no more requests than the minimum above.

After the stages, the reconciliation's proof (``lib/proof``: the raw payloads against qTest read back) runs
once on the published project; the report gives its time, requests and peak Python memory (``proof``).

    .venv/bin/python bench/publish_benchmark.py [--rate-limit 100] [--cases 5000] [--executions 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from load_raw_from_fixture import load_raw  # noqa: E402
from transform_benchmark import dbt_build  # noqa: E402

from zephyr_qtest.defs.partitions import zephyr_projects  # noqa: E402
from zephyr_qtest.defs.publish.qtest import STAGES, publish_assets  # noqa: E402
from zephyr_qtest.defs.resources import PostgresResource, QtestResource  # noqa: E402
from zephyr_qtest.lib.postgres import EmbeddedPostgres, live_url_from_env, redact_url, with_database  # noqa: E402
from zephyr_qtest.sandbox.zephyr.generator import generate  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_qtest(state: Path, rate_limit: float) -> tuple[subprocess.Popen[bytes], str, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "zephyr_qtest.sandbox.qtest", "--state", str(state), "--port", str(port),
         "--rate-limit", str(rate_limit), "--log-level", "warning"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    base_url = token = None
    for raw in process.stdout:
        line = raw.decode().strip()
        if line.startswith("QTEST_BASE_URL="):
            base_url = line.split("=", 1)[1]
        if line.startswith("QTEST_API_TOKEN="):
            token = line.split("=", 1)[1]
            break
    if not base_url or not token:
        process.kill()
        raise RuntimeError("the qTest sandbox printed no URL or token")
    return process, base_url, token


def mapping_counts(database_url: str, project_key: str) -> dict[str, int]:
    queries = {
        "modules": "select count(*) from qtest_mapping.qtest_modules where project_key = %s",
        "test_cases": "select count(*) from qtest_mapping.qtest_test_cases where project_key = %s",
        "test_cycles": "select count(*) from qtest_mapping.qtest_test_cycles where project_key = %s",
        "test_runs": "select count(*) from qtest_mapping.qtest_test_runs where project_key = %s",
        "test_logs": "select count(*) from qtest_mapping.qtest_test_logs where project_key = %s and skip_reason is null",
        "attachments": "select count(*) from qtest_mapping.qtest_attachments where project_key = %s "
        "and skip_reason is null and qtest_object_type is not null",
    }
    with psycopg.connect(database_url) as conn:
        return {stage: conn.execute(query, (project_key,)).fetchone()[0] for stage, query in queries.items()}


def measure_proof(database_url: str, base_url: str, token: str, project_key: str) -> dict[str, Any]:
    """The reconciliation's proof (raw payloads against qTest read back) on the published project: its time,
    the requests it made, the Python memory it peaked at, and what it compared."""
    import asyncio
    import tracemalloc

    from zephyr_qtest.lib.proof.compare import prove
    from zephyr_qtest.lib.qtest.client import QtestClient
    from zephyr_qtest.lib.store import Store

    async def run() -> Any:
        with Store(database_url) as store:
            async with QtestClient(base_url, token) as client:
                return await prove(store, client, project_key)

    httpx.post(f"{base_url}/_sandbox/stats/reset")
    tracemalloc.start()
    started = time.monotonic()
    _, ledger = asyncio.run(run())
    seconds = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = httpx.get(f"{base_url}/_sandbox/stats").json()
    return {
        "seconds": round(seconds, 1),
        "requests": stats["requests"],
        "rate_limited_429": stats["rate_limited"],
        "peak_python_mib": round(peak / 2**20, 1),
        "values_compared": ledger.values_compared,
        "ledger_lines": len(ledger.lines),
        "objects": {name: count.in_zephyr for name, count in ledger.counts.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate-limit", type=float, default=100.0, help="the qTest sandbox's requests/s")
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--executions", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zq_bench_publish_"))
    os.environ["ZEPHYR_QTEST_HOME"] = str(work / "home")
    os.environ["ZEPHYR_QTEST_REPORTS"] = str(work / "reports")
    document = generate(args.seed, {"projects": 1, "cases": args.cases, "executions": args.executions})
    project_key = document["projects"][0]["key"]
    server_url = live_url_from_env() or EmbeddedPostgres(work / "home").start()
    name = f"zq_bench_publish_{datetime.now(UTC):%Y%m%d%H%M%S}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    database_url = with_database(server_url, name)
    load_raw(database_url, document, [project_key])
    del document
    build = dbt_build(database_url, project_key, work)
    if not build["ok"]:
        raise SystemExit(f"dbt build failed: {build}")
    objects = mapping_counts(database_url, project_key)
    print(f"mapping ready: {objects}", flush=True)

    sandbox, base_url, token = start_qtest(work / "qtest", args.rate_limit)
    per_stage: dict[str, dict[str, Any]] = {}
    try:
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(zephyr_projects.name, [project_key])
        resources = {
            "postgres": PostgresResource(database_url=database_url),
            "qtest": QtestResource(base_url=base_url, api_token=token),
        }
        started_all = time.monotonic()
        for stage in STAGES:
            httpx.post(f"{base_url}/_sandbox/stats/reset")
            asset = next(a for a in publish_assets if a.key.path[-1] == stage)
            started = time.monotonic()
            result = dg.materialize([asset], partition_key=project_key, instance=instance, resources=resources,
                                    raise_on_error=False)  # fmt: skip
            wall = time.monotonic() - started
            stats = httpx.get(f"{base_url}/_sandbox/stats").json()
            metadata = {
                key: getattr(value, "value", value)
                for event in result.get_asset_materialization_events()
                for key, value in event.materialization.metadata.items()
                if isinstance(getattr(value, "value", value), int | float)
            }
            by_path = Counter(stats["by_path"])
            # Answered requests (2xx) by kind: a 429 is counted apart, as the price of finding the rate.
            answered = {
                path: sum(n for status, n in statuses.items() if status.startswith("2"))
                for path, statuses in stats["by_path_status"].items()
            }
            created = int(metadata.get("created", 0))
            approvals = sum(n for path, n in answered.items() if path.endswith("/approve"))
            bulk = {
                "submissions": sum(n for path, n in answered.items() if path.endswith("/auto-test-logs")),
                "queue_polls": sum(n for path, n in answered.items() if "/queue-processing/" in path),
                "log_reads_for_step_log_ids": sum(
                    n
                    for path, n in answered.items()
                    if path.startswith("GET") and path.endswith("/test-logs/{id}")
                ),
            }
            lookups = sum(n for path, n in answered.items() if path.startswith("GET")) - bulk["queue_polls"]
            lookups -= bulk["log_reads_for_step_log_ids"]
            lookups += sum(n for path, n in answered.items() if path.endswith("/search"))
            # Resolving the qTest project: listing projects, and creating it the first time.
            lookups += answered.get("POST /api/v3/projects", 0)
            # Logs the queue made are not written one by one.
            queued = int(metadata.get("created_in_batches", 0)) if stage == "test_logs" else 0
            # One write per object to create (and one approval per test case), plus the stage's lookups
            # and bulk calls.
            minimum = (
                (objects[stage] - queued) * (2 if stage == "test_cases" else 1) + lookups + sum(bulk.values())
            )
            per_stage[stage] = {
                "success": result.success,
                "objects": objects[stage],
                "created": created,
                "requests": stats["requests"],
                "requests_by_path": dict(by_path.most_common()),
                "statuses_by_path": stats["by_path_status"],
                "approvals": approvals,
                "lookups": lookups,
                "bulk_calls": bulk,
                "objects_through_bulk_queue": queued,
                "minimum_requests": minimum,
                "rate_limited_429": stats["rate_limited"],
                "requests_per_object": round(stats["requests"] / max(created, 1), 3),
                "wall_seconds": round(wall, 1),
                "floor_seconds": round(minimum / args.rate_limit, 1),
            }
            print(stage, json.dumps({k: v for k, v in per_stage[stage].items() if k != "requests_by_path"}),
                  flush=True)  # fmt: skip
        wall_all = time.monotonic() - started_all
        proof = measure_proof(database_url, base_url, token, project_key)
        print("proof", json.dumps(proof), flush=True)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    requests = sum(s["requests"] for s in per_stage.values())
    minimum = sum(s["minimum_requests"] for s in per_stage.values())
    limited = sum(s["rate_limited_429"] for s in per_stage.values())
    floor = minimum / args.rate_limit
    in_stages = sum(s["wall_seconds"] for s in per_stage.values())
    report = {
        "benchmark": "publish",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "database": redact_url(server_url),
        "dataset": {
            "project": project_key,
            "cases": args.cases,
            "executions": args.executions,
            "objects": objects,
        },
        "rate_limit_per_s": args.rate_limit,
        "success": all(s["success"] for s in per_stage.values()),
        "stages": per_stage,
        "requests": {
            "made": requests,
            "minimum": minimum,
            "rate_limited_429": limited,
            "without_429": requests - limited,
        },
        "seconds": {
            "wall_all_stages": round(wall_all, 1),
            "in_stages": round(in_stages, 1),
            "floor_minimum_requests_over_rate": round(floor, 1),
        },
        "utilisation_of_rate_limit": round(floor / in_stages, 3),
        "proof": proof,
        "aims": {
            "at_least_85pct_of_rate_limit": floor / in_stages >= 0.85,
            "no_requests_beyond_objects_approvals_lookups_and_bulk_calls": requests - limited <= minimum,
            # Lookups are per stage (field settings, users, statuses, projects), never per object.
            "lookups_per_stage_at_most_10": all(s["lookups"] <= 10 for s in per_stage.values()),
        },
    }
    out = args.out or REPO / "bench" / "reports" / f"publish-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        json.dumps(
            {k: report[k] for k in ("requests", "seconds", "utilisation_of_rate_limit", "aims")}, indent=1
        )
    )
    print("report:", out)
    return 0 if report["success"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
