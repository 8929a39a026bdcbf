"""``migration.id_map``: which qTest object each Zephyr object became, and whether that is certain.

qTest has no idempotency keys, so a POST that times out may or may not have created its object. Every
create is therefore bracketed (DESIGN.md §6): ``pending`` with the payload hash is committed before the
POST, ``done`` with the qTest id right after it, each in its own short transaction (autocommit). A later
run skips ``done`` rows whose hash is unchanged, updates those whose hash changed, and looks ``pending``
rows up in qTest before creating anything.

The map belongs to a target: every row names the qTest site (``target_site``, its normalised base URL) as
well as the project, and every read and write is filtered by the site, so a rehearsal against one site
never lends its ids to the live run against another (DESIGN.md §6).

Rows written before the map named its site (an earlier version's table, upgraded in place by
``ID_MAP_UPGRADE``) carry ``target_site = ''``: no site is assumed for them. The first run after the
upgrade that publishes their project adopts them for its site only if that site still holds their qTest
project (``loader.adopt_rows_without_site``); otherwise they stay as they are, unused, and the run says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg

from zephyr_qtest.lib.postgres import Outage, connection_lost, retrying
from zephyr_qtest.lib.qtest import one_writer

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import AsyncConnections, Connections

MIGRATION_SCHEMA = "migration"
STATES = ("pending", "done", "failed")
# The site of rows written before the id map named its site (see the module's docstring).
NO_SITE = ""

# The schema named literally: no identifier is interpolated into the statement text.
ID_MAP_DDL = """
create schema if not exists migration;
create table if not exists migration.id_map (
    target_site   text not null,
    project_key   text not null,
    object_type   text not null,
    source_key    text not null,
    qtest_id      bigint,
    payload_hash  text,
    state         text not null check (state in ('pending', 'done', 'failed')),
    updated_at    timestamptz not null default now(),
    qtest_project_id bigint,
    detail        jsonb not null default '{}'::jsonb,
    error         text,
    primary key (target_site, project_key, object_type, source_key)
);
create index if not exists id_map_qtest_id on migration.id_map (object_type, qtest_id);
"""

# A table of an earlier version (no target_site) upgraded in place: the column added (its old rows get
# NO_SITE), then the key changed to include it. Checked first, so an upgraded table is not altered again.
ID_MAP_UPGRADE = """
do $$
begin
    if not exists (
        select 1 from information_schema.columns
        where table_schema = 'migration' and table_name = 'id_map' and column_name = 'target_site'
    ) then
        alter table migration.id_map add column target_site text not null default '';
        alter table migration.id_map alter column target_site drop default;
    end if;
    if not exists (
        select 1 from pg_constraint as c
        join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
        where c.conrelid = 'migration.id_map'::regclass and c.contype = 'p' and a.attname = 'target_site'
    ) then
        alter table migration.id_map drop constraint if exists id_map_pkey;
        alter table migration.id_map
            add constraint id_map_pkey primary key (target_site, project_key, object_type, source_key);
    end if;
