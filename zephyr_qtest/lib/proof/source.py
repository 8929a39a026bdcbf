"""The Zephyr side of the proof, as extracted: the raw payloads of one project, the names its ids stand
for, the user's mapping seeds, and what the id map and the extraction recorded about each object.

Nothing here reads a mapping mart's values: the marts are only asked *why* an object was not sent (their
``skip_reason``), never what it should hold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from psycopg import sql
from psycopg.rows import dict_row

from zephyr_qtest.lib.raw_store import RAW_SCHEMA

Payload = Mapping[str, Any]


class Connections(Protocol):
    def connection(self, *, autocommit: bool = False) -> Any: ...


@dataclass(frozen=True)
class RawObject:
    """One object as the API sent it, with the columns that locate it."""

    key: str | None
    id: int | None
    parent_key: str | None
    position: int | None
    payload: Payload
    # Attachments: the bytes' size and SHA-256 beside the payload.
    size_bytes: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Recorded:
    """What the id map says of one object: its state and, when qTest refused it, what qTest answered."""

    state: str
    error: str | None


@dataclass
class Seeds:
    """The user's mapping, as the seeds say it (the rules a carried value follows, not the loader's output)."""

    priorities: dict[str, str] = field(default_factory=dict)
    # status type -> Zephyr name -> qTest name
    statuses: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    users: dict[str, str] = field(default_factory=dict)
    # (object type, Zephyr field) -> qTest label ('' means the user chose not to carry it)
    labels: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass
class Source:
    """One project's raw payloads and what was recorded about them."""

    project_key: str
    objects: dict[str, list[RawObject]]
    # entity -> Zephyr id -> name (priorities, statuses, environments)
    names: dict[str, dict[int, str]]
    seeds: Seeds
    # (id-map object type, source key) -> what the id map recorded
    recorded: dict[tuple[str, str], Recorded]
    # (mart, source key) -> the mart's skip_reason
    skipped: dict[tuple[str, str], str]
    # (entity, object ref) -> [(field, what was replaced)] (extraction issues of replaced characters)
    replaced: dict[tuple[str, str], list[tuple[str, str]]]

    def of(self, entity: str) -> list[RawObject]:
        return self.objects.get(entity, [])

    def name(self, entity: str, reference: Any) -> str | None:
        """The name of a vocabulary value a payload refers to (``{"id": ...}``), None when it refers to none."""
        if not isinstance(reference, Mapping) or reference.get("id") is None:
            return None
        return self.names.get(entity, {}).get(int(reference["id"]), f"(unknown id {reference['id']})")


OBJECT_ENTITIES = (
    "folders",
    "test_cases",
    "test_case_versions",
    "test_steps",
    "test_scripts",
    "test_cycles",
    "test_plans",
    "test_executions",
    "test_execution_steps",
    "attachments",
    # Jira's answers for the linked issues (lib/jira_issues.py): what their requirements are named after.
    "jira_issues",
)
VOCABULARIES = ("priorities", "statuses", "environments")
SKIP_MARTS = ("qtest_test_runs", "qtest_test_logs", "qtest_test_step_logs", "qtest_attachments")
REPLACED_MARK = "U+FFFD"


def _table_exists(conn: Any, schema: str, table: str) -> bool:
    return (
        conn.execute(
            "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
            (schema, table),
        ).fetchone()
        is not None
    )


