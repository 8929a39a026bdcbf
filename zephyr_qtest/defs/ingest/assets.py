"""Raw assets: one per Zephyr entity, keyed ``["zephyr_raw", entity]``, partitioned by project.

The entity registry in ``lib/zephyr/extract.py`` drives this factory (what to fetch, what it depends on);
this module only adds what Dagster needs: keys, partitions, pool, metadata and checks.
"""

import asyncio
from dataclasses import replace
from typing import Any

import dagster as dg

from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.defs.resources import JiraResource, PostgresResource, ZephyrResource
from zephyr_qtest.lib.http import ApiError, AuthError
from zephyr_qtest.lib.jira_issues import LINKING_TABLES, RAW_ENTITY, extract_jira_issues
from zephyr_qtest.lib.postgres import connection_lost, retrying
from zephyr_qtest.lib.raw_store import PartitionSummary, RawQueries
from zephyr_qtest.lib.zephyr import raw_checks
from zephyr_qtest.lib.zephyr.extract import ENTITIES, Entity, ExtractionSettings, extract_entity

RAW_GROUP = "zephyr_raw"
ISSUES_SHOWN = 50
# A run tagged so reads everything from Zephyr, whatever the watermarks allow (`zephyr-qtest migrate
# --full`, or the tag set on a launch in the UI); otherwise each extraction after a complete one is a delta.
FULL_EXTRACTION_TAG = "zephyr_qtest/full_extraction"

# Checks beyond the two every raw table gets, by entity.
CROSS_TABLE_CHECKS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "test_executions": (
        (
            "executions_reference_existing_cases_and_cycles",
            "Every execution's test case (from testCase.self) and test cycle were extracted.",
            raw_checks.executions_reference_existing,
        ),
    ),
    "test_steps": (
        (
            "call_to_test_targets_exist",
            "Every call-to-test step calls an extracted case of this project, or another project's case (reported).",
            raw_checks.call_to_test_targets_exist,
        ),
    ),
}


def extraction_tags(full: bool) -> dict[str, str]:
    """The run tags that make its extractions read everything (`full`), or none."""
    return {FULL_EXTRACTION_TAG: "true"} if full else {}


def raw_asset_key(entity_name: str) -> dg.AssetKey:
    return dg.AssetKey([RAW_GROUP, entity_name])


def _check_specs(entity: Entity) -> list[dg.AssetCheckSpec]:
    key = raw_asset_key(entity.name)
    specs = [
        dg.AssetCheckSpec(
            "row_count_matches_api", asset=key, description="Rows written equal the count the API reported."
        ),
        dg.AssetCheckSpec(
            "ids_unique",
            asset=key,
            description="No Zephyr id or key appears twice in the project, and the listing served no object "
            "twice with different content (edited between two pages; the later copy is kept).",
        ),
    ]
    specs += [
        dg.AssetCheckSpec(name, asset=key, description=description)
        for name, description, _ in CROSS_TABLE_CHECKS.get(entity.name, ())
    ]
    return specs


def _issues_markdown(issues: list[Any]) -> str:
    lines = ["| object | field | reason | lost |", "|---|---|---|---|"]
    for issue in issues[:ISSUES_SHOWN]:
        reason = issue.reason.replace("|", "\\|")
        lines.append(
            f"| {issue.object_ref} | {issue.field or ''} | {reason} | {'yes' if issue.lost else ''} |"
        )
    if len(issues) > ISSUES_SHOWN:
        lines.append(f"| … {len(issues) - ISSUES_SHOWN} more in zephyr_raw.extraction_issues | | | |")
    return "\n".join(lines)