end
$$;
"""

# Several stages and runs open id maps at once: the DDL and the upgrade run one at a time (a transaction
# lock on this key), so two first runs do not race to create or alter the same table.
DDL_LOCK_KEY = one_writer.lock_key("zephyr_qtest migration DDL")

T = TypeVar("T")


def site_of(base_url: str) -> str:
    """The qTest site a base URL names, as the id map records it: scheme and host lower-case, no trailing
    slash, no ``/api/v3`` (``https://Acme.qtestnet.com/api/v3/`` -> ``https://acme.qtestnet.com``)."""
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    if path.lower().endswith("/api/v3"):
        path = path[: -len("/api/v3")].rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


async def ensure_schema(conn: psycopg.AsyncConnection) -> None:
    """The id map's table (and the writer record of ``one_writer``) created or upgraded, one process at a
    time."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))
        await conn.execute(ID_MAP_DDL)
        await conn.execute(ID_MAP_UPGRADE)
        await conn.execute(one_writer.WRITER_DDL)


@dataclass(frozen=True)
class Entry:
    qtest_id: int | None
    payload_hash: str | None
    state: str
    detail: Mapping[str, Any] = field(default_factory=dict)


class IdMap:
    """The id map of one Zephyr project on one qTest site, on one async connection (autocommit: one
    transaction a write).

    Given `reconnect` (``open`` gives it), a short outage of the database costs no run: a statement or
    transaction whose connection went away is redone whole on a new connection, for as long as `outage`
    allows (``postgres.retrying``), and the new connection takes the project's hold again first. Every
    write is an upsert of its row's whole state, so a redo after a lost commit answer changes nothing: a
    ``done`` redone is the same ``done``, and a ``pending`` is only ever written before its create call
    (under this map's lock, with no other writer), so its redo finds no ``done`` of that call to overwrite.
    """

    def __init__(
        self,
        conn: psycopg.AsyncConnection,
        project_key: str,
        target_site: str,
        qtest_project_id: int | None = None,
        *,
        reconnect: Callable[[], Awaitable[psycopg.AsyncConnection]] | None = None,
        outage: Outage | None = None,
    ):
        if not target_site:
            raise ValueError(f"the id map of {project_key} needs its qTest site (QTEST_BASE_URL)")
        self._conn = conn
        self.project_key = project_key
        self.target_site = target_site
        self.qtest_project_id = qtest_project_id
        # Many publishing tasks share the connection: one statement or transaction at a time.
        self._lock = asyncio.Lock()
        self._writing = False
        self._writer: one_writer.Writer | None = None
        # The database session that holds the project for this run (a lost one may linger on the server).
        self._holding_session = 0
        self._reconnect = reconnect
        self._outage = outage or Outage("the staging database", 0.0)

    @classmethod
    async def open(
        cls, db: AsyncConnections, project_key: str, target_site: str, outage: Outage | None = None
    ) -> IdMap:
        """The id map of `project_key` on the site `target_site` (a base URL, normalised by ``site_of``)
        on a connection of its own (autocommit), its table created, or upgraded, when needed. With an
        `outage` window, an outage of the database is waited out (on opening too)."""

        async def connect() -> psycopg.AsyncConnection:
            conn = await db.connect_async(autocommit=True)
            try:
                await ensure_schema(conn)
            except BaseException:
                await conn.close()
                raise
            return conn

        if outage is None:
            return cls(await connect(), project_key, site_of(target_site))
        # Each attempt opens a connection of its own: nothing to reopen between attempts.
        conn = await retrying(
            connect, _nothing, outage, f"opening the id map of {project_key}", connection_lost
        )
        return cls(conn, project_key, site_of(target_site), reconnect=connect, outage=outage)

    async def close(self) -> None:
        """Closes the connection, which also ends this run's hold on the project (``become_sole_writer``)."""
        try:
            if self._writing:
                # A connection that went away has ended the hold already.
                with contextlib.suppress(psycopg.OperationalError, psycopg.InterfaceError):
                    await one_writer.release(self._conn, self.target_site, self.project_key)
        finally:
            await self._conn.close()

    async def become_sole_writer(self, writer: one_writer.Writer) -> None:
        """Holds the project on this site for this run until ``close``: waits for, or stops at, another run
        that publishes it (``writer.when_busy``). Call it before the first read of a publishing stage, so
        the stage sees everything the other run recorded."""
        self._outage = dataclasses.replace(self._outage, log=writer.log)
        async with self._lock:

            async def acquire() -> None:
                await one_writer.acquire(self._conn, self.target_site, self.project_key, writer)

            await self._retrying(f"taking the hold on {self.project_key}", acquire, retake=False)
            self._writing = True
            self._writer = writer
            self._holding_session = self._conn.info.backend_pid

    async def _retrying(self, what: str, work: Callable[[], Awaitable[T]], *, retake: bool = True) -> T:
        """`work` (one statement or transaction on ``self._conn``; the caller holds ``self._lock``), redone
        on a new connection after an outage when this map may reconnect."""
        if self._reconnect is None:
            return await work()

        async def reopen() -> None:
            assert self._reconnect is not None
            old, self._conn = self._conn, await self._reconnect()
            with contextlib.suppress(psycopg.Error):
                await old.close()
            if retake and self._writing and self._writer is not None:
                # The hold ended with the old session: take it again before anything is redone, or stop
                # if another run took it meanwhile (it may be writing the same objects).
                await one_writer.retake(
                    self._conn, self.target_site, self.project_key, self._writer, self._holding_session
                )
                self._holding_session = self._conn.info.backend_pid

        return await retrying(
            work, reopen, self._outage, what, lambda error: connection_lost(error, self._conn)
        )

    async def rows_without_site(self) -> tuple[int, Entry | None]:
        """How many rows of this project were written before the map named its site, and their project
        row (which names their qTest project)."""

        async def read() -> tuple[Any, ...]:
            cursor = await self._conn.execute(
                # One project row at most (its source key is the project key).
                "select count(*), max(qtest_id) filter (where object_type = 'project'), "
                "max(detail->>'name') filter (where object_type = 'project') "
                "from migration.id_map where target_site = %s and project_key = %s",
                (NO_SITE, self.project_key),
            )
            return await cursor.fetchone() or (0, None, None)

        async with self._lock:
            count, project_id, name = await self._retrying("reading the id map", read)
        if not count or project_id is None:
            return count or 0, None
        return count, Entry(int(project_id), None, "done", {"name": name} if name else {})

    async def adopt_rows_without_site(self) -> int:
        """This project's rows without a site become this site's (not those this site already has). Redone
        after a lost commit answer, it adopts nothing more and says 0."""

        async def adopt() -> int:
            cursor = await self._conn.execute(
                "update migration.id_map as m set target_site = %s "
                "where target_site = %s and project_key = %s and not exists (select 1 from migration.id_map "
                "as mine where mine.target_site = %s and mine.project_key = m.project_key "
                "and mine.object_type = m.object_type and mine.source_key = m.source_key)",
                (self.target_site, NO_SITE, self.project_key, self.target_site),
            )
            return cursor.rowcount

        async with self._lock:
            return await self._retrying("adopting rows without a site", adopt)

    async def load(self, object_type: str) -> dict[str, Entry]:
        async with self._lock:
            return await self._retrying(
                f"reading the id map's {object_type} rows", lambda: self._load(object_type)
            )

    async def _load(self, object_type: str) -> dict[str, Entry]:
        cursor = await self._conn.execute(
            "select source_key, qtest_id, payload_hash, state, detail from migration.id_map "
            "where target_site = %s and project_key = %s and object_type = %s",
            (self.target_site, self.project_key, object_type),
        )
        return {
            key: Entry(qtest_id, payload_hash, state, detail or {})
            for key, qtest_id, payload_hash, state, detail in await cursor.fetchall()
        }

    async def pending(self, object_type: str, source_key: str, payload_hash: str) -> None:
        """Committed before the create call: a crash after it leaves a row that says "look it up first"."""
        await self._upsert(object_type, source_key, None, payload_hash, "pending", None, None, keep_id=True)

    async def done(
        self,
        object_type: str,
        source_key: str,
        qtest_id: int | None,
        payload_hash: str | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        await self._upsert(object_type, source_key, qtest_id, payload_hash, "done", detail, None)

    async def done_many(self, object_type: str, rows: Iterable[tuple[str, int, str | None]]) -> None:
        """Several ``done`` rows in one transaction (a test case's steps, created by the case's call)."""
        await self._upsert_many(object_type, "done", list(rows))

    async def pending_many(self, object_type: str, rows: Iterable[tuple[str, str]]) -> None:
        """``pending`` for several objects in one transaction, before the one call that creates them all."""
        await self._upsert_many(
            object_type, "pending", [(key, None, payload_hash) for key, payload_hash in rows]
        )

    async def _upsert_many(
        self, object_type: str, state: str, rows: list[tuple[str, int | None, str | None]]
    ) -> None:
        if not rows:
            return
        async with self._lock:
            await self._retrying(
                f"recording {len(rows)} {object_type} rows {state}",
                lambda: self._execute_upsert_many(object_type, state, rows),
            )

    async def _execute_upsert_many(
        self, object_type: str, state: str, rows: list[tuple[str, int | None, str | None]]
    ) -> None:
        async with self._conn.transaction(), self._conn.cursor() as cursor:
            # A pending row keeps the id it may have (as pending() does).
            await cursor.executemany(
                "insert into migration.id_map as m (target_site, project_key, object_type, source_key, "
                "qtest_id, payload_hash, state, qtest_project_id) values (%s, %s, %s, %s, %s, %s, %s, %s) "
                "on conflict (target_site, project_key, object_type, source_key) do update set "
                "qtest_id = coalesce(excluded.qtest_id, m.qtest_id), payload_hash = excluded.payload_hash, "
                "state = excluded.state, qtest_project_id = excluded.qtest_project_id, error = null, "
                "updated_at = now()",
                [
                    (
                        self.target_site,
                        self.project_key,
                        object_type,
                        key,
                        qtest_id,
                        payload_hash,
                        state,
                        self.qtest_project_id,
                    )
                    for key, qtest_id, payload_hash in rows
                ],
            )

    async def note_pending(
        self, object_type: str, source_keys: Iterable[str], detail: Mapping[str, Any]
    ) -> None:
        """Adds `detail` to pending rows (the queue job that will create them, so a later run waits for it)."""
        keys = list(source_keys)

        async def note() -> None:
            # A merge: redone, it leaves the same detail.
            await self._conn.execute(
                "update migration.id_map set detail = detail || %s::jsonb, updated_at = now() "
                "where target_site = %s and project_key = %s and object_type = %s and source_key = any(%s) "
                "and state = 'pending'",
                (json.dumps(dict(detail)), self.target_site, self.project_key, object_type, keys),
            )

        async with self._lock:
            await self._retrying(f"noting pending {object_type} rows", note)

    async def failed(self, object_type: str, source_key: str, payload_hash: str | None, error: str) -> None:
        """Refused for certain (nothing was created): the next run creates it again."""
        await self._upsert(object_type, source_key, None, payload_hash, "failed", None, error[:2000])

    async def _upsert(
        self,
        object_type: str,
        source_key: str,
        qtest_id: int | None,
        payload_hash: str | None,
        state: str,
        detail: Mapping[str, Any] | None,
        error: str | None,
        *,
        keep_id: bool = False,
    ) -> None:
        # A row that is done keeps its qTest id while an update is pending (keep_id).
        id_expression = "coalesce(excluded.qtest_id, m.qtest_id)" if keep_id else "excluded.qtest_id"
        async with self._lock:
            await self._retrying(
                f"recording {object_type} {source_key} {state}",
                lambda: self._execute_upsert(
                    id_expression, object_type, source_key, qtest_id, payload_hash, state, detail, error
                ),
            )

    async def _execute_upsert(
        self,
        id_expression: str,
        object_type: str,
        source_key: str,
        qtest_id: int | None,
        payload_hash: str | None,
        state: str,
        detail: Mapping[str, Any] | None,
        error: str | None,
    ) -> None:
        await self._conn.execute(
            "insert into migration.id_map as m (target_site, project_key, object_type, source_key, qtest_id, "
            "payload_hash, state, qtest_project_id, detail, error) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "on conflict (target_site, project_key, object_type, source_key) do update set "
            f"qtest_id = {id_expression}, payload_hash = excluded.payload_hash, state = excluded.state, "
            "qtest_project_id = excluded.qtest_project_id, "
            "detail = case when excluded.detail = '{}'::jsonb then m.detail else excluded.detail end, "
            "error = excluded.error, updated_at = now()",
            (
                self.target_site, self.project_key, object_type, source_key, qtest_id, payload_hash, state,
                self.qtest_project_id, json.dumps(dict(detail or {})), error,
            ),
        )  # fmt: skip


def project_targets(
    db: Connections, target_site: str, projects: Iterable[str]
) -> dict[str, tuple[int, str | None]]:
    """Zephyr project key -> the qTest project (id, name) it goes to on `target_site`, for the projects the
    id map knows there (none before a first publish)."""
    with db.connection() as conn:
        exists = conn.execute("select to_regclass('migration.id_map')").fetchone()
        if not exists or not exists[0]:
            return {}
        has_site = conn.execute(
            "select 1 from information_schema.columns where table_schema = 'migration' "
            "and table_name = 'id_map' and column_name = 'target_site'"
        ).fetchone()
        if not has_site:
            return {}
        rows = conn.execute(
            "select project_key, qtest_id, detail->>'name' from migration.id_map where target_site = %s "
            "and project_key = any(%s) and object_type = 'project' and state = 'done' and qtest_id is not null",
            (site_of(target_site), list(projects)),
        ).fetchall()
    return {key: (int(qtest_id), name) for key, qtest_id, name in rows}


async def _nothing() -> None:
    return None
