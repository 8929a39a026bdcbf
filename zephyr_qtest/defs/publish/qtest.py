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

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.defs.resources import PostgresResource, QtestResource
from zephyr_qtest.lib.markdown import cell
from zephyr_qtest.lib.proof.acceptance import AcceptanceError, Verdict, load_acceptance, type_key, verdict
from zephyr_qtest.lib.proof.compare import prove
from zephyr_qtest.lib.proof.report import RunInfo, counts_by_reason, write_report
from zephyr_qtest.lib.proof.saved import save_proof
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
from zephyr_qtest.lib.qtest.loader import ProjectTargetError, publish_stage
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
        stages still run; only what stops the whole stage (ProjectBusy, ProjectTargetError,
        FieldSetupError, an error out of the loader) does."""
        project_key = context.partition_key
        # The only run publishing this project to this site while the stage runs: another one is waited
        # for, or stopped at, as ZEPHYR_QTEST_WHEN_BUSY says.
        writer = Writer(context.run.run_id, stage, WhenBusy(qtest.when_busy), context.log.warning)
        await asyncio.to_thread(qtest.take_turn, context, postgres.url())
        async with qtest.client() as client:
            try:
                summary, problems, fields = await publish_stage(
                    stage,
                    postgres.store(),
                    client,
                    project_key,
                    project_target=qtest.project_map.get(project_key),
                    approve_test_cases=qtest.approve_test_cases,
                    create_fields=qtest.create_fields,
                    writer=writer,
                    queue_window_s=qtest.queue_window_s,
                    cdn_token=qtest.cdn_token or None,
                )
            except (ProjectBusy, ProjectTargetError) as stop:
                raise dg.Failure(description=str(stop)) from None
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


def step_seconds(context: dg.AssetExecutionContext) -> dict[str, float | None]:
    """Seconds per step of this run, in the order they started (None: still running, like this one)."""
    stats = context.instance.get_run_step_stats(context.run.run_id)
    ordered = sorted(stats, key=lambda s: s.start_time or float("inf"))
    return {
        s.step_key: (s.end_time - s.start_time)
        if s.start_time is not None and s.end_time is not None
        else None
        for s in ordered
    }


# The Zephyr object types the ledger names (in words) -> the check ``<object_type>_equal`` that answers for
# them: the qTest object type each becomes (a plan becomes a top-level cycle, or a release, which has no
# check of its own; an execution and its step results become a test log). A type not named here answers
# to the check of its own name ("test case" -> test_case).
CHECK_OF_LEDGER_TYPE = {
    "folder": "module",
    "test plan": "test_cycle",
    "test execution": "test_log",
    "execution step": "test_log",
}


def check_of(ledger_type: str) -> str:
    words = type_key(ledger_type)
    return CHECK_OF_LEDGER_TYPE.get(words, words.replace(" ", "_"))


def type_check(
    object_type: str, verdict: Verdict, loader: reconcile.TypeResult
) -> tuple[bool, str, dict[str, Any]]:
    """One object type's check, saying what the report says: it fails when the type has open (not
    accepted) ledger lines, objects missing that no line explains, or a difference in the loader's check."""
    open_lines = [line for line in verdict.open if check_of(line.object_type) == object_type]
    accepted = sum(1 for a in verdict.accepted if check_of(a.line.object_type) == object_type)
    unexplained = sum(n for t, n in verdict.unexplained.items() if check_of(t) == object_type)
    by_reason = counts_by_reason(open_lines)
    parts = [
        f"{len(open_lines)} open ledger lines"
        + (
            " (" + ", ".join(f"{reason.value} {n}" for reason, n in by_reason.items()) + ")"
            if by_reason
            else ""
        ),
        f"{accepted} accepted",
    ]
    if unexplained:
        parts.append(f"{unexplained} missing in qTest without a ledger line")
    parts.append(
        f"loader check: {loader.matched} of {loader.expected} equal, {len(loader.missing)} missing, "
        f"{len(loader.unaccounted)} not accounted for, {len(loader.mismatches)} mismatched fields"
    )
    passed = not open_lines and not unexplained and loader.ok
    metadata = {
        # The loader's own check alone (qTest against the marts), for who needs it apart from the ledger.
        "loader_equal": loader.ok,
        "open_lines": len(open_lines),
        "accepted_lines": accepted,
        "expected": loader.expected,
        "found": loader.found,
        "matched": loader.matched,
    }
    return passed, "; ".join(parts), metadata


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
            description=f"Every {BY_NAME[object_type].display_name} of Zephyr is in qTest with every value, or "
            "its ledger lines are accepted; and the loader's own check found no difference.",
        )
        for object_type in RECONCILED_TYPES
    ]
    + [
        dg.AssetCheckSpec(
            "complete",
            asset=dg.AssetKey([QTEST_GROUP, "reconciliation"]),
            description="The verdict: every Zephyr value arrived in qTest, or the acceptance file covers "
            "every one that did not.",
        )
    ],
)
async def reconciliation(context: dg.AssetExecutionContext, qtest: QtestResource, postgres: PostgresResource):
    """The proof of one project: Zephyr as extracted (the raw payloads) against qTest read back, value by
    value, judged against the acceptance file (``ZEPHYR_QTEST_ACCEPTANCE``) into a verdict, complete or
    incomplete. Writes ``reports/<project>.md``, ``.html`` (with its charts) and ``-ledger.csv`` (every
    value that did not arrive), saves ``migration.proof`` and ``migration.ledger``, and keeps the loader's
    own check (qTest against the mapping marts) in ``migration.reconciliation`` and below in the report. An
    unreadable acceptance file fails the asset: it is the configuration, not an object, that is wrong."""
    project_key = context.partition_key
    settings = load_settings()
    try:
        acceptance = load_acceptance(settings.paths.acceptance_file())
    except AcceptanceError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    store = postgres.store()
    await asyncio.to_thread(qtest.take_turn, context, postgres.url())
    async with qtest.client() as client:
        outcome, ledger = await prove(store, client, project_key, cdn_token=qtest.cdn_token or None)
        calls = client.stats.as_metadata()
    reconcile.save(store.reconciliations(), outcome)
    judged = verdict(ledger, acceptance)
    run = RunInfo(context.run.run_id, datetime.now(UTC), step_seconds(context))
    files, summary = write_report(
        reports_dir(),
        ledger,
        judged,
        run,
        outcome,
        store.marts().unmapped(project_key),
        outcome.skipped_attachments,
    )
    save_proof(
        store.proofs(), ledger, judged, run_id=run.run_id, checked_at=run.checked_at, report=files.markdown
    )
    context.log.info(f"{project_key}: {judged.text}; report {files.markdown}")
    yield dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(summary[:60000]),
            "verdict": judged.text,
            "complete": judged.complete,
            "open_lines": len(judged.open),
            "accepted_lines": len(judged.accepted),
            "acceptance_file": str(acceptance.path) if acceptance else "none",
            "loader_check_equal": outcome.ok,
            "qtest_site": dg.MetadataValue.url(outcome.target_site),
            "target": outcome.target,
            "report": dg.MetadataValue.path(str(files.html)),
            "report_markdown": dg.MetadataValue.path(str(files.markdown)),
            "ledger_csv": dg.MetadataValue.path(str(files.csv)),
            **{f"api_{k}": v for k, v in calls.items()},
        }
    )
    for object_type in RECONCILED_TYPES:
        result = outcome.results.get(object_type) or reconcile.TypeResult(object_type)
        passed, description, metadata = type_check(object_type, judged, result)
        yield dg.AssetCheckResult(
            check_name=f"{object_type}_equal", passed=passed, description=description, metadata=metadata
        )
    yield dg.AssetCheckResult(
        check_name="complete",
        passed=judged.complete,
        description=judged.text,
        metadata={"open_lines": len(judged.open), "accepted_lines": len(judged.accepted)},
    )