def build_raw_asset(entity: Entity) -> dg.AssetsDefinition:
    @dg.asset(
        name=entity.name,
        key_prefix=[RAW_GROUP],
        group_name=RAW_GROUP,
        description=entity.description,
        partitions_def=zephyr_projects,
        deps=[raw_asset_key(name) for name in entity.upstream],
        kinds={"zephyr", "postgres"},
        pool="zephyr_api",
        check_specs=_check_specs(entity),
        backfill_policy=dg.BackfillPolicy.multi_run(1),
    )
    async def raw_asset(
        context: dg.AssetExecutionContext, zephyr: ZephyrResource, postgres: PostgresResource
    ):
        project_key = context.partition_key
        store = postgres.store()
        raw = store.raw_rows()
        settings = ExtractionSettings(
            concurrency=zephyr.concurrency,
            attachment_owners=tuple(zephyr.attachment_owners),
            full=context.run.tags.get(FULL_EXTRACTION_TAG, "").lower() in ("1", "true", "yes"),
            delta_overlap_seconds=zephyr.delta_overlap_seconds,
        )

        async def extract() -> tuple[PartitionSummary, dict[str, float | int]]:
            async with zephyr.client() as client:
                return await extract_entity(
                    entity,
                    client=client,
                    raw=raw,
                    project_key=project_key,
                    run_id=context.run.run_id,
                    settings=settings,
                )

        # The partition is written in one transaction, which an outage of the staging database rolls back:
        # the extraction is redone whole once the database answers again (ZEPHYR_QTEST_DATABASE_OUTAGE_S).
        summary, stats = await retrying(
            extract,
            lambda: asyncio.to_thread(store.ping),
            replace(store.outage, log=context.log.warning),
            f"extracting {entity.name} of {project_key}",
            connection_lost,
        )
        for issue in summary.issues:
            log = context.log.error if issue.lost else context.log.warning
            log(f"{entity.name} {project_key}: {issue.describe()}")
        metadata: dict[str, Any] = {
            "dagster/partition_row_count": summary.rows_written,
            "rows": summary.rows_written,
            "api_reported": summary.api_reported
            if summary.api_reported is not None
            else dg.MetadataValue.null(),
            "api_calls": int(stats.get("requests", 0)),
            "retries": int(stats.get("retries", 0)),
            "rate_limited_429": int(stats.get("rate_limited", 0)),
            "seconds": float(stats.get("seconds", 0.0)),
            "issues": len(summary.issues),
            "lost": len(summary.lost),
            "extraction": summary.mode,
        }
        if summary.changes is not None:
            metadata["new_in_zephyr"] = summary.changes.new
            metadata["changed_in_zephyr"] = summary.changes.changed
            if summary.changes.deletions_known:
                metadata["deleted_in_zephyr"] = len(summary.changes.deleted)
            for ref in summary.changes.deleted[:ISSUES_SHOWN]:
                # Reported, never deleted in qTest: what was migrated from it stays there.
                context.log.warning(
                    f"{entity.name} {project_key}: {ref} was deleted in Zephyr since the last extraction; "
                    "qTest keeps what was migrated from it"
                )
            if summary.changes.deleted:
                metadata["deleted_list"] = dg.MetadataValue.md(
                    "\n".join(f"- {ref}" for ref in summary.changes.deleted[:ISSUES_SHOWN])
                )
        if summary.issues:
            metadata["issue_list"] = dg.MetadataValue.md(_issues_markdown(summary.issues))
        if summary.lost:
            # The rows that could be read are committed (a re-run replaces them); the run must not pass.
            named = "; ".join(issue.describe() for issue in summary.lost[:ISSUES_SHOWN])
            raise dg.Failure(
                description=f"{len(summary.lost)} {entity.name} objects of {project_key} could not be extracted: {named}",
                metadata=metadata,
            )
        yield dg.MaterializeResult(metadata=metadata)
        for outcome_name, outcome in _check_outcomes(entity, raw, project_key):
            yield dg.AssetCheckResult(
                check_name=outcome_name,
                passed=outcome.passed,
                description=outcome.description,
                metadata=outcome.metadata,
            )

    return raw_asset


def _check_outcomes(entity: Entity, raw: RawQueries, project_key: str):
    yield "row_count_matches_api", raw_checks.row_count_matches_api(raw, entity.name, project_key)
    yield "ids_unique", raw_checks.ids_unique(raw, entity.name, project_key)
    for name, _, check in CROSS_TABLE_CHECKS.get(entity.name, ()):
        yield name, check(raw, project_key)


