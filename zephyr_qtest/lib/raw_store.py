"""The raw layer in Postgres: one jsonb table per Zephyr entity, written one project at a time.

Each ``zephyr_raw.<entity>`` table holds the API's own objects untouched (``payload``) beside the columns
that locate them: project key, Zephyr id and key, the owner (``parent_key``) and position for child
objects, when and by which run they were extracted, and the filter of the listing that returned them
(``listing_filter``: a status's type is only known from the ``statusType`` it was listed under, never from
the status itself). A partition is replaced in ONE transaction: delete
the project's rows, ``COPY`` the new ones in, record what the API reported and what went wrong. A
failure rolls all of it back, so a table never holds half a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from psycopg import sql
from psycopg.abc import Query

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import AsyncConnections, Database

RAW_SCHEMA = "zephyr_raw"

_ENTITY_COLUMNS = """
    project_key text not null,
    id bigint,
    key text,
    parent_key text,
    position integer,
    payload jsonb not null,
    extracted_at timestamptz not null,
    run_id text not null
"""
# Attachments also keep their bytes and what the migration needs to verify them.
_ATTACHMENT_COLUMNS = """,
    content_type text,
    size_bytes bigint not null,
    sha256 text not null,
    content bytea not null
"""
# Last in every table (after the attachment columns), so that tables made before it existed get it by
# `add column` in the same place: the query filter the listing was made with, e.g. {"statusType":
# "TEST_CASE"}; null for objects listed without one. The payload stays the API's own object.
_LISTING_FILTER_COLUMN = """,
    listing_filter jsonb
