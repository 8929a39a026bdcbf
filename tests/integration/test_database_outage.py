"""A short outage of the staging database within a run is ridden out: the id map reconnects, takes the
run's hold on the project again and redoes the write that was cut off, so the run finishes with every
object in qTest once; an extraction cut off is redone whole, and its partition is the same as without the
outage. Longer than ``ZEPHYR_QTEST_DATABASE_OUTAGE_S``, it ends in one line naming the
database (no password) and that setting; and a run whose hold another run took meanwhile stops.

The outage is real: the loader reaches the (embedded) PostgreSQL server through a small TCP proxy that
the test closes (every connection dropped, every new one refused) and opens again once it has seen the
loader trying to reconnect, so the length of the outage never depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.graph_helpers import TransformedDatabase
from tests.integration.test_one_writer import reconciled
from tests.integration.test_publish import expected_counts
from tests.integration.test_raw_extraction import materialize, projects_of
from zephyr_qtest.cli import explain
from zephyr_qtest.lib.postgres import OUTAGE_SETTING, DatabaseUnavailable
from zephyr_qtest.lib.qtest.id_map import site_of
from zephyr_qtest.lib.qtest.one_writer import HoldLost, Writer, acquire, release
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import start_in_thread

# Long enough never to run out on a slow machine: the test ends each outage itself.
PATIENT_SECONDS = 600.0
# Generous bound on any wait for progress, so a broken build fails instead of hanging.
PROGRESS_BOUND_SECONDS = 300.0


class OutageProxy:
    """127.0.0.1:<port> -> the PostgreSQL server; ``cut()`` drops every connection and refuses new ones
    (counting them), ``restore()`` lets them through again. ``cut(linger=True)`` is a network partition
    the server has not noticed: the clients' side is dropped, the server's sessions stay open."""

    def __init__(self, server_url: str) -> None:
        info = conninfo_to_dict(server_url)
        host, port = str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)
        self._upstream: tuple[int, Any] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
            if host.startswith("/")
            else (socket.AF_INET, (host, port))
        )
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._lingering: set[socket.socket] = set()
        self._cut = False
        self.refused = 0
        self.refused_event = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True, name="outage-proxy")
        self._thread.start()

    def url(self, database_url: str) -> str:
        """`database_url`'s database, reached through the proxy (trust auth, no password needed)."""
        dbname = conninfo_to_dict(database_url)["dbname"]
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def cut(self, *, linger: bool = False) -> None:
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
            if linger:
                self._lingering |= {sock for sock in doomed if sock.family == self._upstream[0]}
                doomed -= self._lingering
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def wait_for_refused(self, count: int) -> None:
        """Until the loader has tried (and failed) to connect `count` times during the cut."""
        with self.refused_event:
            assert self.refused_event.wait_for(lambda: self.refused >= count, PROGRESS_BOUND_SECONDS), (
                f"the loader tried to reconnect {self.refused} times, not {count}"
            )

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        self.cut()
        for sock in self._lingering:
            _close(sock)
        self._thread.join()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    self.refused += 1
                    self.refused_event.notify_all()
                    _close(client)
                    continue
            family, address = self._upstream
            upstream = socket.socket(family, socket.SOCK_STREAM)
            try:
                upstream.connect(address)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                if sock not in self._lingering:
                    _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def proxy(embedded_server_url: str) -> Iterator[OutageProxy]:
    outage = OutageProxy(embedded_server_url)
    yield outage
    outage.close()