@dg.asset(
    name=RAW_ENTITY,
    key_prefix=[RAW_GROUP],
    group_name=RAW_GROUP,
    description="The Jira issues the project's test cases and executions link to, as Jira Cloud answers "
    "them (issue/bulkfetch: key and summary), one row each; their requirements are named '<KEY> <summary>'. "
    "Without JIRA_BASE_URL, JIRA_EMAIL and JIRA_API_TOKEN nothing is asked and the table is left as it is.",
    partitions_def=zephyr_projects,
    deps=[raw_asset_key(name) for name in LINKING_TABLES],
    kinds={"jira", "postgres"},
    pool="jira_api",
    backfill_policy=dg.BackfillPolicy.multi_run(1),
)
async def jira_issues(context: dg.AssetExecutionContext, jira: JiraResource, postgres: PostgresResource):
    """Ask Jira for each linked issue id (``lib/jira_issues.py``); each id it does not return is an extraction
    issue naming it, and its requirement keeps the name 'Jira issue <id>'."""
    project_key = context.partition_key
    store = postgres.store()
    raw = store.raw_rows()

    async def extract():
        client = jira.client()
        if client is None:
            return await extract_jira_issues(None, raw, project_key, context.run.run_id)
        async with client:
            try:
                return await extract_jira_issues(client, raw, project_key, context.run.run_id)
            except AuthError as error:
                raise dg.Failure(
                    f"Jira refused the credentials ({error.status}) asking for the linked issues of "
                    f"{project_key}: check JIRA_EMAIL and JIRA_API_TOKEN for {jira.base_url} (JIRA_BASE_URL), "
                    "or unset them to migrate without Jira's issue keys"
                ) from None
            except ApiError as error:
                raise dg.Failure(
                    f"Jira at {jira.base_url} (JIRA_BASE_URL) did not answer for the linked issues of "
                    f"{project_key}: {error}; run again, or unset JIRA_BASE_URL, JIRA_EMAIL and JIRA_API_TOKEN "
                    "to migrate without Jira's issue keys (an earlier run's answers are kept)"
                ) from None

    done = await retrying(
        extract,
        lambda: asyncio.to_thread(store.ping),
        replace(store.outage, log=context.log.warning),
        f"asking Jira for the linked issues of {project_key}",
        connection_lost,
    )
    metadata: dict[str, Any] = {
        "linked_issues": done.linked,
        "api_calls": int(done.stats.get("requests", 0)),
        "retries": int(done.stats.get("retries", 0)),
        "rate_limited_429": int(done.stats.get("rate_limited", 0)),
        "seconds": float(done.stats.get("seconds", 0.0)),
    }
    if not done.asked:
        context.log.info(
            f"{project_key}: Jira is not configured (JIRA_BASE_URL, JIRA_EMAIL, JIRA_API_TOKEN): {done.linked} "
            "linked issues keep requirements named 'Jira issue <id>' (or an earlier run's answers)"
        )
        metadata["jira"] = "not configured"
        return dg.MaterializeResult(metadata=metadata)
    assert done.summary is not None
    for issue in done.summary.issues:
        context.log.warning(f"{RAW_ENTITY} {project_key}: {issue.describe()}")
    metadata.update(
        {
            "dagster/partition_row_count": done.resolved,
            "rows": done.resolved,
            "not_resolved": done.linked - done.resolved,
        }
    )
    if done.summary.issues:
        metadata["issue_list"] = dg.MetadataValue.md(_issues_markdown(done.summary.issues))
    return dg.MaterializeResult(metadata=metadata)


raw_assets = [*(build_raw_asset(entity) for entity in ENTITIES), jira_issues]

migration_job = dg.define_asset_job(
    name="migration_job",
    selection=dg.AssetSelection.all(),
    # One process for the whole migration: every asset then shares the rate limit the HTTP layer has
    # learnt and its open connections, instead of each step process starting from slow start. The
    # API steps run one at a time anyway (the vendor rate-limits per token).
    executor_def=dg.in_process_executor,
    description="The whole migration for one Zephyr project: raw extraction, then the dbt transform.",
)
