"""Helpers for tests that run the Dagster asset graph in process.

``materialize_partition`` materializes assets for one project partition on an ephemeral instance with
the resources a test names (PostgreSQL always, dbt always, Zephyr, qTest and Snowflake when given);
every integration test goes through it, so a change to the resources is made here once.

``TransformedDatabase`` is one database extracted from a Zephyr sandbox and built by dbt, twice per
project (A, B, A, B), made once per session by the ``transformed_database`` fixture in ``conftest.py``;
modules get copies of it (``CREATE DATABASE ... TEMPLATE``) and the results of the four runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import psycopg
from dagster_dbt import DbtCliResource
from psycopg import sql

from zephyr_qtest.defs.ingest.assets import raw_assets
from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.defs.resources import (
    JiraResource,
    PostgresResource,
    QtestResource,
    SnowflakeWarehouse,
    ZephyrResource,
)
from zephyr_qtest.defs.transform.dbt_models import dbt_project, zephyr_dbt_models
from zephyr_qtest.lib.dbt import dbt_executable
from zephyr_qtest.lib.postgres import with_database
from zephyr_qtest.sandbox.jira.serve import JiraSandboxHandle
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle

MART_SCHEMAS = ("canonical", "qtest_mapping")
# dbt seeds: the same for every project, and without a project_key column.
DBT_SEEDS = {"status_map", "priority_map", "user_map", "user_names", "custom_field_map"}
# When and by which run a row was extracted: the only columns a re-extraction may change.
EXTRACTION_STAMPS = {"_loaded_at", "_run_id"}


def materialize_partition(
    assets: Sequence[Any],
    partition_key: str,
    *,
    database_url: str,
    zephyr: ZephyrSandboxHandle | ZephyrResource | None = None,
    qtest: QTestSandboxHandle | None = None,
    snowflake: SnowflakeWarehouse | None = None,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = False,
    qtest_options: Mapping[str, Any] | None = None,
    jira: JiraSandboxHandle | None = None,
    **kwargs: Any,
) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` for the project ``partition_key`` (added to the instance's dynamic partitions).

    ``zephyr``: a sandbox (its URL and token) or a resource configured by the caller (another token, fewer
    retries). ``instance``: one the caller reads logs from afterwards; a fresh ephemeral one by default.
    ``qtest_options``: more settings of the qTest resource (e.g. ``create_fields``).
    ``jira``: a Jira sandbox the linked issues are asked of (without it Jira is not configured).
    ``kwargs`` go to ``dg.materialize`` (e.g. ``selection``).
    """
    instance = instance or dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(zephyr_projects.name, [partition_key])
    resources: dict[str, Any] = {
        "postgres": PostgresResource(database_url=database_url),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
        "jira": JiraResource()
        if jira is None
        else JiraResource(base_url=jira.base_url, email=jira.email, api_token=jira.token),
    }
    if isinstance(zephyr, ZephyrResource):
        resources["zephyr"] = zephyr
    elif zephyr is not None:
        resources["zephyr"] = ZephyrResource(base_url=zephyr.base_url, api_token=zephyr.token)
    if qtest is not None:
        resources["qtest"] = QtestResource(
            base_url=qtest.base_url, api_token=qtest.token, **dict(qtest_options or {})
        )
    if snowflake is not None:
        resources["snowflake"] = snowflake
    return dg.materialize(
        assets,
        partition_key=partition_key,
        instance=instance,
        resources=resources,
        raise_on_error=raise_on_error,
        **kwargs,
    )


def mart_snapshot(url: str) -> dict[tuple[str, str], dict[str, str]]:
    """md5 of every mart table's rows without the extraction stamps, per project:
    {(schema, table): {project_key: digest:count}}."""
    digests: dict[tuple[str, str], dict[str, str]] = {}
    with psycopg.connect(url) as conn:
        columns: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in conn.execute(
            "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
            "join information_schema.tables t using (table_schema, table_name) "
            "where c.table_schema = any(%s) and t.table_type = 'BASE TABLE' order by 1, 2, c.ordinal_position",
            (list(MART_SCHEMAS),),
        ):
            if table not in DBT_SEEDS and column not in EXTRACTION_STAMPS:
                columns.setdefault((schema, table), []).append(column)
        for (schema, table), names in columns.items():
            row = sql.SQL("row({})::text").format(sql.SQL(", ").join(map(sql.Identifier, names)))
            rows = conn.execute(
                sql.SQL(
                    "select project_key, md5(string_agg(r, E'\\n' order by r)), count(*) "
                    "from (select project_key, {} as r from {}.{}) as t group by project_key"
                ).format(row, sql.Identifier(schema), sql.Identifier(table))
            ).fetchall()
            digests[(schema, table)] = {key: f"{digest}:{count}" for key, digest, count in rows}
    return digests


@dataclass(frozen=True)
class BuildRun:
    """One raw + dbt run of the shared build: its project, its result and the marts right after it."""

    project: str
    result: dg.ExecuteInProcessResult
    snapshot: dict[tuple[str, str], dict[str, str]]


@dataclass
class TransformedDatabase:
    """Both projects of the shared Zephyr sandbox extracted and built by dbt, each twice (A, B, A, B).

    The database itself is a template nobody connects to; ``copy()`` gives a module a database of its own
    with the same contents (its writes are invisible to the other modules), dropped at the session's end.
    """

    server_url: str
    template: str
    zephyr: ZephyrSandboxHandle
    projects: list[str]
    runs: list[BuildRun]
    _cleanup: ExitStack = field(repr=False)

    def copy(self, prefix: str) -> str:
        """A new database ``<prefix>_<random>`` made from the template; its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
        self._cleanup.callback(_drop_database, self.server_url, name)
        return with_database(self.server_url, name)


def _drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def build_transformed_database(
    server_url: str, zephyr: ZephyrSandboxHandle, cleanup: ExitStack
) -> TransformedDatabase:
    """Extract and dbt-build every project of ``zephyr`` into a new database, twice (A, B, A, B), then
    close it to connections so that it can serve as a template. Runs that fail are handed on, not raised:
    the modules assert on them."""
    template = f"zq_shared_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(template)))
    cleanup.callback(_drop_database, server_url, template)
    url = with_database(server_url, template)
    projects = sorted(zephyr.info()["counts"]["per_project"])
    runs = []
    for project in (*projects, *projects):
        result = materialize_partition(
            [*raw_assets, zephyr_dbt_models], project, database_url=url, zephyr=zephyr
        )
        runs.append(BuildRun(project, result, mart_snapshot(url)))
    with psycopg.connect(server_url, autocommit=True) as conn:
        # CREATE DATABASE ... TEMPLATE needs the template to have no session: refuse new ones, end any left
        # (a pool the resources kept open).
        conn.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(template)))
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            (template,),
        )
    return TransformedDatabase(server_url, template, zephyr, projects, runs, cleanup)
