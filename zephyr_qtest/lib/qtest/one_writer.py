"""One project, one writer: while a run publishes a Zephyr project to a qTest site, no other run publishes
the same project to the same site. qTest has no idempotency keys, so two writers at once would each create
every object (two runs started together once left 274 test cases for 150).

The hold is a PostgreSQL session advisory lock keyed on (site, project), taken on the connection a
publishing stage keeps for its whole stage (the id map's): PostgreSQL releases it when that connection
ends, however the run ends (a killed process included). Who holds it is recorded in ``migration.writer``
(run id, stage, since, database session) and in the session's ``application_name``, so a run that finds it
held names that run. It then waits for it (``WhenBusy.wait``, the default: it goes on where the other run
left off, reading what that run recorded in the id map, so it creates nothing twice) or stops
(``WhenBusy.stop``), as ``ZEPHYR_QTEST_WHEN_BUSY`` says.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg

from zephyr_qtest.lib.postgres import connect

# The schema named literally: no identifier is interpolated into the statement text.
WRITER_DDL = """
create schema if not exists migration;
create table if not exists migration.writer (
    target_site   text not null,
    project_key   text not null,
    run_id        text not null,
    stage         text not null,
    backend_pid   integer not null,
    since         timestamptz not null default now(),
    primary key (target_site, project_key)
);
"""

# What a hold looks like to other sessions (PostgreSQL keeps 63 bytes of an application_name).
APPLICATION_NAME_BYTES = 63
SETTING = "ZEPHYR_QTEST_WHEN_BUSY"


class WhenBusy(StrEnum):
    """What a run does when another run is publishing the same project to the same site."""

    wait = "wait"
    stop = "stop"


def _ignore(message: str) -> None:
    return None


@dataclass(frozen=True)
class Writer:
    """The run that wants to publish: its id (the Dagster run id), the stage, what it does when another run
    holds the project, and where it says what it waits for."""

    run_id: str = "a run without an id"
    stage: str = ""
    when_busy: WhenBusy = WhenBusy.wait
    log: Callable[[str], None] = field(default=_ignore, compare=False)


class ProjectBusy(RuntimeError):
    """Another run is publishing the project to the site, and this one was told to stop rather than wait."""


def lock_key(text: str) -> int:
    """A stable signed 64-bit advisory-lock key for `text` (the same in every process and version)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def project_lock_key(target_site: str, project_key: str) -> int:
    return lock_key(f"zephyr_qtest publish\n{target_site}\n{project_key}")


async def acquire(conn: psycopg.AsyncConnection, target_site: str, project_key: str, writer: Writer) -> None:
    """Holds (target_site, project_key) on `conn` (autocommit) until ``release`` or the connection's end.
    Held by another run: waits for it, saying so through ``writer.log``, or raises ``ProjectBusy`` naming
    that run (``writer.when_busy``)."""
    key = project_lock_key(target_site, project_key)
    name = f"zephyr-qtest {writer.run_id}".encode()[:APPLICATION_NAME_BYTES].decode(errors="ignore")
    await conn.execute("select set_config('application_name', %s, false)", (name,))
    while not await _scalar(conn, "select pg_try_advisory_lock(%s)", (key,)):
        holder = await _holder(conn, key, target_site, project_key)
        if holder is None:
            continue  # released between the two statements: try again
        if writer.when_busy == WhenBusy.stop:
            raise ProjectBusy(
                f"{project_key} is being published to {target_site} by {holder}: this run stops rather than "
                f"publish it a second time. Run it again when that run has ended, or set {SETTING}=wait to "
                "have a run wait for the other."
            )
        writer.log(f"waiting for {holder} publishing {project_key} to {target_site}")
        # Blocks until that run lets go (a cancelled wait is cancelled in the server by psycopg).
        await conn.execute("select pg_advisory_lock(%s)", (key,))
        writer.log(
            f"{holder} let go of {project_key} on {target_site}: {writer.stage or 'this stage'} goes on from "
            "what it recorded in the id map"
        )
        break
    await _record(conn, target_site, project_key, writer)