def _rows(conn: Any, query: sql.Composable, params: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(query, params)
        yield from cursor


def load_source(db: Connections, project_key: str, target_site: str) -> Source:
    """Everything the proof reads on the Zephyr side, in one connection."""
    with db.connection() as conn:
        objects: dict[str, list[RawObject]] = {}
        for entity in OBJECT_ENTITIES:
            if not _table_exists(conn, RAW_SCHEMA, entity):
                objects[entity] = []
                continue
            extra = sql.SQL(", size_bytes, sha256" if entity == "attachments" else ", null, null")
            query = sql.SQL(
                "select key, id, parent_key, position, payload{extra} from {schema}.{table} "
                "where project_key = %s order by parent_key nulls first, position nulls first, key, id"
            ).format(extra=extra, schema=sql.Identifier(RAW_SCHEMA), table=sql.Identifier(entity))
            objects[entity] = [
                RawObject(key, id_, parent_key, position, payload or {}, size_bytes, sha256)
                for key, id_, parent_key, position, payload, size_bytes, sha256 in conn.execute(
                    query, (project_key,)
                ).fetchall()
            ]
        names: dict[str, dict[int, str]] = {}
        for entity in VOCABULARIES:
            names[entity] = {}
            if _table_exists(conn, RAW_SCHEMA, entity):
                query = sql.SQL("select id, payload->>'name' from {}.{} where project_key = %s").format(
                    sql.Identifier(RAW_SCHEMA), sql.Identifier(entity)
                )
                names[entity] = {
                    int(id_): str(name or "") for id_, name in conn.execute(query, (project_key,)).fetchall()
                }
        return Source(
            project_key,
            objects,
            names,
            _seeds(conn),
            _recorded(conn, project_key, target_site),
            _skipped(conn, project_key),
            _replaced(conn, project_key),
        )


def _seeds(conn: Any) -> Seeds:
    seeds = Seeds()
    if _table_exists(conn, "qtest_mapping", "priority_map"):
        seeds.priorities = dict(
            conn.execute("select zephyr_name, qtest_name from qtest_mapping.priority_map")
        )
    if _table_exists(conn, "qtest_mapping", "status_map"):
        for status_type, zephyr_name, qtest_name in conn.execute(
            "select status_type, zephyr_name, qtest_name from qtest_mapping.status_map"
        ):
            seeds.statuses[status_type][zephyr_name] = qtest_name
    if _table_exists(conn, "qtest_mapping", "user_map"):
        seeds.users = dict(
            conn.execute("select zephyr_account_id::text, qtest_username::text from qtest_mapping.user_map")
        )
    if _table_exists(conn, "qtest_mapping", "custom_field_map"):
        for object_type, zephyr_field, qtest_label in conn.execute(
            "select object_type, zephyr_field, qtest_label from qtest_mapping.custom_field_map"
        ):
            seeds.labels[(object_type, zephyr_field)] = qtest_label or ""
    return seeds


def _recorded(conn: Any, project_key: str, target_site: str) -> dict[tuple[str, str], Recorded]:
    if not _table_exists(conn, "migration", "id_map"):
        return {}
    return {
        (object_type, source_key): Recorded(state, error)
        for object_type, source_key, state, error in conn.execute(
            "select object_type, source_key, state, error from migration.id_map "
            "where target_site = %s and project_key = %s",
            (target_site, project_key),
        )
    }


def _skipped(conn: Any, project_key: str) -> dict[tuple[str, str], str]:
    skipped: dict[tuple[str, str], str] = {}
    for mart in SKIP_MARTS:
        if not _table_exists(conn, "qtest_mapping", mart):
            continue
        query = sql.SQL(
            "select source_key, skip_reason from {}.{} where project_key = %s and skip_reason is not null"
        ).format(sql.Identifier("qtest_mapping"), sql.Identifier(mart))
        for source_key, reason in conn.execute(query, (project_key,)):
            skipped[(mart, str(source_key))] = str(reason)
    return skipped


def _replaced(conn: Any, project_key: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    replaced: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    if not _table_exists(conn, RAW_SCHEMA, "extraction_issues"):
        return replaced
    for entity, object_ref, field_path, reason in conn.execute(
        "select entity, object_ref, field, reason from zephyr_raw.extraction_issues "
        "where project_key = %s and reason like %s",
        (project_key, f"%{REPLACED_MARK}%"),
    ):
        replaced[(entity, object_ref)].append((field_path or "", reason))
    return replaced
