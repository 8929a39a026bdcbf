"""The Snowflake copies: every canonical table, ``migration.id_map`` and the reconciliation results, one
Zephyr project (partition) at a time.

Each asset replaces only its project's rows, in one Snowflake transaction, after bulk-loading them
(``lib/snowflake.py``); the table is created from the same contract as its PostgreSQL table (the dbt
contract, or the ``migration`` DDL). Its two checks compare the project's rows in Snowflake with those
in PostgreSQL: the row count, and a checksum over the key columns. Without ``SNOWFLAKE_ACCOUNT`` the
copies go to the embedded emulation (fakesnow on a DuckDB file), so the whole graph runs locally.
"""

import time
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.defs.publish.qtest import QTEST_GROUP, publish_assets
from zephyr_qtest.defs.resources import PostgresResource, SnowflakeWarehouse
from zephyr_qtest.lib import snowflake as warehouse

SNOWFLAKE_GROUP = "snowflake"
ROW_COUNT_CHECK = "row_count_matches_postgres"
CHECKSUM_CHECK = "key_checksum_matches"


def _metadata_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def build_snowflake_asset(
    name: str,
    contracts: Sequence[warehouse.TableContract],
    deps: Sequence[dg.AssetKey],
    description: str,
) -> dg.AssetsDefinition:
    """One asset ``["snowflake", name]`` copying ``contracts``' tables for the partition's project."""
    key = dg.AssetKey([SNOWFLAKE_GROUP, name])
    tables = ", ".join(contract.qualified_source for contract in contracts)

    @dg.asset(
        name=name,
        key_prefix=[SNOWFLAKE_GROUP],
        group_name=SNOWFLAKE_GROUP,
        description=description,
        partitions_def=zephyr_projects,
        deps=list(deps),
        kinds={"snowflake"},
        pool="snowflake",
        backfill_policy=dg.BackfillPolicy.multi_run(1),
        check_specs=[
            dg.AssetCheckSpec(
                ROW_COUNT_CHECK,
                asset=key,
                description=f"The project's rows in Snowflake number as many as in PostgreSQL ({tables}).",
            ),
            dg.AssetCheckSpec(
                CHECKSUM_CHECK,
                asset=key,
                description="A checksum over the key columns of the project's rows (sum of a 48-bit md5 "
                "prefix, the same SQL on both sides) is equal in Snowflake and PostgreSQL.",
            ),
        ],
    )
    def snowflake_copy(
        context: dg.AssetExecutionContext, snowflake: SnowflakeWarehouse, postgres: PostgresResource
    ) -> Iterator[Any]:
        project_key = context.partition_key
        started = time.monotonic()
        with snowflake.get_connection() as conn:
            database, schema = warehouse.current_location(conn)
            if not database or not schema:
                raise dg.Failure(
                    f"Snowflake has no current database and schema for this session (got {database}.{schema}): "
                    "set SNOWFLAKE_DATABASE and SNOWFLAKE_SCHEMA to an existing schema the role may create "
                    "tables in."
                )
            copies = warehouse.replace_partition(
                postgres.url(),
                conn,
                contracts,
                project_key,
                chunk_rows=snowflake.chunk_rows,
                copy_binary=snowflake.copy_attachment_bytes,
                log=context.log.info,
            )
            tallies = {
                copy.contract.name: warehouse.snowflake_tally(conn, copy.contract, project_key)
                for copy in copies
            }
        seconds = time.monotonic() - started
        rows = sum(copy.rows for copy in copies)
        missing = [copy.contract.qualified_source for copy in copies if not copy.source_exists]
        metadata: dict[str, Any] = {
            "rows_copied": rows,
            "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds) if seconds > 0 else 0,
            "dagster/row_count": sum(tally.rows for tally in tallies.values()),
            "target": snowflake.describe(),
            "tables": _metadata_table(
                [
                    (
                        f"{database}.{schema}.{copy.contract.snowflake_name}",
                        copy.contract.qualified_source,
                        copy.rows if copy.source_exists else "0 (no such table in PostgreSQL)",
                        copy.chunks,
                        round(copy.seconds, 2),
                        ", ".join(copy.skipped_columns) or "",
                    )
                    for copy in copies
                ],
                ("Snowflake table", "PostgreSQL table", "rows", "chunks", "seconds", "columns not copied"),
            ),
        }
        added = [f"{copy.contract.name}.{column}" for copy in copies for column in copy.added_columns]
        if added:
            metadata["columns_added"] = ", ".join(added)
            context.log.info(
                f"columns added to the Snowflake tables as their contract grew: {', '.join(added)}"
            )
        if missing:
            metadata["not_in_postgres"] = ", ".join(missing)
        context.log.info(
            f"{project_key}: {rows:,} rows copied to Snowflake in {seconds:.1f} s"
            + (f" ({', '.join(missing)} not in PostgreSQL yet: 0 rows)" if missing else "")
        )
        yield dg.MaterializeResult(metadata=metadata)

        comparison = [(copy.contract.name, copy.postgres, tallies[copy.contract.name]) for copy in copies]
        yield dg.AssetCheckResult(
            check_name=ROW_COUNT_CHECK,
            passed=all(pg.rows == sf.rows for _, pg, sf in comparison),
            metadata={
                "counts": _metadata_table(
                    [(table, pg.rows, sf.rows) for table, pg, sf in comparison],
                    ("table", "PostgreSQL rows", "Snowflake rows"),
                ),
                "postgres_rows": sum(pg.rows for _, pg, _ in comparison),
                "snowflake_rows": sum(sf.rows for _, _, sf in comparison),
            },
        )
        yield dg.AssetCheckResult(
            check_name=CHECKSUM_CHECK,
            passed=all(pg.checksum == sf.checksum for _, pg, sf in comparison),
            metadata={
                "checksums": _metadata_table(
                    [
                        (table, ", ".join(contract.checksum_key), pg.checksum, sf.checksum)
                        for (table, pg, sf), contract in zip(comparison, contracts, strict=True)
                    ],
                    ("table", "key columns", "PostgreSQL", "Snowflake"),
                ),
            },
        )

    return snowflake_copy


