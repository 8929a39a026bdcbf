"""Snowflake benchmark: copying one generated project's canonical tables (100,000 test cases, 1,000,000
executions) from PostgreSQL into the local Snowflake emulation (fakesnow on a DuckDB file).

The canonical tables are filled the cheap way, as ``bench/transform_benchmark.py`` does (its functions are
reused): the raw tables straight from the generator, then one ``dbt build`` for the project. Then every
canonical table is copied with the code the ``snowflake/*`` assets run (``lib/snowflake.replace_partition``:
server-side cursor in chunks, ``write_pandas`` into a load table, delete + insert in one transaction),
twice: into empty tables, then again replacing the project's rows, as every later run does. Each copy is
checked (row count and key checksum equal to PostgreSQL's). The report gives rows per second per table
and overall.

    .venv/bin/python bench/snowflake_benchmark.py [--cases 100000] [--executions 1000000] [--seed 5]
        [--chunk-rows 100000] [--database-url postgresql://...] [--out FILE]

Without ``--database-url`` (or DATABASE_URL / POSTGRES_*) it runs on the embedded PostgreSQL server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from load_raw_from_fixture import load_raw  # noqa: E402
from transform_benchmark import dbt_build  # noqa: E402

from zephyr_qtest.lib import snowflake as warehouse  # noqa: E402
from zephyr_qtest.lib.postgres import (  # noqa: E402
    EmbeddedPostgres,
    connect,
    live_url_from_env,
    redact_url,
    with_database,
)
from zephyr_qtest.sandbox.zephyr.generator import generate  # noqa: E402


def copy_round(
    database_url: str,
    sf_conn: Any,
    project_key: str,
    contracts: list[warehouse.TableContract],
    chunk_rows: int,
) -> dict[str, Any]:
    """Every canonical table of the project copied once (one transaction per table, as one asset does)."""
    tables: dict[str, Any] = {}
    started = time.monotonic()
    checks_seconds = 0.0
    for contract in contracts:
        table_started = time.monotonic()
        (copy,) = warehouse.replace_partition(
            database_url, sf_conn, [contract], project_key, chunk_rows=chunk_rows
        )
        seconds = time.monotonic() - table_started
        checked = time.monotonic()
        copied = warehouse.snowflake_tally(sf_conn, contract, project_key)
        checks_seconds += time.monotonic() - checked
        tables[contract.name] = {
            "rows": copy.rows,
            "chunks": copy.chunks,
            "seconds": round(seconds, 2),
            "rows_per_second": round(copy.rows / seconds) if seconds > 0 else 0,
            "checks_pass": copied == copy.postgres,
        }
        print(
            f"  {contract.name:<22} {copy.rows:>10,} rows {seconds:7.1f} s "
            f"{tables[contract.name]['rows_per_second']:>9,} rows/s",
            flush=True,
        )
    # The copy's time, without the Snowflake side of the checks (timed apart); the PostgreSQL side of the
    # checks is read inside replace_partition and counted in.
    seconds = time.monotonic() - started - checks_seconds
    rows = sum(table["rows"] for table in tables.values())
    return {
        "rows": rows,
        "seconds": round(seconds, 1),
        "rows_per_second": round(rows / seconds) if seconds > 0 else 0,
        "checks_pass": all(table["checks_pass"] for table in tables.values()),
        "snowflake_checks_seconds": round(checks_seconds, 1),
        "tables": tables,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--chunk-rows", type=int, default=warehouse.DEFAULT_CHUNK_ROWS)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    started = time.monotonic()
    document = generate(args.seed, {"projects": 1, "cases": args.cases, "executions": args.executions})
    project_key = document["projects"][0]["key"]
    generated = time.monotonic() - started
    print(f"generated {args.cases:,} cases / {args.executions:,} executions in {generated:.0f} s", flush=True)

    work = Path(tempfile.mkdtemp(prefix="zq_bench_snowflake_"))
    server_url = args.database_url or live_url_from_env() or EmbeddedPostgres(work / "home").start()
    name = f"zq_bench_snowflake_{datetime.now(UTC):%Y%m%d%H%M%S}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    database_url = with_database(server_url, name)
    contracts = list(warehouse.canonical_contracts().values())
    try:
        started = time.monotonic()
        raw_rows = load_raw(database_url, document, [project_key])
        loaded = time.monotonic() - started
        del document
        print(f"raw rows loaded in {loaded:.0f} s: {sum(raw_rows.values()):,}", flush=True)
        build = dbt_build(database_url, project_key, work)
        print(f"dbt build: {build['wall_seconds']} s ok={build['ok']}", flush=True)
        if not build["ok"]:
            print(json.dumps(build, indent=2), file=sys.stderr)
            return 1
        with connect(database_url) as conn:
            postgres_rows = {
                contract.name: warehouse.postgres_tally(conn, contract, project_key).rows
                for contract in contracts
            }
        directory = work / "snowflake"
        rounds = []
        with warehouse.embedded_snowflake(directory):
            import snowflake.connector

            sf_conn = snowflake.connector.connect(
                database=warehouse.EMBEDDED_DATABASE, schema=warehouse.EMBEDDED_SCHEMA
            )
            try:
                for label in ("first copy (empty tables)", "re-copy (replaces the project's rows)"):
                    print(f"{label}:", flush=True)
                    result = copy_round(database_url, sf_conn, project_key, contracts, args.chunk_rows)
                    rounds.append({"round": label, **result})
                    print(
                        f"  total {result['rows']:,} rows in {result['seconds']} s: {result['rows_per_second']:,} rows/s",
                        flush=True,
                    )
            finally:
                sf_conn.close()
        duckdb_bytes = sum(path.stat().st_size for path in directory.glob("*.db"))
        shutil.rmtree(directory, ignore_errors=True)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    report = {
        "benchmark": "snowflake",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "database": redact_url(server_url),
        "target": "embedded Snowflake emulation (fakesnow on DuckDB)",
        "data": {
            "project": project_key,
            "cases": args.cases,
            "executions": args.executions,
            "canonical_rows": postgres_rows,
        },
        "chunk_rows": args.chunk_rows,
        "seconds": {
            "generate": round(generated, 1),
            "load_raw": round(loaded, 1),
            "dbt_build": build["wall_seconds"],
        },
        "rounds": rounds,
        "rows_per_second": {round_["round"]: round_["rows_per_second"] for round_ in rounds},
        "checks_pass": all(round_["checks_pass"] for round_ in rounds),
        "duckdb_file_mb": round(duckdb_bytes / 1e6, 1),
        # The process's high-water mark, generating the fixture (the whole document in memory) included.
        "peak_rss_mb_including_generation": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    out = args.out or REPO / "bench" / "reports" / f"snowflake-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"rows_per_second": report["rows_per_second"], "checks_pass": report["checks_pass"]}))
    print("report:", out)
    return 0 if report["checks_pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