def done_rows(database_url: str, object_type: str) -> int:
    with psycopg.connect(database_url) as conn:
        if conn.execute("select to_regclass('migration.id_map')").fetchone() == (None,):
            return 0  # before the first stage made it
        row = conn.execute(
            "select count(*) from migration.id_map where object_type = %s and state = 'done'", (object_type,)
        ).fetchone()
    return int(row[0]) if row else 0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Polls `condition` (a state of the database) until it holds; bounded so a hang becomes a failure."""
    done = threading.Event()
    for _ in range(int(PROGRESS_BOUND_SECONDS / 0.05)):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError(f"no progress: {what}")


def test_a_short_outage_mid_stage_is_ridden_out_and_every_object_arrives_once(
    transformed_database: TransformedDatabase, proxy: OutageProxy, tmp_path: Any
) -> None:
    database_url = transformed_database.copy("zq_outage")
    project = transformed_database.projects[0]
    expected = expected_counts(database_url, project)
    said: list[str] = []
    outcome: dict[str, Any] = {}

    with start_qtest_in_thread(tmp_path / "qtest", seed=5) as qtest:

        def run() -> None:
            async def publish() -> dict[str, dict[str, Any]]:
                with Store(proxy.url(database_url), outage_seconds=PATIENT_SECONDS) as store:
                    return await migrate_on(store, qtest, project, Writer("run-outage", log=said.append))

            try:
                outcome["summaries"] = asyncio.run(publish())
            except BaseException as error:  # handed to the test thread
                outcome["error"] = error

        loader = threading.Thread(target=run, name="loader")
        loader.start()
        try:
            # Mid-stage: some test cases recorded, most still to come.
            wait_until(lambda: done_rows(database_url, "test_case") >= 3, "test cases recorded")
            proxy.cut()
            # The loader noticed and keeps trying to come back (refused twice: a retry after a refusal).
            wait_until(lambda: proxy.refused >= 2 or not loader.is_alive(), "reconnects tried")
            assert loader.is_alive(), f"the run ended in the outage: {outcome.get('error')!r}"
            proxy.restore()
        finally:
            proxy.restore()
            loader.join()

        assert "error" not in outcome, outcome.get("error")
        summaries = outcome["summaries"]
        assert any("went away while" in line and OUTAGE_SETTING in line for line in said), said
        assert any(line.startswith("reconnected to the staging database; redoing") for line in said), said
        assert any(line.startswith(f"took the hold on {project} at ") for line in said), said

        result = reconciled(database_url, qtest, project)
        assert result.ok, {
            kind: (r.expected, r.found, r.unaccounted[:5]) for kind, r in result.results.items()
        }
        for kind_result in result.results.values():
            assert kind_result.found == kind_result.expected and not kind_result.unaccounted, kind_result
        in_qtest = qtest.counts(result.qtest_project_id)
        assert in_qtest["test-cases"] == expected["test_case"]
        # One run, created once: nothing was adopted from an earlier run, nothing made twice (the stage
        # also replays the cases' older versions, each an object of its own).
        made = expected["test_case"] + expected["test_case_version"]
        assert summaries["test_cases"]["created"] == made, summaries["test_cases"]


async def migrate_on(store: Store, qtest: Any, project: str, writer: Writer) -> dict[str, dict[str, Any]]:
    """``test_one_writer.migrate`` on a given store (the proxied one)."""
    from zephyr_qtest.lib.qtest.client import QtestClient
    from zephyr_qtest.lib.qtest.kinds import stages
    from zephyr_qtest.lib.qtest.loader import publish_stage

    summaries: dict[str, dict[str, Any]] = {}
    async with QtestClient(qtest.base_url, qtest.token) as client:
        for stage in stages():
            stage_writer = Writer(writer.run_id, stage, writer.when_busy, writer.log)
            summary, _, _ = await publish_stage(stage, store, client, project, writer=stage_writer)
            summaries[stage] = summary.as_metadata()
    return summaries


SITE = "https://outage.qtestnet.example"


def test_an_outage_longer_than_the_window_ends_in_one_line_naming_the_setting(
    embedded_databases: Callable[[], str], proxy: OutageProxy
) -> None:
    database_url = embedded_databases()
    secret_url = proxy.url(database_url).replace("postgres@", "postgres:s3cret-pw@")

    async def scenario() -> DatabaseUnavailable:
        with Store(secret_url, outage_seconds=0.5) as store:
            id_map = await store.open_id_map("SHOP", SITE)
            try:
                await id_map.done("module", "M1", 1, "h1")
                proxy.cut()
                with pytest.raises(DatabaseUnavailable) as stopped:
                    await id_map.done("module", "M2", 2, "h2")
                return stopped.value
            finally:
                await id_map.close()

    error = asyncio.run(scenario())
    proxy.wait_for_refused(1)  # it did try to come back before giving up

    line = explain(error)
    assert "\n" not in line and OUTAGE_SETTING in line, line
    assert "s3cret-pw" not in line and "s3cret-pw" not in str(error), line
    assert f"127.0.0.1:{proxy.port}" in line, line
    # What was recorded before the outage stays; the write that could not be made is not there.
    assert done_rows(database_url, "module") == 1


def test_a_run_whose_hold_was_taken_during_the_outage_stops_naming_the_other_run(
    embedded_databases: Callable[[], str], proxy: OutageProxy
) -> None:
    database_url = embedded_databases()

    async def scenario() -> str:
        with Store(proxy.url(database_url), outage_seconds=PATIENT_SECONDS) as store:
            id_map = await store.open_id_map("SHOP", SITE)
            try:
                await id_map.become_sole_writer(Writer("run-A", "modules"))
                await id_map.pending("module", "M1", "h1")
                proxy.cut()
                # Run B, on the server directly, takes the project once run A's session has gone.
                other = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
                try:
                    await acquire(other, site_of(SITE), "SHOP", Writer("run-B", "modules"))
                    proxy.restore()
                    with pytest.raises(HoldLost) as stopped:
                        await id_map.done("module", "M1", 101, "h1")
                finally:
                    await other.close()
                return str(stopped.value)
            finally:
                await id_map.close()

    message = asyncio.run(scenario())
    assert message.startswith(f"SHOP on {site_of(SITE)}: this run (run-A) lost its hold"), message
    assert "run run-B (stage modules, since " in message, message
    # Nothing was written after the hold was lost.
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select state from migration.id_map where source_key = 'M1'").fetchone() == (
            "pending",
        )


def test_a_run_whose_project_another_run_held_and_let_go_during_the_outage_stops_too(
    embedded_databases: Callable[[], str], proxy: OutageProxy
) -> None:
    database_url = embedded_databases()

    async def scenario() -> str:
        with Store(proxy.url(database_url), outage_seconds=PATIENT_SECONDS) as store:
            id_map = await store.open_id_map("SHOP", SITE)
            try:
                await id_map.become_sole_writer(Writer("run-A", "modules"))
                await id_map.pending("module", "M1", "h1")
                proxy.cut()
                # Run B publishes while run A is away, and is done before run A comes back.
                other = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
                try:
                    await acquire(other, site_of(SITE), "SHOP", Writer("run-B", "modules"))
                    await release(other, site_of(SITE), "SHOP")
                finally:
                    await other.close()
                proxy.restore()
                with pytest.raises(HoldLost) as stopped:
                    await id_map.done("module", "M1", 101, "h1")
                return str(stopped.value)
            finally:
                await id_map.close()

    message = asyncio.run(scenario())
    assert message.startswith(f"SHOP on {site_of(SITE)}: this run (run-A) lost its hold"), message
    assert "another run held it meanwhile" in message, message


def test_after_a_partition_the_server_did_not_notice_the_run_ends_its_own_old_session_and_goes_on(
    embedded_databases: Callable[[], str], proxy: OutageProxy
) -> None:
    database_url = embedded_databases()
    said: list[str] = []

    async def scenario() -> tuple[int, int]:
        with Store(proxy.url(database_url), outage_seconds=PATIENT_SECONDS) as store:
            id_map = await store.open_id_map("SHOP", SITE)
            try:
                await id_map.become_sole_writer(Writer("run-A", "modules", log=said.append))
                old_session = id_map._conn.info.backend_pid
                await id_map.pending("module", "M1", "h1")
                # The old session lives on in the server, holding the project for run A.
                proxy.cut(linger=True)
                proxy.restore()
                await id_map.done("module", "M1", 101, "h1")
                return old_session, id_map._conn.info.backend_pid
            finally:
                await id_map.close()

    old_session, new_session = asyncio.run(scenario())
    assert old_session != new_session
    assert any(line.startswith("took the hold on SHOP at ") for line in said), said
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "select state, qtest_id from migration.id_map where source_key = 'M1'"
        ).fetchone() == (
            "done",
            101,
        )
    # The old session was ended rather than left holding the project (its socket is still open: only
    # the run's pg_terminate_backend ends it).

    def old_session_gone() -> bool:
        with psycopg.connect(database_url) as conn:
            return (
                conn.execute("select 1 from pg_stat_activity where pid = %s", (old_session,)).fetchone()
                is None
            )

    wait_until(old_session_gone, "the old session ended")


def raw_step_ids(database_url: str, project: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "select id, key from zephyr_raw.test_steps where project_key = %s order by 1, 2", (project,)
        ).fetchall()


def copying_into(database_url: str, table: str) -> bool:
    """Whether a session of this database is streaming rows into `table` (the raw writer's transaction)."""
    dbname = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity where datname = %s and query ilike %s",
            (dbname, f"copy%{table}%from stdin%"),
        ).fetchone()
    return bool(row and row[0])


