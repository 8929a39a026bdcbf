"""The Snowflake copies end to end through Dagster, on the embedded emulation (fakesnow on a DuckDB file).

Two projects are extracted from the sandbox and built by dbt into canonical; then every ``snowflake/*``
asset runs for both projects, and again for the first. Proves: every canonical table arrives with the
project's rows and no more; both checks pass on every asset; re-running a partition leaves every count
and every row unchanged and the other project's rows untouched; a table missing in PostgreSQL copies zero
rows and says so; a failure inside the replacing transaction leaves the previous copy whole.

An opt-in test copies into a real Snowflake account when ``SNOWFLAKE_ACCOUNT`` is set.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import psycopg
import pytest
from psycopg import sql

from tests.graph_helpers import TransformedDatabase, materialize_partition
from zephyr_qtest.defs.publish.snowflake import CHECKSUM_CHECK, ROW_COUNT_CHECK, snowflake_assets
from zephyr_qtest.defs.resources import SnowflakeWarehouse
from zephyr_qtest.lib import snowflake as warehouse
from zephyr_qtest.lib.proof.saved import PROOF_DDL
from zephyr_qtest.lib.qtest.id_map import ID_MAP_DDL
from zephyr_qtest.lib.qtest.reconcile import RECONCILIATION_DDL

pytestmark = pytest.mark.e2e

CANONICAL = warehouse.canonical_contracts()
# Tables every generated project has rows in (the others may be empty for a tiny project).
MAIN_TABLES = ("project", "folder", "test_case", "test_step", "test_cycle", "test_execution", "status")


@pytest.fixture(scope="module")
def canonical_database(transformed_database: TransformedDatabase) -> dict[str, Any]:
    """A database of its own, with raw + dbt run for both sandbox projects: a copy of the session's
    transformed database, whose runs must all have succeeded."""
    projects = transformed_database.projects
    assert len(projects) == 2
    for run in transformed_database.runs:
        assert run.result.success, _failures(run.result)
    return {"url": transformed_database.copy("zq_snowflake"), "projects": projects}


def _snowflake(directory: Path) -> SnowflakeWarehouse:
    return SnowflakeWarehouse(
        embedded=True,
        embedded_dir=str(directory),
        user="zephyr_qtest",
        database=warehouse.EMBEDDED_DATABASE,
        schema=warehouse.EMBEDDED_SCHEMA,
    )


def _run(
    database_url: str, project_key: str, assets: list[Any], *, snowflake_dir: Path | None = None
) -> dg.ExecuteInProcessResult:
    snowflake = _snowflake(snowflake_dir) if snowflake_dir is not None else None
    return materialize_partition(assets, project_key, database_url=database_url, snowflake=snowflake)


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    failed = [
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} {evaluation.metadata}"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    ]
    failed += [
        f"{event.step_key}: {event.step_failure_data.error.message if event.step_failure_data.error else ''}"
        for event in result.all_events
        if event.is_step_failure
    ]
    return failed


def _digests(directory: Path) -> dict[tuple[str, str], tuple[int, str]]:
    """(table, project) -> (rows, md5 of every row, sorted), read straight from the DuckDB file."""
    digests: dict[tuple[str, str], tuple[int, str]] = {}
    with duckdb.connect(str(directory / f"{warehouse.EMBEDDED_DATABASE}.db"), read_only=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE'",
                [warehouse.EMBEDDED_SCHEMA],
            ).fetchall()
        ]
        for table in tables:
            rows = conn.execute(
                f'select "PROJECT_KEY", count(*), md5(string_agg(cast(t as varchar), chr(10) order by cast(t as varchar))) '
                f'from {warehouse.EMBEDDED_SCHEMA}."{table}" as t group by 1'
            ).fetchall()
            for project_key, count, digest in rows:
                digests[(table.lower(), project_key)] = (count, digest)
    return digests


def _postgres_counts(url: str) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    with psycopg.connect(url) as conn:
        for name in CANONICAL:
            for project_key, count in conn.execute(
                sql.SQL("select project_key, count(*) from canonical.{} group by 1").format(
                    sql.Identifier(name)
                )
            ):
                counts[(name, project_key)] = count
    return counts


@pytest.fixture(scope="module")
def copied(canonical_database: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """snowflake/* for project A, B, then A again; the DuckDB file's digests after each run."""
    directory = tmp_path_factory.mktemp("snowflake")
    url, (first, second) = canonical_database["url"], canonical_database["projects"]
    runs = []
    for project_key in (first, second, first):
        result = _run(url, project_key, snowflake_assets, snowflake_dir=directory)
        runs.append(
            {
                "project": project_key,
                "success": result.success,
                "failures": _failures(result),
                "checks": result.get_asset_check_evaluations(),
                "materializations": result.get_asset_materialization_events(),
                "digests": _digests(directory),
            }
        )
    return {"url": url, "projects": (first, second), "runs": runs, "directory": directory}


def test_every_copy_succeeds_with_both_checks_passing(copied: dict[str, Any]) -> None:
    expected_checks = {
        (tuple(asset.key.path), check)
        for asset in snowflake_assets
        for check in (ROW_COUNT_CHECK, CHECKSUM_CHECK)
    }
    for run in copied["runs"]:
        assert run["success"], run["failures"]
        assert not run["failures"], run["failures"]
        evaluated = {(tuple(check.asset_key.path), check.check_name) for check in run["checks"]}
        assert evaluated == expected_checks
        assert len(run["materializations"]) == len(snowflake_assets)


def test_snowflake_holds_what_postgres_holds_for_both_projects(copied: dict[str, Any]) -> None:
    counts = _postgres_counts(copied["url"])
    digests = copied["runs"][-1]["digests"]
    assert {(table, project) for table, project in counts} == set(digests) - {
        key for key in digests if key[0] not in CANONICAL
    }
    for key, count in counts.items():
        assert digests[key][0] == count, key
    for project_key in copied["projects"]:
        for table in MAIN_TABLES:
            assert counts.get((table, project_key), 0) > 0, (table, project_key)


def test_rerunning_a_partition_changes_nothing_and_leaves_the_other_project_alone(
    copied: dict[str, Any],
) -> None:
    first, second = copied["projects"]
    after_first, after_second, after_rerun = (run["digests"] for run in copied["runs"])
    # The second project's run did not touch the first project's rows ...
    assert {k: v for k, v in after_second.items() if k[1] == first} == after_first
    # ... and the re-run of the first changed no row of either project.
    assert after_rerun == after_second
    assert any(key[1] == second for key in after_rerun)


def test_materializations_report_rows_and_speed(copied: dict[str, Any]) -> None:
    run = copied["runs"][0]
    by_key = {event.asset_key.path[1]: event.materialization.metadata for event in run["materializations"]}
    execution = by_key["test_execution"]
    assert execution["rows_copied"].value > 0
    assert execution["rows_per_second"].value > 0
    assert "seconds" in execution
    # Attachment bytes stay behind by default; name, size, type and sha256 travel.
    assert "attachment_blob" in by_key["attachment"]["tables"].value
    # No qTest publish in this test: the migration tables are missing in PostgreSQL, and that is said.
    assert by_key["id_map"]["rows_copied"].value == 0
    assert "migration.id_map" in by_key["id_map"]["not_in_postgres"].value
    assert "migration.reconciliation_mismatch" in by_key["reconciliation"]["not_in_postgres"].value


def test_the_snowflake_tables_follow_the_contract(copied: dict[str, Any]) -> None:
    with duckdb.connect(
        str(copied["directory"] / f"{warehouse.EMBEDDED_DATABASE}.db"), read_only=True
    ) as conn:
        columns = conn.execute(
            "select table_name, column_name from information_schema.columns where table_schema = ?",
            [warehouse.EMBEDDED_SCHEMA],
        ).fetchall()
    actual: dict[str, set[str]] = {}
    for table, column in columns:
        actual.setdefault(table.lower(), set()).add(column.lower())
    for name, contract in CANONICAL.items():
        assert actual[name] == {column.name for column in contract.copied_columns()}, name
    assert "attachment_blob" not in actual["attachment"]


def test_a_failed_replacement_leaves_the_previous_copy_whole(
    copied: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, _ = copied["projects"]
    directory = copied["directory"]
    before = _digests(directory)
    contracts = [CANONICAL["test_case"], CANONICAL["test_step"]]
    real_insert = warehouse.insert_from_load_sql

    def broken_second_insert(contract: warehouse.TableContract, project_key: str, **kwargs: Any) -> str:
        if contract.name == "test_step":
            return "INSERT INTO no_such_table SELECT 1"
        return real_insert(contract, project_key, **kwargs)

    monkeypatch.setattr(warehouse, "insert_from_load_sql", broken_second_insert)
    with _snowflake(directory).get_connection() as conn, pytest.raises(Exception, match=r"(?i)no_such_table"):
        warehouse.replace_partition(copied["url"], conn, contracts, first)
    assert _digests(directory) == before


def test_id_map_and_reconciliation_carry_json_as_variant_and_time_as_utc(copied: dict[str, Any]) -> None:
    """The migration tables, once the qTest assets have written them: jsonb arrives as an object, a
    timestamptz as its UTC wall time."""
    first, _ = copied["projects"]
    with psycopg.connect(copied["url"], autocommit=True) as conn:
        conn.execute(ID_MAP_DDL)
        conn.execute(RECONCILIATION_DDL)
        conn.execute(
            "insert into migration.id_map (target_site, project_key, object_type, source_key, qtest_id, "
            "payload_hash, state, updated_at, detail) values ('https://a.qtestnet.com', %s, 'test_case', %s, 41, "
            "'h1', 'done', '2024-03-01 12:00:00+02', '{\"approved\": true, \"steps\": [1, 2]}'), "
            "('https://a.qtestnet.com', %s, 'module', %s, null, null, 'pending', '2024-03-01 23:30:00-05', '{}')",
            (first, f"{first}-T1", first, f"{first}-F1"),
        )
        conn.execute(
            "insert into migration.reconciliation (target_site, project_key, object_type, expected, found, "
            "matched, missing, unaccounted, mismatches) values ('https://a.qtestnet.com', %s, 'test_case', 2, 2, "
            "1, 0, 0, 1)",
            (first,),
        )
        conn.execute(
            "insert into migration.reconciliation_mismatch values "
            "('https://a.qtestnet.com', %s, 'test_case', %s, 'name', 'a', 'b')",
            (first, f"{first}-T1"),
        )
        conn.execute(PROOF_DDL)
        conn.execute(
            "insert into migration.proof (target_site, project_key, run_id, checked_at, complete, verdict, "
            "open_lines, accepted_lines, report) values ('https://a.qtestnet.com', %s, 'r1', now(), false, "
            "'incomplete: 1 values in 1 fields did not arrive', 1, 0, '/reports/x.md')",
            (first,),
        )
        conn.execute(
            "insert into migration.ledger values ('https://a.qtestnet.com', %s, 'test case', %s, "
            "'links.webLinks', 'https://a.example', 'not carried by design', 'accept it', '', null)",
            (first, f"{first}-T1"),
        )
    migration_assets = [a for a in snowflake_assets if a.key.path[1] in ("id_map", "reconciliation")]
    result = _run(copied["url"], first, migration_assets, snowflake_dir=copied["directory"])
    assert result.success, _failures(result)
    assert not _failures(result)
    database = copied["directory"] / f"{warehouse.EMBEDDED_DATABASE}.db"
    with duckdb.connect(str(database), read_only=True) as conn:
        rows = conn.execute(
            'select "SOURCE_KEY", "UPDATED_AT", "DETAIL"->>\'$.steps[1]\', json_type("DETAIL") '
            'from migration."ID_MAP" where "PROJECT_KEY" = ? order by 1',
            [first],
        ).fetchall()
        counts = [
            conn.execute(
                f'select count(*) from migration."{table}" where "PROJECT_KEY" = ?', [first]
            ).fetchone()
            for table in ("RECONCILIATION", "RECONCILIATION_MISMATCH", "PROOF", "LEDGER")
        ]
    assert rows == [
        (f"{first}-F1", datetime(2024, 3, 2, 4, 30), None, "OBJECT"),
        (f"{first}-T1", datetime(2024, 3, 1, 10, 0), "2", "OBJECT"),
    ]
    assert counts == [(1,), (1,), (1,), (1,)]


@pytest.mark.skipif(
    not os.environ.get("SNOWFLAKE_ACCOUNT"),
    reason="SNOWFLAKE_ACCOUNT is not set: the copy into a real Snowflake account was not run",
)
def test_copy_into_a_real_snowflake_account(canonical_database: dict[str, Any]) -> None:
    """Copies one project's canonical.status into a schema of its own in the configured database (the role
    needs CREATE SCHEMA there), checks it, and drops the schema: nobody's copy is touched."""
    from zephyr_qtest.defs.resources import snowflake_resource_from_env

    contract = CANONICAL["status"]
    project_key = canonical_database["projects"][0]
    schema = f"ZQ_TEST_{uuid.uuid4().hex[:10].upper()}"
    with (
        dg.build_resources({"snowflake": snowflake_resource_from_env()}) as resources,
        resources.snowflake.get_connection() as conn,
    ):
        # Our resource: it connects through dagster-snowflake's SnowflakeResource.
        cursor = conn.cursor()
        cursor.execute(f"CREATE TRANSIENT SCHEMA {schema}")
        try:
            cursor.execute(f"USE SCHEMA {schema}")
            copies = warehouse.replace_partition(canonical_database["url"], conn, [contract], project_key)
            assert copies[0].rows > 0
            assert warehouse.snowflake_tally(conn, contract, project_key) == copies[0].postgres
            again = warehouse.replace_partition(canonical_database["url"], conn, [contract], project_key)
            assert warehouse.snowflake_tally(conn, contract, project_key) == again[0].postgres
        finally:
            cursor.execute(f"DROP SCHEMA IF EXISTS {schema}")