def _canonical_assets() -> list[dg.AssetsDefinition]:
    assets = []
    for name, contract in warehouse.canonical_contracts().items():
        summary = contract.description.rstrip(".") + ". " if contract.description else ""
        assets.append(
            build_snowflake_asset(
                name,
                [contract],
                [dg.AssetKey([warehouse.CANONICAL_SCHEMA, name])],
                f"Snowflake copy of canonical.{name}, one project's rows replaced per partition. {summary}"
                f"Columns and types from the {contract.origin}.",
            )
        )
    return assets


def _migration_assets() -> list[dg.AssetsDefinition]:
    contracts = warehouse.migration_contracts()
    publish_keys = [key for asset in publish_assets for key in asset.keys]
    return [
        build_snowflake_asset(
            "id_map",
            [contracts["id_map"]],
            publish_keys,
            "Snowflake copy of migration.id_map: which qTest object each Zephyr object of the project became, "
            "and its state. Zero rows (said so in the metadata) until the qTest assets have run.",
        ),
        build_snowflake_asset(
            "reconciliation",
            [
                contracts["reconciliation"],
                contracts["reconciliation_mismatch"],
                contracts["proof"],
                contracts["ledger"],
            ],
            [dg.AssetKey([QTEST_GROUP, "reconciliation"])],
            "Snowflake copies of the reconciliation: migration.proof (each site's verdict), migration.ledger "
            "(every Zephyr value that did not arrive, its reason, remedy and acceptance), and the loader's own "
            "check, migration.reconciliation (counts per object type) and migration.reconciliation_mismatch "
            "(every field that differs from the marts), replaced together in one transaction for the project.",
        ),
    ]


snowflake_assets = [*_canonical_assets(), *_migration_assets()]
