"""Delta benchmark: what a run after a complete one costs, after 1% of a project changed, on both sides.

A first migration of a generated project (the ``small`` preset's one project: 150 cases, 600 executions by
default) reads everything from the Zephyr sandbox and publishes everything into the qTest sandbox; the
Zephyr sandbox then changes 1% of each kind of the project's objects (cases, cycles, plans; executions run
again) and deletes one case (``POST /_sandbox/churn``); the second run is a delta, extraction, transform and
publishing. The report has, for both runs:

- Zephyr: the extraction's requests (counted by the server), by route, and their ratio;
- qTest: the publishing's requests and write requests (counted by the qTest sandbox; searches, which are
  reads sent as POSTs, left out), by route;
- which qTest objects the delta changed, read from qTest (the project dumped before and after it, every
  object compared whole) and traced through the id map to the Zephyr objects they were made from
  (``tests/qtest_snapshot.trace_delta``, which tests/integration/test_delta_publish.py uses too): those of
  a Zephyr change, per type, against what the change touched, and any changed without one.

Aims (issue 15): the delta costs at most 5% of the first run's Zephyr requests, and touches only the
changed qTest objects.

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
from dagster_dbt import DbtCliResource

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.qtest_snapshot import api_writes, objects, trace_delta  # noqa: E402
from zephyr_qtest.defs.ingest.assets import raw_assets  # noqa: E402
from zephyr_qtest.defs.partitions import zephyr_projects  # noqa: E402
from zephyr_qtest.defs.publish.qtest import publish_assets, reconciliation  # noqa: E402
from zephyr_qtest.defs.resources import JiraResource, PostgresResource, QtestResource, ZephyrResource  # noqa: E402
from zephyr_qtest.defs.transform.dbt_models import dbt_project, zephyr_dbt_models  # noqa: E402
from zephyr_qtest.lib.dbt import dbt_executable  # noqa: E402
from zephyr_qtest.lib.postgres import EmbeddedPostgres, connect, live_url_from_env, redact_url  # noqa: E402
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread  # noqa: E402
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread  # noqa: E402

AIM = 0.05


def _materialize(assets: list[Any], project: str, resources: dict[str, Any]) -> tuple[bool, float]:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(zephyr_projects.name, [project])
    started = time.monotonic()
    result = dg.materialize(
        assets, partition_key=project, instance=instance, resources=resources, raise_on_error=False
    )
    return result.success, time.monotonic() - started


def migrate(
    zephyr: ZephyrSandboxHandle, qtest: QTestSandboxHandle, database_url: str, project: str
) -> dict[str, Any]:
    """One whole run of `project`: every raw asset (the Zephyr side, counted alone), then the transform,
    the publishing and the reconciliation (the qTest side). Each server's count of the requests it
    answered, and the wall times."""
    resources = {
        "postgres": PostgresResource(database_url=database_url),
        "zephyr": ZephyrResource(base_url=zephyr.base_url, api_token=zephyr.token),
        "jira": JiraResource(),
        "qtest": QtestResource(base_url=qtest.base_url, api_token=qtest.token),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    }
    zephyr.reset_stats()
    extracted, extraction_s = _materialize(raw_assets, project, resources)
    zephyr_stats = zephyr.stats()
    zephyr.reset_stats()
    qtest.reset_stats()
    published, publishing_s = _materialize(
        [zephyr_dbt_models, *publish_assets, reconciliation], project, resources
    )
    qtest_stats = qtest.stats()
    writes = api_writes(qtest)
    return {
        "success": extracted and published,
        "seconds": round(extraction_s, 2),
        "requests": zephyr_stats["requests"],
        "by_path": dict(sorted(zephyr_stats["by_path"].items())),
        # Zephyr requests of the transform and publishing (attachments' files are read while published).
        "zephyr_requests_while_publishing": zephyr.stats()["requests"],
        "qtest": {
            "seconds": round(publishing_s, 2),
            "requests": qtest_stats["requests"],
            "writes": sum(writes.values()),
            "writes_by_route": dict(sorted(writes.items())),
        },
    }


def qtest_project_id(database_url: str, project: str) -> int:
    """The qTest project the run published `project` into, from the id map."""
    with connect(database_url) as conn:
        row = conn.execute(
            "select qtest_id from migration.id_map where project_key = %s and object_type = 'project'",
            (project,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"the first run published no qTest project for {project}")
    return int(row[0])


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
    with (
        start_in_thread(seed=args.seed, size=size) as zephyr,
        start_qtest_in_thread(home / "qtest", seed=args.seed, queue_delay_s=0) as qtest,
    ):
        project = zephyr.info()["counts"]["per_project"].popitem()[0]
        first = migrate(zephyr, qtest, database_url, project)
        project_id = qtest_project_id(database_url, project)
        before = qtest.dump(project_id)
        churned = zephyr.churn(project, args.share, delete_cases=1, seed=args.seed)
        delta = migrate(zephyr, qtest, database_url, project)
        after = qtest.dump(project_id)
    trace = trace_delta(before, after, database_url, project, churned)
    ratio = delta["requests"] / first["requests"] if first["requests"] else None
    write_ratio = delta["qtest"]["writes"] / first["qtest"]["writes"] if first["qtest"]["writes"] else None
    changed_by_list: dict[str, int] = {}
    for dumped, _ in trace.changed:
        changed_by_list[dumped] = changed_by_list.get(dumped, 0) + 1
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
        "qtest_write_ratio": None if write_ratio is None else round(write_ratio, 4),
        "qtest_objects": {
            "in_project_after": len(objects(after)),
            "changed_by_list": dict(sorted(changed_by_list.items())),
            "zephyr_changes_by_type": {kind: len(keys) for kind, keys in sorted(trace.expected.items())},
            "changed_from_a_zephyr_change_by_type": {
                kind: len(keys) for kind, keys in sorted(trace.touched.items())
            },
            "changed_without_a_zephyr_change": [list(stranger) for stranger in trace.strangers],
            "zephyr_changes_missing_in_qtest": {kind: sorted(keys) for kind, keys in trace.missing().items()},
            "removed": sorted(([dumped, object_id] for dumped, object_id in trace.removed), key=str),
        },
        "aim": AIM,
        "touches_only_changed_objects": trace.only_changes(),
        "passed": bool(
            first["success"]
            and delta["success"]
            and ratio is not None
            and ratio <= AIM
            and trace.only_changes()
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"Zephyr: first run {first['requests']} requests, delta {delta['requests']} "
        f"({report['request_ratio']:.2%} of the first; aim <= {AIM:.0%}); qTest writes: first run "
        f"{first['qtest']['writes']}, delta {delta['qtest']['writes']}; qTest objects changed by the delta: "
        f"{len(trace.changed)}, without a Zephyr change: {len(trace.strangers)}, Zephyr changes missing: "
        f"{sum(map(len, trace.missing().values()))} -> {args.out}"
    )
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
