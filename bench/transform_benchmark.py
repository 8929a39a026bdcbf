"""Transform benchmark: the dbt build (staging, canonical, qTest mapping, with every data test) for one
generated project of 100,000 test cases and 1,000,000 executions, on a real PostgreSQL.

The raw tables are filled straight from the generator (``bench/load_raw_from_fixture.py``: the rows the
extraction writes, without the rate-limited API), then ``dbt build`` runs for the project twice: the first
build creates the tables, the second replaces the project's rows as every later run does. The report gives
each build's wall time, the seconds per layer (models) and of the tests, from dbt's run_results.json.

Aim (issue 3): a build under 3 minutes on a 2-core machine, set-based SQL only.

    .venv/bin/python bench/transform_benchmark.py [--cases 100000] [--executions 1000000] [--seed 5]
        [--database-url postgresql://...] [--out FILE]

Without ``--database-url`` (or DATABASE_URL / POSTGRES_*) it runs on the embedded server, as a user's
machine does by default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from load_raw_from_fixture import load_raw  # noqa: E402

from zephyr_qtest.lib.dbt import DBT_PROJECT_DIR, build_dbt_args, dbt_connection_env, dbt_executable  # noqa: E402
from zephyr_qtest.lib.postgres import (  # noqa: E402
    EmbeddedPostgres,
    live_url_from_env,
    redact_url,
    with_database,
)
from zephyr_qtest.sandbox.zephyr.generator import generate  # noqa: E402

AIM_SECONDS = 180.0


def dbt_build(database_url: str, project_key: str, work: Path) -> dict[str, Any]:
    """One ``dbt build`` for the project; its wall time and seconds per layer from run_results.json."""
    target = work / f"target-{time.monotonic_ns()}"
    env = {
        **os.environ,
        **dbt_connection_env(database_url),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target),
    }
    command = [dbt_executable(), *build_dbt_args(project_key), "--quiet"]
    command += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    started = time.monotonic()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    results = json.loads((target / "run_results.json").read_text())["results"]
    layers: dict[str, float] = defaultdict(float)
    slowest: list[tuple[float, str]] = []
    for result in results:
        unique_id = result["unique_id"]
        kind = unique_id.split(".", 1)[0]
        seconds = float(result["execution_time"])
        if kind == "model":
            name = unique_id.rsplit(".", 1)[1]
            layer = (
                "staging"
                if name.startswith("stg_")
                else "qtest_mapping"
                if name.startswith(("qtest_", "unmapped"))
                else "canonical"
            )
        else:
            layer = {"test": "data tests", "unit_test": "unit tests", "seed": "seeds"}.get(kind, kind)
        layers[layer] += seconds
        slowest.append((seconds, unique_id))
    failures = [
        r["unique_id"] + ": " + str(r.get("message"))
        for r in results
        if r["status"] not in ("success", "pass")
    ]
    return {
        "ok": completed.returncode == 0 and not failures,
        "wall_seconds": round(wall, 1),
        "seconds_by_layer": {name: round(value, 1) for name, value in sorted(layers.items())},
        "slowest_nodes": [
            {"node": node, "seconds": round(s, 1)} for s, node in sorted(slowest, reverse=True)[:10]
        ],
        "failures": failures[:20],
        "stderr_tail": completed.stderr[-2000:] if completed.returncode else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    started = time.monotonic()
    document = generate(args.seed, {"projects": 1, "cases": args.cases, "executions": args.executions})
    project_key = document["projects"][0]["key"]
    generated = time.monotonic() - started
    print(f"generated {args.cases:,} cases / {args.executions:,} executions in {generated:.0f} s", flush=True)

    work = Path(tempfile.mkdtemp(prefix="zq_bench_transform_"))
    server_url = args.database_url or live_url_from_env() or EmbeddedPostgres(work / "home").start()
    name = f"zq_bench_transform_{datetime.now(UTC):%Y%m%d%H%M%S}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    database_url = with_database(server_url, name)
    try:
        started = time.monotonic()
        rows = load_raw(database_url, document, [project_key])
        loaded = time.monotonic() - started
        del document
        print(f"raw rows loaded in {loaded:.0f} s: {sum(rows.values()):,}", flush=True)
        builds = []
        for label in ("first build (creates the tables)", "re-build (replaces the project's rows)"):
            build = dbt_build(database_url, project_key, work)
            builds.append({"build": label, **build})
            print(f"{label}: {build['wall_seconds']} s {build['seconds_by_layer']}", flush=True)
        with psycopg.connect(database_url) as conn:
            counts = {
                f"{schema}.{table}": conn.execute(
                    sql.SQL("select count(*) from {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(table)
                    )
                ).fetchone()[0]
                for schema, table in conn.execute(
                    "select table_schema, table_name from information_schema.tables "
                    "where table_schema in ('canonical', 'qtest_mapping') and table_type = 'BASE TABLE' order by 1, 2"
                ).fetchall()
            }
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    worst = max(build["wall_seconds"] for build in builds)
    report = {
        "benchmark": "transform",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "database": redact_url(server_url),
        "data": {
            "project": project_key,
            "cases": args.cases,
            "executions": args.executions,
            "raw_rows": rows,
        },
        "seconds": {"generate": round(generated, 1), "load_raw": round(loaded, 1)},
        "builds": builds,
        "mart_rows": counts,
        "aim": {
            "build_under_seconds": AIM_SECONDS,
            "worst_build_seconds": worst,
            "met": worst < AIM_SECONDS and all(b["ok"] for b in builds),
        },
    }
    out = args.out or REPO / "bench" / "reports" / f"transform-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["aim"]), "\nreport:", out)
    return 0 if report["aim"]["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
