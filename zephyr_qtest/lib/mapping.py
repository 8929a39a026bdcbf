"""What the transform produced for a project, read back from the database: the rows of each canonical
and mapping table, and what has no mapping (``qtest_mapping.unmapped``), for the run's metadata and the
terminal report."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from zephyr_qtest.lib.markdown import cell

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import Connections

CANONICAL_SCHEMA = "canonical"
MAPPING_SCHEMA = "qtest_mapping"
# The tables a user counts first, in load order (all the others are listed after them).
MAIN_TABLES = (
    "canonical.folder",
    "canonical.test_case",
    "canonical.test_step",
    "canonical.test_cycle",
    "canonical.test_execution",
    "canonical.test_execution_step",
    "canonical.attachment",
    "qtest_mapping.qtest_modules",
    "qtest_mapping.qtest_test_cases",
    "qtest_mapping.qtest_test_cycles",
    "qtest_mapping.qtest_test_runs",
    "qtest_mapping.qtest_test_logs",
    "qtest_mapping.qtest_attachments",
)


@dataclass(frozen=True)
class Unmapped:
    what: str
    value: str
    count: int


def unmapped_markdown(unmapped: list[Unmapped], *, limit: int = 50) -> str:
    if not unmapped:
        return "Every value has a mapping."
    lines = ["| what | value | objects |", "|---|---|---:|"]
    for item in unmapped[:limit]:
        value = cell(item.value) or "—"
        lines.append(f"| {cell(item.what)} | {value} | {item.count} |")
    if len(unmapped) > limit:
        lines.append(f"| … | {len(unmapped) - limit} more in qtest_mapping.unmapped | |")
    return "\n".join(lines)


def print_transform_report(marts: MartRows, projects: list[str]) -> None:
    counts = marts.row_counts(projects)
    if not counts:
        print("canonical / qtest_mapping: not built")
        return
    names = [name for name in MAIN_TABLES if name in counts]
    names += sorted(name for name in counts if name not in MAIN_TABLES)
    width = max(len(name) for name in names)
    header = f"{'table':<{width}}  " + "  ".join(f"{project:>10}" for project in projects)
    print(header)
    print("-" * len(header))
    for name in names:
        print(f"{name:<{width}}  " + "  ".join(f"{counts[name].get(p, 0):>10}" for p in projects))
    for project in projects:
        unmapped = marts.unmapped(project)
        if unmapped:
            print(f"\n{project}: {sum(item.count for item in unmapped)} objects with values that have no mapping "
                  "(edit dbt_project/seeds/*_map.csv, then re-run):")  # fmt: skip
            for item in unmapped[:20]:
                print(f"  {item.what:<28} {item.value or '—':<40} {item.count:>6}")
            if len(unmapped) > 20:
                print(f"  … {len(unmapped) - 20} more in qtest_mapping.unmapped")


@dataclass(frozen=True)
class RelationStats:
    rows: int | None  # None for a relation of another kind (a materialized view, a foreign table)
    columns: list[tuple[str, str]]  # (name, PostgreSQL type), in table order


class ProjectTableStats:
    """Reads what a dbt run built for one project, on one connection for the whole run: each relation's
    columns as the database has them, and its rows of the project (the marts hold every project's; a seed
    is counted whole)."""

    def __init__(self, db: Connections, project_key: str) -> None:
        self._db = db
        self._project_key = project_key
        self._held = ExitStack()
        self._conn: Any = None

    def __enter__(self) -> ProjectTableStats:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._held.close()

    def describe(self, schema: str, table: str) -> RelationStats | None:
        """None when the relation does not exist."""
        if self._conn is None:
            self._conn = self._held.enter_context(self._db.connection(autocommit=True))
        kind = self._conn.execute(
            "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relname = %s",
            (schema, table),
        ).fetchone()
        if not kind:
            return None
        columns = self._conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, table),
        ).fetchall()
        if kind[0] not in ("r", "p", "v"):
            return RelationStats(rows=None, columns=columns)
        # A view is counted too: the staging views filter the raw tables, so this reads the project's rows.
        query = sql.SQL("select count(*) from {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        if any(name == "project_key" for name, _ in columns):
            rows = self._conn.execute(
                sql.SQL("{} where project_key = %s").format(query), (self._project_key,)
            )
        else:
            rows = self._conn.execute(query)
        return RelationStats(rows=rows.fetchone()[0], columns=columns)


class AttachmentBytes:
    """Reads attachments' bytes from ``canonical.attachment`` through one connection (a publishing stage's)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def read(self, attachment_id: int) -> bytes:
        # Synchronous and without an await: concurrent uploads never interleave on the connection.
        row = self._conn.execute(
            "select attachment_blob from canonical.attachment where attachment_id = %s", (attachment_id,)
        ).fetchone()
        if row is None or row[0] is None:
            raise ValueError(f"attachment {attachment_id} has no bytes in canonical.attachment")
        return bytes(row[0])


