"""Extraction benchmark: a generated project (5,000 cases, 20,000 executions by default) extracted from the
Zephyr sandbox at a fixed rate limit that the client is not told.

The sandbox runs in a process of its own (it must not share the client's interpreter), the extraction runs
through the real Dagster assets into a real PostgreSQL, and the report compares:

- requests made (counted by the server, 429s and retries included) with the minimum the API needs for
  this data set (pages at the largest page size, one call per object that has children, one per file);
- the 429 answers;
- wall time with its floor, minimum requests ÷ rate limit (so utilisation = floor ÷ wall).

Aims (issue 2): within 2% of the minimum requests, at least 85% of the rate limit, under 3% of requests 429.

    .venv/bin/python bench/extract_benchmark.py [--rate-limit 200] [--size bench] [--seed 7] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zephyr_qtest.defs.ingest.assets import raw_assets  # noqa: E402
from zephyr_qtest.defs.partitions import zephyr_projects  # noqa: E402
from zephyr_qtest.defs.resources import JiraResource, PostgresResource, ZephyrResource  # noqa: E402
from zephyr_qtest.lib.postgres import EmbeddedPostgres, live_url_from_env, redact_url  # noqa: E402
from zephyr_qtest.sandbox.zephyr.generator import generate  # noqa: E402

PAGE = 1000  # the largest page the API serves
STEP_PAGE = 100  # the steps endpoints serve 100 a page


def pages(count: int, size: int) -> int:
    """Requests to list ``count`` items when the last page is recognised without an extra empty one."""
    return max(1, math.ceil(count / size))


def minimum_requests(document: dict[str, Any], project_key: str) -> dict[str, int]:
    """The fewest requests that read every object of the project, by kind."""
    project_id = next(p["id"] for p in document["projects"] if p["key"] == project_key)

    def of_project(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [item for item in items if (item.get("project") or {}).get("id") == project_id]

    cases = of_project(document["testcases"])
    executions = of_project(document["testexecutions"])
    cycles = of_project(document["testcycles"])
    plans = of_project(document["testplans"])
    step_cases = [c for c in cases if str((c.get("testScript") or {}).get("self", "")).endswith("/teststeps")]
    script_cases = [
        c for c in cases if str((c.get("testScript") or {}).get("self", "")).endswith("/testscript")
    ]
    case_steps = {c["key"]: document["teststeps"].get(c["key"], []) for c in step_cases}
    execution_steps = {e["id"]: document["testexecution_steps"].get(str(e["id"]), []) for e in executions}
    project_owner_prefixes = (
        [f"testcases/{c['key']}" for c in cases]
        + [f"testcycles/{c['key']}" for c in cycles]
        + [f"testplans/{p['key']}" for p in plans]
        + [f"testexecutions/{e['id']}" for e in executions]
    )
    owners = set(project_owner_prefixes)
    files = sum(
        len(files)
        for owner, files in document["attachments"].items()
        if owner in owners or owner.rsplit("/teststeps/", 1)[0] in owners
    )
    small = {
        name: pages(len(of_project(document[name])), PAGE)
        for name in ("folders", "statuses", "priorities", "environments")
    }
    return {
        "project": 1,
        **small,
        # cursor listings carry no total: one offset call with maxResults=1 reads the count to check against
        "testcases": pages(len(cases), PAGE) + 1,
        "testcycles": pages(len(cycles), PAGE) + 1,
        "testplans": pages(len(plans), PAGE) + 1,
        "testexecutions": pages(len(executions), PAGE) + 1,
        "teststeps": sum(pages(len(steps), STEP_PAGE) for steps in case_steps.values()),
        "testscripts": len(script_cases),
        "testexecution_steps": sum(pages(len(steps), STEP_PAGE) for steps in execution_steps.values()),
        "attachment_lists": len(cases)
        + sum(len(steps) for steps in case_steps.values())
        + len(cycles)
        + len(plans)
        + len(executions)
        + sum(len(steps) for steps in execution_steps.values()),
        "attachment_downloads": files,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sandbox(seed: int, size: str, rate_limit: float) -> tuple[subprocess.Popen[bytes], str, str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zephyr_qtest.sandbox.zephyr",
            "--port",
            str(port),
            "--seed",
            str(seed),
            "--size",
            size,
            "--rate-limit",
            str(rate_limit),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            info = httpx.get(f"{root}/_sandbox/info", timeout=2).json()
            break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError("the sandbox did not start")
    token = None
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode().strip()
        if line.startswith("ZEPHYR_API_TOKEN="):
            token = line.split("=", 1)[1]
            break
    if not token:
        process.kill()
        raise RuntimeError("the sandbox printed no token")
    return process, info["base_url"], token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rate-limit", type=float, default=200.0, help="the sandbox's requests/s (not told to the client)"
    )
    parser.add_argument("--size", default="bench")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    document = generate(args.seed, args.size)
    project_key = document["projects"][0]["key"]
    minimum = minimum_requests(document, project_key)
    minimum_total = sum(minimum.values())

    home = Path(tempfile.mkdtemp(prefix="zq_bench_"))
    database_url = live_url_from_env() or EmbeddedPostgres(home).start()
    sandbox, base_url, token = start_sandbox(args.seed, args.size, args.rate_limit)
    try:
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(zephyr_projects.name, [project_key])
        httpx.post(base_url.rsplit("/v2", 1)[0] + "/_sandbox/stats/reset")
        started = time.monotonic()
        result = dg.materialize(
            raw_assets,
            partition_key=project_key,
            instance=instance,
            resources={
                "postgres": PostgresResource(database_url=database_url),
                "zephyr": ZephyrResource(base_url=base_url, api_token=token),
                "jira": JiraResource(),
            },
            raise_on_error=False,
        )
        wall = time.monotonic() - started
        stats = httpx.get(base_url.rsplit("/v2", 1)[0] + "/_sandbox/stats").json()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)

    per_asset: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        per_asset[materialization.asset_key.path[-1]] = {
            name: value.value for name, value in materialization.metadata.items() if name != "issue_list"
        }
    api_seconds = sum(float(values.get("seconds", 0.0)) for values in per_asset.values())
    requests = int(stats["requests"])
    rate_limited = int(stats["rate_limited"])
    floor = minimum_total / args.rate_limit
    report = {
        "benchmark": "extract",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "dataset": {
            "seed": args.seed,
            "size": args.size,
            "project": project_key,
            "test_cases": len(document["testcases"]),
            "test_executions": len(document["testexecutions"]),
        },
        "database": redact_url(database_url),
        "rate_limit_per_s": args.rate_limit,
        "success": result.success,
        "requests": {
            "made": requests,
            "minimum": minimum_total,
            "ratio": round(requests / minimum_total, 4),
            "minimum_by_kind": minimum,
            "made_by_path": dict(Counter(stats.get("by_path", {})).most_common(20)),
        },
        "rate_limited_429": {"count": rate_limited, "share": round(rate_limited / max(requests, 1), 4)},
        "server_errors": stats.get("server_errors", 0),
        "seconds": {
            "wall": round(wall, 1),
            "floor_minimum_requests_over_rate": round(floor, 1),
            "in_api_calls": round(api_seconds, 1),
        },
        "utilisation_of_rate_limit": round(floor / wall, 4),
        "achieved_requests_per_s": round(requests / wall, 1),
        "aims": {
            "requests_within_2pct_of_minimum": requests <= minimum_total * 1.02,
            "at_least_85pct_of_rate_limit": floor / wall >= 0.85,
            "under_3pct_429": rate_limited / max(requests, 1) < 0.03,
        },
        "per_asset": per_asset,
    }
    out = args.out or REPO / "bench" / "reports" / f"extract-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    summary = {
        key: report[key]
        for key in (
            "success",
            "rate_limit_per_s",
            "rate_limited_429",
            "seconds",
            "utilisation_of_rate_limit",
            "aims",
        )
    }
    summary["requests"] = {key: report["requests"][key] for key in ("made", "minimum", "ratio")}
    print(json.dumps(summary, indent=2))
    print(f"report: {out}")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
