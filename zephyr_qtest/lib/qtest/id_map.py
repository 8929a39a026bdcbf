"""``migration.id_map``: which qTest object each Zephyr object became, and whether that is certain.

qTest has no idempotency keys, so a POST that times out may or may not have created its object. Every
create is therefore bracketed (DESIGN.md §6): ``pending`` with the payload hash is committed before the
POST, ``done`` with the qTest id right after it, each in its own short transaction (autocommit). A later
run skips ``done`` rows whose hash is unchanged, updates those whose hash changed, and looks ``pending``
rows up in qTest before creating anything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import AsyncConnections

MIGRATION_SCHEMA = "migration"
STATES = ("pending", "done", "failed")

# The schema named literally: no identifier is interpolated into the statement text.
ID_MAP_DDL = """
create schema if not exists migration;
create table if not exists migration.id_map (
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
    primary key (project_key, object_type, source_key)
);
create index if not exists id_map_qtest_id on migration.id_map (object_type, qtest_id);
"""


@dataclass(frozen=True)
class Entry:
    qtest_id: int | None
    payload_hash: str | None
    state: str
    detail: Mapping[str, Any] = field(default_factory=dict)


class IdMap:
    """The id map of one Zephyr project, on one async connection (autocommit: one transaction a write)."""

    def __init__(self, conn: psycopg.AsyncConnection, project_key: str, qtest_project_id: int | None = None):
        self._conn = conn
        self.project_key = project_key
        self.qtest_project_id = qtest_project_id
        # Many publishing tasks share the connection: one statement or transaction at a time.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, db: AsyncConnections, project_key: str) -> IdMap:
        """The id map on a connection of its own (autocommit), its table created when missing."""
        conn = await db.connect_async(autocommit=True)
        await conn.execute(ID_MAP_DDL)
        return cls(conn, project_key)

    async def close(self) -> None:
        await self._conn.close()

    async def load(self, object_type: str) -> dict[str, Entry]:
        async with self._lock:
            return await self._load(object_type)

    async def _load(self, object_type: str) -> dict[str, Entry]:
        cursor = await self._conn.execute(
            "select source_key, qtest_id, payload_hash, state, detail from migration.id_map "
            "where project_key = %s and object_type = %s",
            (self.project_key, object_type),
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
        qtest_id: int,
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
        async with self._lock, self._conn.transaction(), self._conn.cursor() as cursor:
            # A pending row keeps the id it may have (as pending() does).
            await cursor.executemany(
                "insert into migration.id_map as m "
                "(project_key, object_type, source_key, qtest_id, payload_hash, state, qtest_project_id) "
                "values (%s, %s, %s, %s, %s, %s, %s) "
                "on conflict (project_key, object_type, source_key) do update set "
                "qtest_id = coalesce(excluded.qtest_id, m.qtest_id), payload_hash = excluded.payload_hash, "
                "state = excluded.state, qtest_project_id = excluded.qtest_project_id, error = null, "
                "updated_at = now()",
                [
                    (self.project_key, object_type, key, qtest_id, payload_hash, state, self.qtest_project_id)
                    for key, qtest_id, payload_hash in rows
                ],
            )

    async def note_pending(
        self, object_type: str, source_keys: Iterable[str], detail: Mapping[str, Any]
    ) -> None:
        """Adds `detail` to pending rows (the queue job that will create them, so a later run waits for it)."""
        async with self._lock:
            await self._conn.execute(
                "update migration.id_map set detail = detail || %s::jsonb, updated_at = now() "
                "where project_key = %s and object_type = %s and source_key = any(%s) and state = 'pending'",
                (json.dumps(dict(detail)), self.project_key, object_type, list(source_keys)),
            )

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
            await self._execute_upsert(
                id_expression, object_type, source_key, qtest_id, payload_hash, state, detail, error
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
            "insert into migration.id_map as m "
            "(project_key, object_type, source_key, qtest_id, payload_hash, state, qtest_project_id, detail, error) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "on conflict (project_key, object_type, source_key) do update set "
            f"qtest_id = {id_expression}, payload_hash = excluded.payload_hash, state = excluded.state, "
            "qtest_project_id = excluded.qtest_project_id, "
            "detail = case when excluded.detail = '{}'::jsonb then m.detail else excluded.detail end, "
            "error = excluded.error, updated_at = now()",
            (
                self.project_key, object_type, source_key, qtest_id, payload_hash, state,
                self.qtest_project_id, json.dumps(dict(detail or {})), error,
            ),
        )  # fmt: skip