class MartRows:
    """The mart reads' repository: ``qtest_mapping`` marts, ``unmapped``, attachments' bytes, row counts."""

    def __init__(self, db: Connections) -> None:
        self._db = db

    def rows(self, table: str, project_key: str, order_by: Sequence[str]) -> list[dict[str, Any]]:
        """One project's rows of ``qtest_mapping.<table>``, ordered by the columns `order_by`."""
        query = sql.SQL("select * from {table} where project_key = %s order by {order}").format(
            table=sql.Identifier(MAPPING_SCHEMA, table),
            order=sql.SQL(", ").join(sql.Identifier(column) for column in order_by),
        )
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(query, (project_key,))
            return list(cursor.fetchall())

    def property_uses(
        self, table: str, project_key: str, listed_fields: Sequence[str]
    ) -> list[tuple[str, str | None, str, str | None]]:
        """What one project's rows of ``qtest_mapping.<table>`` set in their ``properties``: distinct
        (field label, Zephyr field, JSON type of the value, item), where the item is each element of an
        array value, a boolean value, or a string value of the Zephyr fields `listed_fields` (picklists
        such as priority) or of a field declared a single choice, and None for any other value. One pass
        in the database, nothing per row here."""
        query = sql.SQL(
            "select prop ->> 'field_label', prop ->> 'zephyr_field', "
            # A day is text marked "data_type": "date", a declared single choice "choice" (the
            # properties_array macro).
            "coalesce(prop ->> 'data_type', jsonb_typeof(prop -> 'value')), item.value "
            "from {table} as t "
            "cross join lateral jsonb_array_elements(coalesce(t.properties, '[]'::jsonb)) as p (prop) "
            "left join lateral (select element #>> '{{}}' as value from jsonb_array_elements(case "
            "when jsonb_typeof(prop -> 'value') = 'array' then prop -> 'value' "
            "when jsonb_typeof(prop -> 'value') = 'boolean' "
            "or (jsonb_typeof(prop -> 'value') = 'string' and (prop ->> 'zephyr_field' = any(%s) "
            "or prop ->> 'data_type' = 'choice')) "
            "then jsonb_build_array(prop -> 'value') else '[]'::jsonb end) as element) as item on true "
            "where t.project_key = %s and nullif(prop ->> 'field_label', '') is not null "
            "group by 1, 2, 3, 4"
        ).format(table=sql.Identifier(MAPPING_SCHEMA, table))
        with self._db.connection() as conn:
            rows = conn.execute(query, (list(listed_fields), project_key)).fetchall()
        return [(label, zephyr_field, value_type, item) for label, zephyr_field, value_type, item in rows]

    def unmapped(self, project_key: str) -> list[Unmapped]:
        """The project's rows of ``qtest_mapping.unmapped`` (empty when the table does not exist yet)."""
        with self._db.connection() as conn:
            exists = conn.execute("select to_regclass('qtest_mapping.unmapped')").fetchone()
            if not exists or not exists[0]:
                return []
            rows = conn.execute(
                'select what, value, "count" from qtest_mapping.unmapped where project_key = %s '
                'order by what, "count" desc, value',
                (project_key,),
            ).fetchall()
        return [Unmapped(what, value, count) for what, value, count in rows]

    @contextmanager
    def attachment_contents(self) -> Iterator[AttachmentBytes]:
        """One connection (autocommit) for every attachment's bytes a stage uploads."""
        with self._db.connection(autocommit=True) as conn:
            yield AttachmentBytes(conn)

    def table_stats(self, project_key: str) -> ProjectTableStats:
        return ProjectTableStats(self._db, project_key)

    def row_counts(self, projects: list[str]) -> dict[str, dict[str, int]]:
        """``schema.table`` → {project: rows}, for every canonical and mapping table that has a project_key."""
        with self._db.connection() as conn:
            tables = conn.execute(
                "select table_schema, table_name from information_schema.columns "
                "where table_schema = any(%s) and column_name = 'project_key' order by 1, 2",
                ([CANONICAL_SCHEMA, MAPPING_SCHEMA],),
            ).fetchall()
            counts: dict[str, dict[str, int]] = {}
            for schema, table in tables:
                rows = conn.execute(
                    sql.SQL(
                        "select project_key, count(*) from {}.{} where project_key = any(%s) group by 1"
                    ).format(sql.Identifier(schema), sql.Identifier(table)),
                    (projects,),
                ).fetchall()
                counts[f"{schema}.{table}"] = dict(rows)
        return counts
