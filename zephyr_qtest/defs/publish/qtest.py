"""The qTest assets: one Zephyr project's mapping marts published into qTest, exactly once.

One asset per publishing stage of the registry of qTest kinds (``lib/qtest/kinds``: modules, then test
cases with their steps, releases and cycles, runs, logs with step logs, attachments): each stage reads
its ``qtest_mapping`` tables and follows the exactly-once protocol of ``lib/qtest/exactly_once.py``, so a
re-run skips what is done, updates what changed, and finds again what a killed run may have created. A
failed object (a status qTest does not know, a 400, a missing parent) is recorded in ``migration.id_map``
with its reason and the others go on; the asset still materializes what it could and its check
``<stage>_all_published`` fails, naming them, so that every later stage (attachments, the reconciliation)
runs, and a re-run after the fix sends only what is left. Only what stops the whole stage (another writer,
fields it cannot set up, an error before any object is sent) fails the asset. Each stage is the only writer of its project on its qTest site while it runs
(``lib/qtest/one_writer.py``), and its metadata names that target (site and qTest project).
"""

from pathlib import Path
from typing import Any

import dagster as dg

from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.defs.resources import PostgresResource, QtestResource
from zephyr_qtest.lib.markdown import cell
from zephyr_qtest.lib.qtest import reconcile
from zephyr_qtest.lib.qtest.field_setup import FieldSetupError
from zephyr_qtest.lib.qtest.id_map import project_targets, site_of
from zephyr_qtest.lib.qtest.kinds import (
    reconciled_types,
    stage_description,
    stage_marts,
    stages,
    upstream_stages,
)
from zephyr_qtest.lib.qtest.kinds.vocabulary import BY_NAME
from zephyr_qtest.lib.qtest.loader import publish_stage
from zephyr_qtest.lib.qtest.one_writer import ProjectBusy, WhenBusy, Writer
from zephyr_qtest.settings import load_settings

QTEST_GROUP = "qtest"


def reports_dir() -> Path:
    """Where the reconciliation reports go: ZEPHYR_QTEST_REPORTS, else reports/ beside the project home."""
    return load_settings().paths.reports_dir()


FAILURES_SHOWN = 20

# The publishing stages (asset names), in load order.
STAGES: tuple[str, ...] = stages()


def _failures_markdown(failures: list[Any]) -> str:
    lines = ["| object | state | reason |", "|---|---|---|"]
    for failure in failures[:FAILURES_SHOWN]:
        # pending: qTest may hold it (a re-run looks for it first); failed: refused (a re-run sends it).
        state = "pending" if failure.pending else "failed"
        lines.append(f"| {cell(failure.source_key)} | {state} | {cell(failure.reason, 300)} |")
    if len(failures) > FAILURES_SHOWN:
        lines.append(
            f"| … {len(failures) - FAILURES_SHOWN} more in migration.id_map (state failed or pending) | | |"
        )
    return "\n".join(lines)


def _target_metadata(postgres: PostgresResource, site_url: str, project_key: str) -> dict[str, Any]:
    """The qTest site and project a stage published to (as the id map records them)."""
    site = site_of(site_url)
    qtest_id, name = project_targets(postgres.store(), site, [project_key]).get(project_key, (None, None))
    return {"qtest_site": dg.MetadataValue.url(site), "qtest_project": f"{name} (id {qtest_id})"}


def published_check_name(stage: str) -> str:
    """The name of a publishing stage's check: every object of the stage is in qTest."""
    return f"{stage}_all_published"