async def _record(conn: psycopg.AsyncConnection, target_site: str, project_key: str, writer: Writer) -> None:
    await conn.execute(
        "insert into migration.writer (target_site, project_key, run_id, stage, backend_pid) "
        "values (%s, %s, %s, %s, pg_backend_pid()) on conflict (target_site, project_key) do update set "
        "run_id = excluded.run_id, stage = excluded.stage, backend_pid = excluded.backend_pid, since = now()",
        (target_site, project_key, writer.run_id, writer.stage),
    )


def turn_lock_key(client_key: str) -> int:
    return lock_key(f"zephyr_qtest qtest turn\n{client_key}")


def take_turn(
    database_url: str, client_key: str, run_id: str, log: Callable[[str], None] = _ignore
) -> psycopg.Connection:
    """Holds the turn to talk to qTest with one token (`client_key`: ``client.rate_limit_key``, no secret)
    on a connection of its own, which it returns: the turn ends when that connection closes (the run's end,
    or its process's). Held by another run: says so through `log`, naming it, and waits for it.

    For runs that Dagster keeps apart only at the queue (pools enforced per run, docs/dagster-tenant.yaml):
    the queue may then start the next publishing run while one publishes, and that run loads its
    definitions and waits here instead of in the queue, so it goes on the moment the other ends. One run
    talks to qTest at a time: its limiter finds the whole rate (two would spend it on each other's 429s).
    The lock lives in the staging database: runs of one tenant share it; runs on another database do not
    wait for these.
    A database outage ends the turn early; the project hold (``acquire``) still keeps each project to
    one writer, so at worst two runs share the rate for a while."""
    key = turn_lock_key(client_key)
    conn = connect(database_url, autocommit=True)
    try:
        name = f"zephyr-qtest {run_id}".encode()[:APPLICATION_NAME_BYTES].decode(errors="ignore")
        conn.execute("select set_config('application_name', %s, false)", (name,))
        if not _sync_scalar(conn, "select pg_try_advisory_lock(%s)", (key,)):
            holder = _sync_scalar(
                conn,
                "select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid "
                "where l.locktype = 'advisory' and l.granted and l.classid = %s::oid "
                "and l.objid = %s::oid and l.objsubid = 1 "
                "and l.database = (select oid from pg_database where datname = current_database())",
                _halves(key),
            )
            log(f"waiting for the run that talks to qTest ({holder or 'it has just let go'}) to end")
            conn.execute("select pg_advisory_lock(%s)", (key,))
            log("qTest's turn taken: this run publishes")
    except BaseException:
        conn.close()
        raise
    return conn


def _sync_scalar(conn: psycopg.Connection, query: str, params: tuple[object, ...]) -> object:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


class HoldLost(RuntimeError):
    """This run's hold on a project ended with its database session (an outage), and another run took the
    project before this one could take it again."""


async def retake(
    conn: psycopg.AsyncConnection, target_site: str, project_key: str, writer: Writer, lost_session: int
) -> None:
    """Holds (target_site, project_key) again on `conn` after the session that held it for this run
    (`lost_session`) went away with the database connection; raises ``HoldLost`` naming the run that holds
    it now, if one does: that run may be creating the very objects this one was, so this one must not go
    on. The lost session itself may still hold it until the server notices it is gone: it is ended."""
    key = project_lock_key(target_site, project_key)
    name = f"zephyr-qtest {writer.run_id}".encode()[:APPLICATION_NAME_BYTES].decode(errors="ignore")
    await conn.execute("select set_config('application_name', %s, false)", (name,))
    ended = False
    while not await _scalar(conn, "select pg_try_advisory_lock(%s)", (key,)):
        holding = await _holding_pid(conn, key)
        if holding is None:
            continue  # released between the two statements: try again
        if holding == lost_session:
            # Our own session, orphaned by the outage: ended, its lock goes with it. Not waited for with
            # pg_advisory_lock: another run could get the lock first, and this one must not go on after it.
            if not ended:
                ended = bool(await _scalar(conn, "select pg_terminate_backend(%s)", (holding,)))
            if ended:
                await asyncio.sleep(0.05)
                continue
        holder = await _holder(conn, key, target_site, project_key)
        raise _hold_lost(target_site, project_key, writer, f"{holder or 'another run'} has taken it since")
    # A run that took the project and let it go again while this one was away overwrote, then deleted, the
    # record of this run's hold: it may have recorded objects this run has not read, so this run stops too.
    record = await conn.execute(
        "select run_id, backend_pid from migration.writer where target_site = %s and project_key = %s",
        (target_site, project_key),
    )
    if await record.fetchone() != (writer.run_id, lost_session):
        await conn.execute("select pg_advisory_unlock(%s)", (key,))
        raise _hold_lost(target_site, project_key, writer, "another run held it meanwhile")
    await _record(conn, target_site, project_key, writer)
    writer.log(f"took the hold on {project_key} at {target_site} again after the database came back")


