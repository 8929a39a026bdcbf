"""Delta benchmark: what a run after a complete one costs in Zephyr requests, after 1% of a project changed.

A first extraction of a generated project (the ``small`` preset's one project: 150 cases, 600 executions by
default) reads everything; the sandbox then changes 1% of each kind of the project's objects (cases, cycles,
plans; executions run again) and deletes one case (``POST /_sandbox/churn``); the second run is a delta. The
report has both runs' Zephyr requests (counted by the server), by route, and their ratio.

Aim (issue 15): the delta costs at most 5% of the first run's requests.

    .venv/bin/python bench/delta_benchmark.py [--size small] [--seed 7] [--share 0.01] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zephyr_qtest.defs.ingest.assets import raw_assets  # noqa: E402
from zephyr_qtest.defs.partitions import zephyr_projects  # noqa: E402
from zephyr_qtest.defs.resources import JiraResource, PostgresResource, ZephyrResource  # noqa: E402
from zephyr_qtest.lib.postgres import EmbeddedPostgres, live_url_from_env, redact_url  # noqa: E402
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread  # noqa: E402

AIM = 0.05


def extract(sandbox: ZephyrSandboxHandle, database_url: str, project: str) -> dict[str, Any]:
    """One run of every raw asset for `project`; the server's count of its requests and the wall time."""
    sandbox.reset_stats()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(zephyr_projects.name, [project])
    started = time.monotonic()
    result = dg.materialize(
        raw_assets,
        partition_key=project,
        instance=instance,
        resources={
            "postgres": PostgresResource(database_url=database_url),
            "zephyr": ZephyrResource(base_url=sandbox.base_url, api_token=sandbox.token),
            "jira": JiraResource(),
        },
        raise_on_error=False,
    )
    seconds = time.monotonic() - started
    stats = sandbox.stats()
    return {
        "success": result.success,
        "seconds": round(seconds, 2),
        "requests": stats["requests"],
        "by_path": dict(sorted(stats["by_path"].items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="small", help="the sandbox's size preset (one project is used)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--share", type=float, default=0.01, help="share of each kind of object changed")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "reports" / "delta.json")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="zq_bench_delta_"))
    database_url = live_url_from_env() or EmbeddedPostgres(home).start()
    size = {"preset": args.size, "projects": 1}
    with start_in_thread(seed=args.seed, size=size) as sandbox:
        project = sandbox.info()["counts"]["per_project"].popitem()[0]
        first = extract(sandbox, database_url, project)
        churned = sandbox.churn(project, args.share, delete_cases=1, seed=args.seed)
        delta = extract(sandbox, database_url, project)
    ratio = delta["requests"] / first["requests"] if first["requests"] else None
    report = {
        "benchmark": "delta",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "database": redact_url(database_url),
        "project": project,
        "size": size,
        "share_changed": args.share,
        "changed": {kind: len(refs) for kind, refs in churned["changed"].items()},
        "deleted": churned["deleted"],
        "first_run": first,
        "delta_run": delta,
        "request_ratio": None if ratio is None else round(ratio, 4),
        "aim": AIM,
        "passed": bool(first["success"] and delta["success"] and ratio is not None and ratio <= AIM),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"first run {first['requests']} requests, delta {delta['requests']} "
        f"({report['request_ratio']:.2%} of the first; aim <= {AIM:.0%}) -> {args.out}"
    )
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