"""

# The schema named literally: no identifier is interpolated into the statement text.
EXTRACTION_LOG_DDL = """
create table if not exists zephyr_raw.extraction_log (
    project_key text not null,
    entity text not null,
    run_id text not null,
    rows_written bigint not null,
    api_reported bigint,
    issues integer not null,
    lost integer not null,
    requests bigint not null,
    retries bigint not null,
    rate_limited bigint not null,
    seconds double precision not null,
    finished_at timestamptz not null,
    primary key (project_key, entity)
);
alter table zephyr_raw.extraction_log add column if not exists mode text;
alter table zephyr_raw.extraction_log add column if not exists read_since timestamptz;
alter table zephyr_raw.extraction_log add column if not exists changes_read_to bigint"""

# What each extraction of a listed collection found changed, new or deleted since the raw table's previous
# state: the delta extractions of the per-object children read it (by `seq`, which only grows), and the
# report names the deletions. Written in the same transaction as the rows, so it never describes rows that
# were rolled back.
EXTRACTION_CHANGES_DDL = """
create table if not exists zephyr_raw.extraction_changes (
    seq bigserial primary key,
    project_key text not null,
    entity text not null,
    object_id bigint,
    object_key text,
    change text not null check (change in ('new', 'changed', 'deleted')),
    run_id text not null,
    recorded_at timestamptz not null
);
create index if not exists extraction_changes_project_idx on zephyr_raw.extraction_changes (project_key, seq)"""

EXTRACTION_ISSUES_DDL = """
create table if not exists zephyr_raw.extraction_issues (
    project_key text not null,
    entity text not null,
    run_id text not null,
    object_ref text not null,
    field text,
    reason text not null,
    lost boolean not null,
    recorded_at timestamptz not null
)"""


def raw_table(entity: str) -> sql.Composed:
    """``zephyr_raw.<entity>``, quoted."""
    return sql.SQL("{}.{}").format(sql.Identifier(RAW_SCHEMA), sql.Identifier(entity))


def entity_table_ddl(entity: str, *, with_content: bool = False) -> sql.Composed:
    """Create ``zephyr_raw.<entity>`` if missing, and bring a table from before ``listing_filter`` up to date."""
    columns = _ENTITY_COLUMNS + (_ATTACHMENT_COLUMNS if with_content else "") + _LISTING_FILTER_COLUMN
    return sql.SQL(
        "create table if not exists {table} ({columns});\n"
        "alter table {table} add column if not exists listing_filter jsonb;\n"
        "create index if not exists {index} on {table} (project_key);"
    ).format(
        table=raw_table(entity),
        columns=sql.SQL(columns),  # fixed column definitions, no input
        index=sql.Identifier(f"{entity}_project_key_idx"),
    )


@dataclass(frozen=True)
class Issue:
    """Something wrong with one object. ``lost`` means its data is not in the raw table."""

    object_ref: str
    reason: str
    field: str | None = None
    lost: bool = False

    def describe(self) -> str:
        where = f"{self.object_ref}.{self.field}" if self.field else self.object_ref
        return f"{where}: {self.reason}"


@dataclass
class RawRow:
    payload: dict[str, Any]
    id: int | None = None
    key: str | None = None
    parent_key: str | None = None
    position: int | None = None
    # attachments only
    content: bytes | None = None
    content_type: str | None = None
    # The query filter the object was listed with (``{"statusType": "TEST_CASE"}``), kept beside the payload.
    listing_filter: dict[str, str] | None = None


@dataclass
class ChangeCounts:
    """What a listed collection's extraction found against the raw table's previous state."""

    new: int = 0
    changed: int = 0
    deleted: list[str] = field(default_factory=list)
    # False when the listing was incomplete (an object lost): deletions cannot be told then.
    deletions_known: bool = True


@dataclass
class PartitionSummary:
    entity: str
    project_key: str
    rows_written: int = 0
    api_reported: int | None = None
    issues: list[Issue] = field(default_factory=list)
    # "delta" when only what changed was read (see RawPartitionWriter).
    mode: str = "full"
    # A listed collection's new, changed and deleted objects (None for the other tables).
    changes: ChangeCounts | None = None

    @property
    def lost(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.lost]


# PostgreSQL's text and jsonb hold neither NUL nor a lone UTF-16 surrogate (half of an emoji a truncation
# cut in two, served as a ``\ud83d`` escape): encoding one fails the whole COPY, so the extraction of every
# other object with it. Each is replaced by U+FFFD, the Unicode replacement character, and recorded.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# The start of the reason of an object a listing served twice with different content: the raw check
# `ids_unique` finds these issues by it.
SERVED_TWICE = "served twice with different content"


def storable_text(value: str) -> str:
    """`value` with every NUL and lone surrogate replaced by U+FFFD (what PostgreSQL text can hold)."""
    return _UNSTORABLE.sub("\ufffd", value) if _UNSTORABLE.search(value) else value


def _what_was_replaced(value: str) -> list[str]:
    found = []
    if "\x00" in value:
        found.append("a NUL character")
    if _LONE_SURROGATE.search(value):
        found.append("a lone UTF-16 surrogate")
    return found


def _storable(value: Any, path: str, replaced: dict[str, list[str]]) -> Any:
    """A copy of `value` with unstorable characters replaced; `replaced` gets each field path and what it held."""
    if isinstance(value, str):
        if not _UNSTORABLE.search(value):
            return value
        replaced.setdefault(path or "(value)", []).extend(_what_was_replaced(value))
        return storable_text(value)
    if isinstance(value, dict):
        result = {}
        for name, item in value.items():
            name_text = str(name)
            if _UNSTORABLE.search(name_text):
                replaced.setdefault(f"{path}.{storable_text(name_text)}".lstrip("."), []).append(
                    "a field name with " + " and ".join(_what_was_replaced(name_text))
                )
                name_text = storable_text(name_text)
            result[name_text] = _storable(item, f"{path}.{name_text}".lstrip("."), replaced)
        return result
    if isinstance(value, list):
        return [_storable(item, f"{path}[{index}]", replaced) for index, item in enumerate(value)]
    return value


def payload_json(payload: dict[str, Any], object_ref: str, issues: list[Issue]) -> str:
    """Serialise a payload for jsonb. NUL characters and lone surrogates, which PostgreSQL cannot store, are
    replaced by U+FFFD, one issue per field path naming what was replaced; the object is kept."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    # json.dumps escapes NUL as \u0000 and leaves a lone surrogate as it is; most payloads hold neither,
    # and only those are walked (a literal backslash-u0000 in a value is found not to be one by the walk).
    if "\\u0000" not in text and not _LONE_SURROGATE.search(text):
        return text
    replaced: dict[str, list[str]] = {}
    storable = _storable(payload, "", replaced)
    for path, found in replaced.items():
        what = " and ".join(dict.fromkeys(found))
        issues.append(
            Issue(
                object_ref,
                f"held {what}, which PostgreSQL cannot store; stored with U+FFFD in its place",
                field=path,
            )
        )
    return json.dumps(storable, ensure_ascii=False, separators=(",", ":"))