def test_an_outage_during_an_extraction_redoes_it_and_the_partition_is_whole(
    embedded_databases: Callable[[], str], proxy: OutageProxy
) -> None:
    database_url = embedded_databases()
    through_proxy = proxy.url(database_url)
    # A request takes a while, so the cut falls inside the partition's transaction.
    with start_in_thread(seed=3, size="tiny", latency_ms=100) as zephyr:
        project = projects_of(zephyr)[0]
        cases = materialize(through_proxy, zephyr, project, selection=["zephyr_raw/test_cases"])
        assert cases.success
        plain = materialize(through_proxy, zephyr, project, selection=["zephyr_raw/test_steps"])
        assert plain.success
        whole = raw_step_ids(database_url, project)
        assert whole

        instance = dg.DagsterInstance.ephemeral()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = materialize(
                    through_proxy, zephyr, project, selection=["zephyr_raw/test_steps"], instance=instance
                )
            except BaseException as error:  # handed to the test thread
                outcome["error"] = error

        extraction = threading.Thread(target=run, name="extraction")
        extraction.start()
        try:
            wait_until(
                lambda: copying_into(database_url, "test_steps") or not extraction.is_alive(),
                "the partition's transaction open",
            )
            assert extraction.is_alive(), f"the extraction ended first: {outcome}"
            proxy.cut()
            wait_until(lambda: proxy.refused >= 2 or not extraction.is_alive(), "reconnects tried")
            assert extraction.is_alive(), f"the extraction ended in the outage: {outcome}"
            proxy.restore()
        finally:
            proxy.restore()
            extraction.join()

    assert "error" not in outcome, outcome["error"]
    result = outcome["result"]
    assert result.success
    said = [record.user_message for record in instance.all_logs(result.run_id)]
    assert any("went away while extracting test_steps" in line for line in said), said
    # The interrupted extraction left the same partition as the uninterrupted one.
    assert raw_step_ids(database_url, project) == whole
