"""dbt in the graph: staging views, the canonical marts and the qTest mapping marts, one project at a time.

Every dbt model and seed is an asset keyed ``[<schema>, <name>]`` (groups ``staging``, ``canonical``,
``qtest_mapping``), downstream of the raw assets through each source's ``meta.dagster.asset_key``. One run
of the op is one ``dbt build`` for one partition (the Zephyr project key reaches dbt as
``var('project_key')``); the marts' pre-hooks replace only that project's rows. dbt's data tests are the
assets' checks; its unit tests are left out of the build (``build_dbt_args``) and run by the test suite.

The mapping options that are dbt vars (``plans_as``, ``attachment_max_bytes``, the depth caps) come from
the run config (``DbtMappingConfig``), else the settings (``ZEPHYR_QTEST_*``), else ``dbt_project.yml``.
The connection reaches dbt once, as the variables ``profiles.yml`` reads, made from ``postgres.url()``.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.defs.resources import PostgresResource
from zephyr_qtest.lib.dbt import (
    DBT_PROJECT_DIR,
    build_dbt_args,
    connection_environment,
    dbt_vars,
    manifest_is_stale,
)
from zephyr_qtest.lib.mapping import MartRows, RelationStats, unmapped_markdown
from zephyr_qtest.settings import PlansAs, load_settings

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` (and `zephyr-qtest ui`), parse again when a file of the dbt project changed, so that
# an edited model shows at once; elsewhere the manifest made at install (and before the tests) is read.
# Only when it changed: every process that loads these definitions comes here, each run's too, and an
# unconditional parse started dbt once per run (2.3 CPU seconds, measured, beside a run's start).
if manifest_is_stale(DBT_PROJECT_DIR):
    dbt_project.prepare_if_dev()


class ZephyrDbtTranslator(DagsterDbtTranslator):
    """Keys and groups named after the schema a node builds into, as the design's graph names them."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([self._schema(dbt_resource_props), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)  # sources: their meta.dagster.asset_key

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return self._schema(dbt_resource_props)
        return super().get_group_name(dbt_resource_props)

    @staticmethod
    def _schema(dbt_resource_props: Mapping[str, Any]) -> str:
        # The custom schema of dbt_project.yml (generate_schema_name uses it as is), else the default.
        return dbt_resource_props["config"].get("schema") or dbt_resource_props["schema"]


class DbtMappingConfig(dg.Config):
    """Mapping options for this run. Unset (null) means the settings' value (``ZEPHYR_QTEST_PLANS_AS``,
    ``ZEPHYR_QTEST_ATTACHMENT_MAX_BYTES``, ...), or dbt_project.yml's default when that is unset too."""

    plans_as: PlansAs | None = None
    attachment_max_bytes: int | None = None
    call_depth_cap: int | None = None
    folder_depth_cap: int | None = None


def run_dbt_vars(project_key: str, config: DbtMappingConfig) -> dict[str, Any]:
    """This run's dbt vars: the run config over the settings, with the partition key."""
    return dbt_vars(project_key, load_settings().mapping.dbt_vars(), config.model_dump(mode="json"))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=ZephyrDbtTranslator(),
    partitions_def=zephyr_projects,
    # One project per run, like every asset of the graph: a backfill over projects is one run each.
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    pool="postgres",
)
def zephyr_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    postgres: PostgresResource,
    config: DbtMappingConfig,
) -> Iterator[Any]:
    """The dbt project for one Zephyr project: staging views over the raw payloads, the canonical schema
    (contracts enforced) and the qTest mapping marts, with dbt's tests as asset checks."""
    database_url = postgres.url()
    marts = postgres.store().marts()
    project_key = context.partition_key
    args = build_dbt_args(project_key, vars=run_dbt_vars(project_key, config))
    # profiles.yml reads the connection from dbt's environment (the password as DBT_ENV_SECRET_*, which
    # dbt scrubs from its output); it is there while dbt starts, and only then.
    with connection_environment(database_url):
        invocation = dbt.cli(args, context=context)
    with marts.table_stats(project_key) as tables:
        for event in invocation.stream():
            if isinstance(event, dg.Output):
                key = context.asset_key_for_output(event.output_name)
                metadata = {**event.metadata, **_table_metadata(tables.describe(*key.path))}
                if key == UNMAPPED:
                    metadata.update(_unmapped_metadata(context, marts, project_key))
                event = event.with_metadata(metadata)
            yield event


def _table_metadata(stats: RelationStats | None) -> dict[str, Any]:
    """This project's rows and the columns as built. dagster-dbt's own fetchers are not used: they query
    the database named in the manifest parsed at install, not the one this run is configured for."""
    if stats is None:
        return {}
    metadata: dict[str, Any] = {
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=name, type=data_type) for name, data_type in stats.columns]
        )
    }
    if stats.rows is not None:
        metadata["dagster/partition_row_count"] = dg.MetadataValue.int(stats.rows)
    return metadata


UNMAPPED = dg.AssetKey(["qtest_mapping", "unmapped"])


def _unmapped_metadata(
    context: dg.AssetExecutionContext, marts: MartRows, project_key: str
) -> dict[str, Any]:
    """The rehearsal's to-do list: every value no map covers, on the asset and in the run's log."""
    unmapped = marts.unmapped(project_key)
    objects = sum(item.count for item in unmapped)
    if unmapped:
        context.log.warning(
            f"{project_key}: {len(unmapped)} values have no qTest mapping ({objects} objects); "
            "see qtest_mapping.unmapped"
        )
    return {
        "unmapped_values": len(unmapped),
        "unmapped_objects": objects,
        "unmapped": dg.MetadataValue.md(unmapped_markdown(unmapped)),
    }