def _differing_fields(earlier: dict[str, Any], later: dict[str, Any]) -> list[str]:
    """The top-level fields whose values differ between two copies of one object, sorted."""
    return sorted(
        name
        for name in earlier.keys() | later.keys()
        if name not in earlier or name not in later or earlier[name] != later[name]
    )


@dataclass(frozen=True)
class MergeScope:
    """What a delta extraction of a child table replaces: the rows of these owners (``parent_key`` equal to
    one of `parents`, or starting with one of `prefixes`); every other row of the project is kept."""

    parents: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()


class RawPartitionWriter:
    """Replace one project's rows of one raw table in a single transaction, streaming rows in with COPY.

    Rows may be added from many concurrent tasks; a lock keeps the COPY stream whole.

    ``merge``: a delta of a child table; only the rows of the owners it names are replaced. ``track_changes``:
    a listed collection; what is new, changed (its payload differs, or the listing's change filter named
    it: `mark_changed`) or gone since the table's previous state is recorded in
    ``zephyr_raw.extraction_changes``. ``read_since`` and ``changes_read_to`` are the watermarks the next
    delta starts from; they are written with the rows, in the same transaction, and only when nothing was
    lost, so a failed or killed extraction never moves them.
    """

    def __init__(
        self,
        db: AsyncConnections,
        entity: str,
        project_key: str,
        run_id: str,
        *,
        merge: MergeScope | None = None,
        track_changes: bool = False,
    ) -> None:
        self._db = db
        self.entity = entity
        self.project_key = project_key
        self.run_id = run_id
        self.merge = merge
        self.track_changes = track_changes
        # "delta" when this extraction read only what changed (a merge, or a listing with a change filter).
        self.mode = "delta" if merge is not None else "full"
        self.read_since: datetime | None = None
        self.changes_read_to: int | None = None
        self.changes = ChangeCounts()
        self._reported_changed: set[int] = set()
        self._kept_rows = 0
        self.with_content = entity == "attachments"
        self.summary = PartitionSummary(entity=entity, project_key=project_key)
        self._extracted_at = datetime.now(UTC)
        self._lock = asyncio.Lock()
        self._conn: psycopg.AsyncConnection | None = None
        self._copy_cm: Any = None
        self._copy: Any = None
        self._again: list[tuple[RawRow, list[Issue]]] = []

    @property
    def issues(self) -> list[Issue]:
        return self.summary.issues

    def record(self, issue: Issue) -> None:
        self.summary.issues.append(issue)

    def mark_changed(self, ident: int) -> None:
        """The listing's change filter (``updatedAfter``, ``actualEndDateAfter``) named this object: it counts
        as changed even if its listed payload is the same (its steps or script may not be)."""
        self._reported_changed.add(ident)

    async def __aenter__(self) -> RawPartitionWriter:
        self._conn = await self._db.connect_async()
        await self._conn.execute("create schema if not exists zephyr_raw")
        await self._conn.execute(entity_table_ddl(self.entity, with_content=self.with_content))
        await self._conn.execute(EXTRACTION_LOG_DDL)
        await self._conn.execute(EXTRACTION_ISSUES_DDL)
        await self._conn.execute(EXTRACTION_CHANGES_DDL)
        table = raw_table(self.entity)
        if self.track_changes:
            # The previous state, as digests: compared in SQL when the new rows are in (flat memory).
            await self._conn.execute(
                sql.SQL(
                    "create temp table previous_rows on commit drop as "
                    "select id, key, md5(payload::text) as digest from {} where project_key = %s"
                ).format(table),
                (self.project_key,),
            )
        if self.merge is None:
            await self._conn.execute(
                sql.SQL("delete from {} where project_key = %s").format(table), (self.project_key,)
            )
        else:
            await self._conn.execute(
                sql.SQL(
                    "delete from {} where project_key = %s and (parent_key = any(%s) "
                    "or exists (select 1 from unnest(%s::text[]) as prefix where starts_with(parent_key, prefix)))"
                ).format(table),
                (self.project_key, sorted(self.merge.parents), sorted(self.merge.prefixes)),
            )
            cursor = await self._conn.execute(
                sql.SQL("select count(*) from {} where project_key = %s").format(table), (self.project_key,)
            )
            row = await cursor.fetchone()
            self._kept_rows = int(row[0]) if row else 0
        columns = ["project_key", "id", "key", "parent_key", "position", "payload", "extracted_at", "run_id"]
        if self.with_content:
            columns += ["content_type", "size_bytes", "sha256", "content"]
        columns.append("listing_filter")
        copy_sql = sql.SQL("copy {} ({}) from stdin").format(
            raw_table(self.entity), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        self._copy_cm = self._conn.cursor().copy(copy_sql)
        self._copy = await self._copy_cm.__aenter__()
        return self

    def _object_ref(self, row: RawRow) -> str:
        return storable_text(f"{self.entity} {row.key or (str(row.id) if row.id is not None else '?')}")

    async def add(self, row: RawRow) -> None:
        values: list[Any] = [
            self.project_key,
            row.id,
            None if row.key is None else storable_text(row.key),
            None if row.parent_key is None else storable_text(row.parent_key),
            row.position,
            payload_json(row.payload, self._object_ref(row), self.summary.issues),
            self._extracted_at,
            self.run_id,
        ]
        if self.with_content:
            content = row.content or b""
            values += [row.content_type, len(content), hashlib.sha256(content).hexdigest(), content]
        values.append(None if row.listing_filter is None else json.dumps(row.listing_filter))
        async with self._lock:
            await self._copy.write_row(values)
            self.summary.rows_written += 1

    def add_again(self, row: RawRow, issues: Sequence[Issue] = ()) -> None:
        """An object with the id of one already added, served again by the same listing; `issues` are what
        was found checking this copy.

        An identical copy is a plain repeat (offset pages shifted by an insert) and is dropped. A copy with
        different content means the object was edited between two pages of the listing (offset pages are
        not stable under edits: API_NOTES.md Z-2). The later copy is the newer state of the object, so it
        replaces the earlier row; both were seen, so it is recorded as an issue, with the fields that
        differ. Compared when the COPY is closed (`finish`), against the row as stored: rare, and no copy
        of every payload is held meanwhile.
        """
        self._again.append((row, list(issues)))

    async def _apply_again(self) -> None:
        assert self._conn is not None
        table = raw_table(self.entity)
        for row, issues in self._again:
            object_ref = self._object_ref(row)
            if row.key and row.key != str(row.id):
                object_ref += f" (id {row.id})"
            replaced: list[Issue] = []
            text = payload_json(row.payload, self._object_ref(row), replaced)
            cursor = await self._conn.execute(
                sql.SQL("select payload from {} where project_key = %s and id = %s").format(table),
                (self.project_key, row.id),
            )
            earlier = [payload for (payload,) in await cursor.fetchall()]
            later = json.loads(text)
            if later in earlier:
                continue
            differing = _differing_fields(earlier[0] if earlier else {}, later)
            await self._conn.execute(
                sql.SQL(
                    "update {} set payload = %s::jsonb, key = %s, parent_key = %s, position = %s, "
                    "listing_filter = %s::jsonb where project_key = %s and id = %s"
                ).format(table),
                (
                    text,
                    None if row.key is None else storable_text(row.key),
                    None if row.parent_key is None else storable_text(row.parent_key),
                    row.position,
                    None if row.listing_filter is None else json.dumps(row.listing_filter),
                    self.project_key,
                    row.id,
                ),
            )
            self.record(
                Issue(
                    object_ref,
                    f"{SERVED_TWICE} ({', '.join(differing)}): edited between two pages of the listing, "
                    "which offset pages do not survive (an object between them may have been skipped); "
                    "kept the later copy, its newer state. Extract again once nobody edits",
                    field=", ".join(differing),
                )
            )
            self.summary.issues.extend(replaced + issues)

    async def finish(self, *, stats: dict[str, float | int]) -> PartitionSummary:
        """Close the COPY, write the log and issues, and commit: the partition is replaced."""
        assert self._conn is not None
        await self._copy_cm.__aexit__(None, None, None)
        self._copy_cm = None
        await self._apply_again()
        now = datetime.now(UTC)
        self.summary.mode = self.mode
        if self.track_changes:
            await self._record_changes(now)
            self.summary.changes = self.changes
        complete = not self.summary.lost
        if self.merge is not None:
            # The table holds the kept rows beside the ones read again; so does the API.
            self.summary.rows_written += self._kept_rows
            if self.summary.api_reported is not None:
                self.summary.api_reported += self._kept_rows
        await self._conn.execute(
            "delete from zephyr_raw.extraction_issues where project_key = %s and entity = %s",
            (self.project_key, self.entity),
        )
        if self.summary.issues:
            async with self._conn.cursor().copy(
                "copy zephyr_raw.extraction_issues "
                "(project_key, entity, run_id, object_ref, field, reason, lost, recorded_at) from stdin"
            ) as copy:
                for issue in self.summary.issues:
                    await copy.write_row(
                        [
                            self.project_key,
                            self.entity,
                            self.run_id,
                            storable_text(issue.object_ref),
                            None if issue.field is None else storable_text(issue.field),
                            storable_text(issue.reason),
                            issue.lost,
                            now,
                        ]
                    )
        await self._conn.execute(
            """
            insert into zephyr_raw.extraction_log as log
                (project_key, entity, run_id, rows_written, api_reported, issues, lost,
                 requests, retries, rate_limited, seconds, finished_at, mode, read_since, changes_read_to)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (project_key, entity) do update set
                run_id = excluded.run_id, rows_written = excluded.rows_written,
                api_reported = excluded.api_reported, issues = excluded.issues, lost = excluded.lost,
                requests = excluded.requests, retries = excluded.retries,
                rate_limited = excluded.rate_limited, seconds = excluded.seconds,
                finished_at = excluded.finished_at, mode = excluded.mode,
                -- A watermark moves only past an extraction that lost nothing: what a lost object held is
                -- read again by the next run, from the previous watermark.
                read_since = case when excluded.lost = 0 then excluded.read_since else log.read_since end,
                changes_read_to = case when excluded.lost = 0 then excluded.changes_read_to
                                       else log.changes_read_to end
            """,
            (
                self.project_key,
                self.entity,
                self.run_id,
                self.summary.rows_written,
                self.summary.api_reported,
                len(self.summary.issues),
                len(self.summary.lost),
                int(stats.get("requests", 0)),
                int(stats.get("retries", 0)),
                int(stats.get("rate_limited", 0)),
                float(stats.get("seconds", 0.0)),
                now,
                self.mode,
                self.read_since if complete else None,
                self.changes_read_to if complete else None,
            ),
        )
        await self._conn.commit()
        return self.summary

    async def _record_changes(self, now: datetime) -> None:
        """Compare the new rows with ``previous_rows`` and record what is new, changed and (when the listing
        was complete) deleted, in ``zephyr_raw.extraction_changes``."""
        assert self._conn is not None
        table = raw_table(self.entity)
        cursor = await self._conn.execute(
            sql.SQL(
                """
                insert into zephyr_raw.extraction_changes
                    (project_key, entity, object_id, object_key, change, run_id, recorded_at)
                select distinct on (current.id) current.project_key, %s, current.id, current.key,
                       case when previous.id is null then 'new' else 'changed' end, %s, %s
                from {table} as current
                left join previous_rows as previous on previous.id = current.id
                where current.project_key = %s and current.id is not null
                  and (previous.id is null or previous.digest <> md5(current.payload::text)
                       or current.id = any(%s))
                returning change
                """
            ).format(table=table),
            (self.entity, self.run_id, now, self.project_key, sorted(self._reported_changed)),
        )
        found = [change for (change,) in await cursor.fetchall()]
        self.changes.new = found.count("new")
        self.changes.changed = found.count("changed")
        if self.summary.lost:
            # An incomplete listing cannot tell a deleted object from one it did not reach.
            self.changes.deletions_known = False
            return
        cursor = await self._conn.execute(
            sql.SQL(
                """
                insert into zephyr_raw.extraction_changes
                    (project_key, entity, object_id, object_key, change, run_id, recorded_at)
                select %s, %s, previous.id, previous.key, 'deleted', %s, %s
                from previous_rows as previous
                where previous.id is not null
                  and not exists (select 1 from {table} as current
                                  where current.project_key = %s and current.id = previous.id)
                returning coalesce(object_key, object_id::text)
                """
            ).format(table=table),
            (self.project_key, self.entity, self.run_id, now, self.project_key),
        )
        self.changes.deleted = sorted(ref for (ref,) in await cursor.fetchall())

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._conn is not None
        try:
            # A connection the server dropped has nothing left to abandon (the server rolled back), and the
            # error that reached here must stay the one raised: it tells the caller to wait for the
            # database and redo the extraction (defs/ingest/assets.py).
            if self._conn.broken:
                return
            if self._copy_cm is not None:
                # Abandon the COPY; the rollback below discards everything this writer did.
                with contextlib.suppress(psycopg.Error, RuntimeError):
                    await self._copy_cm.__aexit__(RuntimeError, RuntimeError("aborted"), None)
            await self._conn.rollback()
        finally:
            await self._conn.close()


@dataclass(frozen=True)
class Watermark:
    """Where a delta starts: the moment the last complete extraction began reading (for the listings'
    change filters), and the last change of the parent tables it had read (for the per-object children)."""

    read_since: datetime | None
    changes_read_to: int | None


class RawQueries(Protocol):
    """Read queries over the raw layer (what the raw checks need)."""

    def query(self, statement: Query, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple[Any, ...]]: ...


class RawRows:
    """The raw layer's repository: partition writers, the rows extractors read back, the extraction log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def writer(
        self,
        entity: str,
        project_key: str,
        run_id: str,
        *,
        merge: MergeScope | None = None,
        track_changes: bool = False,
    ) -> RawPartitionWriter:
        return RawPartitionWriter(
            self._db, entity, project_key, run_id, merge=merge, track_changes=track_changes
        )

    def watermark(self, entity: str, project_key: str) -> Watermark | None:
        """Where the last extraction of `entity` that lost nothing left off (None: never, or only failed)."""
        if not self.table_exists("extraction_log"):
            return None
        rows = self.query(
            "select read_since, changes_read_to from zephyr_raw.extraction_log "
            "where project_key = %s and entity = %s",
            (project_key, entity),
        )
        if not rows or (rows[0][0] is None and rows[0][1] is None):
            return None
        return Watermark(read_since=rows[0][0], changes_read_to=rows[0][1])

    def last_change_seq(self) -> int:
        """The newest change recorded so far (0: none); a delta of a child reads the changes up to it."""
        if not self.table_exists("extraction_changes"):
            return 0
        rows = self.query("select coalesce(max(seq), 0) from zephyr_raw.extraction_changes", ())
        return int(rows[0][0])

    def changes_between(
        self, project_key: str, entities: Sequence[str], after: int, upto: int
    ) -> list[tuple[str, int | None, str | None, str]]:
        """``(entity, id, key, change)`` of the changes to `entities` of the project recorded after `after`
        up to `upto`, oldest first."""
        if not self.table_exists("extraction_changes"):
            return []
        return self.query(
            "select entity, object_id, object_key, change from zephyr_raw.extraction_changes "
            "where project_key = %s and entity = any(%s) and seq > %s and seq <= %s order by seq",
            (project_key, list(entities), after, upto),
        )

    def deletions(self, projects: list[str]) -> list[tuple[str, str, str, str]]:
        """``(project, entity, key or id, run id)`` of every object an extraction found deleted in Zephyr
        and no later one found again: what qTest still holds from it (a delta never deletes there)."""
        if not self.table_exists("extraction_changes"):
            return []
        return self.query(
            """
            select project_key, entity, ref, run_id from (
                select distinct on (project_key, entity, object_id)
                       project_key, entity, coalesce(object_key, object_id::text) as ref, run_id, change
                from zephyr_raw.extraction_changes
                where project_key = any(%s) and object_id is not null
                order by project_key, entity, object_id, seq desc
            ) as latest
            where change = 'deleted'
            order by 1, 2, 3
            """,
            (projects,),
        )

    def issues_of(self, entity: str, projects: list[str]) -> list[tuple[str, str, str]]:
        """(project, object ref, reason) of each extraction issue of `entity` in `projects`."""
        if not self.table_exists("extraction_issues"):
            return []
        return [
            (str(project), str(ref), str(reason))
            for project, ref, reason in self.query(
                "select project_key, object_ref, reason from zephyr_raw.extraction_issues "
                "where entity = %s and project_key = any(%s) order by project_key, object_ref",
                (entity, projects),
            )
        ]

    def query(self, statement: Query, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run one read query (used by checks)."""
        with self._db.connection() as conn:
            return conn.execute(statement, params).fetchall()

    def project_rows(self, entity: str, project_key: str, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        """One project's rows of ``zephyr_raw.<entity>`` (the `columns`), by id then key (extractors that
        need an upstream table)."""
        statement = sql.SQL("select {} from {} where project_key = %s order by id nulls last, key").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), raw_table(entity)
        )
        return self.query(statement, (project_key,))

    def ensure_table(self, entity: str) -> None:
        """Create ``zephyr_raw.<entity>`` empty if it does not exist (what dbt reads must be there even when
        nothing was written to it: the Jira issues of a run without Jira)."""
        with self._db.connection() as conn:
            conn.execute("create schema if not exists zephyr_raw")
            conn.execute(entity_table_ddl(entity))

    def table_exists(self, entity: str) -> bool:
        with self._db.connection() as conn:
            row = conn.execute("select to_regclass(%s)", (raw_table(entity).as_string(conn),)).fetchone()
            return bool(row and row[0])

    def extraction_counts(
        self, projects: list[str]
    ) -> dict[tuple[str, str], tuple[int, int | None, int, int]]:
        """(project, entity) → (rows written, API-reported count, issues, lost)."""
        if not self.table_exists("extraction_log"):
            return {}
        rows = self.query(
            "select project_key, entity, rows_written, api_reported, issues, lost "
            "from zephyr_raw.extraction_log where project_key = any(%s)",
            (projects,),
        )
        return {
            (project, entity): (written, reported, issues, lost)
            for project, entity, written, reported, issues, lost in rows
        }