def _hold_lost(target_site: str, project_key: str, writer: Writer, since: str) -> HoldLost:
    return HoldLost(
        f"{project_key} on {target_site}: this run ({writer.run_id}) lost its hold on the project while the "
        f"staging database was unreachable, and {since}: {writer.stage or 'this stage'} stops rather than "
        "publish beside it. Run it again when no other run publishes the project: it goes on from what was "
        "recorded in the id map."
    )


async def _holding_pid(conn: psycopg.AsyncConnection, key: int) -> int | None:
    pid = await _scalar(
        conn,
        "select pid from pg_locks where locktype = 'advisory' and granted and classid = %s::oid "
        "and objid = %s::oid and objsubid = 1 "
        "and database = (select oid from pg_database where datname = current_database())",
        _halves(key),
    )
    return int(pid) if pid is not None else None  # type: ignore[call-overload]


async def release(conn: psycopg.AsyncConnection, target_site: str, project_key: str) -> None:
    """Lets go of (target_site, project_key) if `conn` holds it (closing the connection would too)."""
    if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return  # closing the connection ends the hold
    key = project_lock_key(target_site, project_key)
    held = await _scalar(
        conn,
        "select exists (select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() "
        "and granted and classid = %s::oid and objid = %s::oid and objsubid = 1)",
        _halves(key),
    )
    if held:
        await conn.execute(
            "delete from migration.writer where target_site = %s and project_key = %s "
            "and backend_pid = pg_backend_pid()",
            (target_site, project_key),
        )
        await conn.execute("select pg_advisory_unlock(%s)", (key,))


async def _holder(conn: psycopg.AsyncConnection, key: int, target_site: str, project_key: str) -> str | None:
    """The run holding `key`, as a message names it; None when nobody holds it any more."""
    cursor = await conn.execute(
        "select l.pid, a.application_name, w.run_id, w.stage, w.since from pg_locks as l "
        "left join pg_stat_activity as a on a.pid = l.pid "
        "left join migration.writer as w on w.target_site = %s and w.project_key = %s and w.backend_pid = l.pid "
        "where l.locktype = 'advisory' and l.granted and l.classid = %s::oid and l.objid = %s::oid "
        "and l.objsubid = 1 and l.database = (select oid from pg_database where datname = current_database())",
        (target_site, project_key, *_halves(key)),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    pid, application_name, run_id, stage, since = row
    if run_id is None:
        # Locked, not yet recorded: the session's name carries the run id.
        return f"{application_name or 'another process'} (database session {pid})"
    return f"run {run_id} (stage {stage}, since {since:%Y-%m-%d %H:%M:%S %Z})"


def _halves(key: int) -> tuple[int, int]:
    # pg_locks shows a bigint key as its high half in classid and its low half in objid.
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


async def _scalar(conn: psycopg.AsyncConnection, query: str, params: tuple[object, ...]) -> object:
    cursor = await conn.execute(query, params)
    row = await cursor.fetchone()
    return row[0] if row else None