def build_publish_asset(stage: str) -> dg.AssetsDefinition:
    asset_key = dg.AssetKey([QTEST_GROUP, stage])

    @dg.asset(
        name=stage,
        key_prefix=[QTEST_GROUP],
        group_name=QTEST_GROUP,
        description=stage_description(stage),
        partitions_def=zephyr_projects,
        deps=[dg.AssetKey(["qtest_mapping", mart]) for mart in stage_marts(stage)]
        + [dg.AssetKey([QTEST_GROUP, name]) for name in upstream_stages(stage)],
        kinds={"qtest", "postgres"},
        pool="qtest_api",
        backfill_policy=dg.BackfillPolicy.multi_run(1),
        check_specs=[
            dg.AssetCheckSpec(
                published_check_name(stage),
                asset=asset_key,
                description=f"Every object of {stage} is in qTest: none refused (failed) and none left "
                "pending; the description names those that are not, and what a re-run does.",
                # Non-blocking: the later stages and the reconciliation run whatever this stage refused.
                blocking=False,
            )
        ],
    )
    async def publish_asset(
        context: dg.AssetExecutionContext, qtest: QtestResource, postgres: PostgresResource
    ):
        """One stage published (its description is the registry's). Per-object failures never fail the
        asset: they are recorded in the id map and fail its check ``<stage>_all_published``, so the later
        stages still run; only what stops the whole stage (ProjectBusy, FieldSetupError, an error out of
        the loader) does."""
        project_key = context.partition_key
        # The only run publishing this project to this site while the stage runs: another one is waited
        # for, or stopped at, as ZEPHYR_QTEST_WHEN_BUSY says.
        writer = Writer(context.run.run_id, stage, WhenBusy(qtest.when_busy), context.log.warning)
        async with qtest.client() as client:
            try:
                summary, problems, fields = await publish_stage(
                    stage,
                    postgres.store(),
                    client,
                    project_key,
                    project_target=qtest.project_map.get(project_key),
                    approve_test_cases=qtest.approve_test_cases,
                    writer=writer,
                    queue_window_s=qtest.queue_window_s,
                )
            except ProjectBusy as busy:
                raise dg.Failure(description=str(busy)) from None
            except FieldSetupError as error:
                raise dg.Failure(
                    description=str(error),
                    metadata={
                        "fields_to_create": dg.MetadataValue.md(
                            "\n".join(f"- {need.describe()}" for need in error.to_create)
                        )
                    },
                ) from error
            calls = client.stats.as_metadata()
            target = _target_metadata(postgres, client.site_url, project_key)
        metadata: dict[str, Any] = {
            **target,
            **summary.as_metadata(),
            **{f"api_{k}": v for k, v in calls.items()},
        }
        # The fields the migration brought to the qTest project (on its first run against a bare site).
        metadata["fields_created"] = len(fields.created)
        if fields.changed:
            metadata["qtest_fields_created"] = dg.MetadataValue.md(fields.markdown())
            for line in fields.lines():
                context.log.info(f"{project_key}: qTest fields: {line}")
        if problems:
            lines = ["| object | field label | reason | objects |", "|---|---|---|---:|"]
            lines += [
                f"| {kind} | {cell(label)} | {cell(reason)} | {count} |"
                for (kind, label, reason), count in problems.items()
            ]
            metadata["properties_not_set"] = dg.MetadataValue.md("\n".join(lines))
            for (kind, label, reason), count in problems.items():
                context.log.warning(f"{project_key} {kind}: {label!r} not set on {count} objects: {reason}")
        if summary.not_uploaded:
            lines = ["| attachment | size | reason |", "|---|---:|---|"]
            lines += [
                f"| {cell(s['name'])} | {s['size_bytes']} | {cell(s['skip_reason'])} |"
                for s in summary.not_uploaded[:50]
            ]
            metadata["not_uploaded"] = dg.MetadataValue.md("\n".join(lines))
        check_metadata: dict[str, Any] = {"failed": summary.failed, "pending": len(summary.pending)}
        if summary.failures:
            table = dg.MetadataValue.md(_failures_markdown(summary.failures))
            metadata["failures"] = check_metadata["failures"] = table
            description = summary.failure_text(f"{stage} of {project_key}")
            context.log.error(description)
        else:
            description = f"every object of {stage} of {project_key} is in qTest"
        check = dg.AssetCheckResult(
            check_name=published_check_name(stage),
            asset_key=asset_key,
            passed=not summary.failures,
            severity=dg.AssetCheckSeverity.ERROR,
            description=description,
            metadata=check_metadata,
        )
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return publish_asset


publish_assets = [build_publish_asset(stage) for stage in STAGES]


# The reconciliation's object types: its table rows and its checks ``<object_type>_equal``.
RECONCILED_TYPES: tuple[str, ...] = reconciled_types()


@dg.asset(
    name="reconciliation",
    key_prefix=[QTEST_GROUP],
    group_name=QTEST_GROUP,
    partitions_def=zephyr_projects,
    deps=[dg.AssetKey([QTEST_GROUP, stage]) for stage in STAGES],
    kinds={"qtest", "postgres"},
    pool="qtest_api",
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    check_specs=[
        dg.AssetCheckSpec(
            f"{object_type}_equal",
            asset=dg.AssetKey([QTEST_GROUP, "reconciliation"]),
            description=f"Every {BY_NAME[object_type].display_name} is in qTest once, field for field equal to "
            "canonical.",
        )
        for object_type in RECONCILED_TYPES
    ],
)
async def reconciliation(context: dg.AssetExecutionContext, qtest: QtestResource, postgres: PostgresResource):
    """qTest read back and compared with the canonical schema (through the mapping marts), count for count
    and field for field; the result goes to ``migration.reconciliation`` and to ``reports/<project>.md``
    and ``.html`` (counts per object type, every mismatch, unmapped values, skipped attachments)."""
    project_key = context.partition_key
    store = postgres.store()
    async with qtest.client() as client:
        outcome = await reconcile.reconcile(store, client, project_key)
        calls = client.stats.as_metadata()
    reconcile.save(store.reconciliations(), outcome)
    unmapped = store.marts().unmapped(project_key)
    report = reconcile.markdown(outcome, unmapped, outcome.skipped_attachments)
    directory = reports_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{project_key}.md").write_text(report)
    (directory / f"{project_key}.html").write_text(
        reconcile.html(outcome, unmapped, outcome.skipped_attachments)
    )
    yield dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(report[:60000]),
            "everything_equal": outcome.ok,
            "qtest_site": dg.MetadataValue.url(outcome.target_site),
            "target": outcome.target,
            "report": dg.MetadataValue.path(str(directory / f"{project_key}.html")),
            **{f"api_{k}": v for k, v in calls.items()},
        }
    )
    for object_type in RECONCILED_TYPES:
        result = outcome.results.get(object_type) or reconcile.TypeResult(object_type)
        yield dg.AssetCheckResult(
            check_name=f"{object_type}_equal",
            passed=result.ok,
            description=f"{result.matched} of {result.expected} equal; {len(result.missing)} missing, "
            f"{len(result.unaccounted)} not accounted for, {len(result.mismatches)} mismatched fields",
            metadata={"expected": result.expected, "found": result.found, "matched": result.matched},
        )
