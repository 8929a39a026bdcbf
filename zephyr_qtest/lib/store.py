"""The staging database as one store: one connection pool per process, handing out small repositories.

Domain code depends on the repositories' small interfaces (``typing.Protocol``s next to the code that
uses them), never on a URL, so a unit test can pass a fake:

- raw rows (``raw_store.RawRows``): the ``zephyr_raw`` tables, their partition writer, the raw checks'
  reads and the extraction report's;
- mart reads (``mapping.MartRows``): ``qtest_mapping`` marts, ``unmapped``, attachment bytes, the
  transform report's counts;
- the id map (``qtest.id_map.IdMap``) of one project on one qTest site, one async connection per publishing
  stage (which also holds the project for its run, ``qtest.one_writer``) or reconciliation;
- reports (``qtest.reconcile.ReconciliationRows``): the saved reconciliation (the loader's own check);
- proofs (``proof.saved.ProofRows``): each project's verdict and ledger, per target site and run.

Synchronous work borrows connections from one ``psycopg_pool.ConnectionPool``, opened on first use and
closed by ``close()`` (the Dagster resource's teardown). Async work (the id map, the raw partition writer)
gets a connection of its own from ``connect_async``: each holds it for a whole stage or partition (one
transaction, or one lock-guarded connection shared by many tasks), and an async pool would be bound to one
event loop while Dagster runs each async asset in a loop of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import psycopg
from psycopg_pool import ConnectionPool

from zephyr_qtest.lib.mapping import MartRows
from zephyr_qtest.lib.postgres import (
    CONNECT_TIMEOUT_SECONDS,
    DEFAULT_OUTAGE_SECONDS,
    Outage,
    connect_async,
    redact_url,
)
from zephyr_qtest.lib.proof.saved import ProofRows
from zephyr_qtest.lib.qtest.id_map import IdMap
from zephyr_qtest.lib.qtest.reconcile import ReconciliationRows
from zephyr_qtest.lib.raw_store import RawRows

# Sync work in one process is mostly sequential (a Dagster step); a few connections cover a report's reads
# beside a stage's attachment-bytes connection.
MAX_POOLED_CONNECTIONS = 4


class Connections(Protocol):
    """Borrowing a synchronous connection: committed when the block ends, rolled back on an exception."""

    def connection(self, *, autocommit: bool = False) -> AbstractContextManager[psycopg.Connection]: ...


class AsyncConnections(Protocol):
    """Opening an async connection of one's own (the caller closes it)."""

    def ping(self) -> None:
        """One round trip to the database through the pool (which waits out an outage for a connection)."""
        with self.connection() as conn:
            conn.execute("select 1")

    async def connect_async(self, *, autocommit: bool = False) -> psycopg.AsyncConnection: ...


class Database(Connections, AsyncConnections, Protocol):
    """Both: what a repository that reads synchronously and writes asynchronously needs (``Store`` is one)."""


def _plain(conn: psycopg.Connection) -> None:
    # A connection goes back to the pool as it came: a borrower that asked for autocommit does not leak it.
    conn.autocommit = False


class Store:
    """The staging database of one process: ``connection()`` from the pool, ``connect_async()`` for async
    work, and the repositories over them. Closed by ``close()`` (or as a context manager)."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = MAX_POOLED_CONNECTIONS,
        outage_seconds: float = DEFAULT_OUTAGE_SECONDS,
    ) -> None:
        self.url = url
        # How long the id map waits out an outage of the database (ZEPHYR_QTEST_DATABASE_OUTAGE_S).
        self.outage = Outage(redact_url(url), outage_seconds)
        self._max_connections = max_connections
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _opened_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self._max_connections,
                    kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
                    reset=_plain,
                    # A connection that an outage broke while it sat in the pool is replaced, not lent.
                    check=ConnectionPool.check_connection,
                    open=False,
                    name="zephyr_qtest",
                )
                pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
                self._pool = pool
            return self._pool

    @contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        # Waits out an outage too: the pool keeps trying to connect meanwhile.
        wait = max(CONNECT_TIMEOUT_SECONDS * 4, self.outage.seconds)
        with self._opened_pool().connection(timeout=wait) as conn:
            if autocommit:
                conn.autocommit = True
            yield conn

    def ping(self) -> None:
        """One round trip to the database through the pool (which waits out an outage for a connection)."""
        with self.connection() as conn:
            conn.execute("select 1")

    async def connect_async(self, *, autocommit: bool = False) -> psycopg.AsyncConnection:
        return await connect_async(self.url, autocommit=autocommit)

    def raw_rows(self) -> RawRows:
        return RawRows(self)

    def marts(self) -> MartRows:
        return MartRows(self)

    def reconciliations(self) -> ReconciliationRows:
        return ReconciliationRows(self)

    def proofs(self) -> ProofRows:
        return ProofRows(self)

    async def open_id_map(self, project_key: str, target_site: str) -> IdMap:
        """The id map of one project on one qTest site (its base URL), on a connection of its own (close it
        with ``IdMap.close``)."""
        return await IdMap.open(self, project_key, target_site, self.outage)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
