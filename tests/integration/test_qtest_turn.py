"""qTest's turn (``lib/qtest/one_writer.take_turn``, ``QtestResource.take_turn``) on the embedded PostgreSQL
and a real Dagster instance: under the tenant's pools enforced per run, a second publishing run may start
while one publishes, and waits for the turn before talking to qTest; the turn ends with the run."""

# No `from __future__ import annotations`: Dagster reads the asset's context annotation as a type.
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import psycopg

from zephyr_qtest.cli import REPO_ROOT
from zephyr_qtest.defs.resources import QtestResource, pools_per_run
from zephyr_qtest.lib.qtest.client import rate_limit_key
from zephyr_qtest.lib.qtest.one_writer import _halves, take_turn, turn_lock_key

SITE = "http://127.0.0.1:9"
KEY = rate_limit_key(SITE, "turn-test-credential")


def _waiting_for_turn(url: str, application_name: str) -> bool:
    """Whether the session named `application_name` waits for an advisory lock (not granted)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_locks l join pg_stat_activity a on a.pid = l.pid "
            "where l.locktype = 'advisory' and not l.granted and a.application_name = %s",
            (application_name,),
        ).fetchone()
    return bool(row and row[0])


def _turn_held(url: str, key: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_locks where locktype = 'advisory' and granted "
            "and classid = %s::oid and objid = %s::oid and objsubid = 1",
            _halves(turn_lock_key(key)),
        ).fetchone()
    return bool(row and row[0])


def test_the_second_run_waits_for_the_turn_and_takes_it_when_the_first_lets_go(
    embedded_databases: Callable[[], str],
) -> None:
    url = embedded_databases()
    first = take_turn(url, KEY, "run-first")
    said: list[str] = []
    second: list[psycopg.Connection] = []
    waiter = threading.Thread(target=lambda: second.append(take_turn(url, KEY, "run-second", said.append)))
    waiter.start()
    try:
        while not _waiting_for_turn(url, "zephyr-qtest run-second"):
            assert waiter.is_alive(), "the second run went on while the first held the turn"
        assert not second
        assert said == ["waiting for the run that talks to qTest (zephyr-qtest run-first) to end"]
        # Another token (another site) is not kept waiting.
        take_turn(url, rate_limit_key("http://127.0.0.1:10", "turn-test-credential"), "run-other").close()
        first.close()
        waiter.join()
        assert second and said[-1] == "qTest's turn taken: this run publishes"
    finally:
        first.close()
        waiter.join()
        for conn in second:
            conn.close()


def _instance(tmp_path: Path, configuration: Path) -> dg.DagsterInstance:
    shutil.copyfile(configuration, tmp_path / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(tmp_path))


def test_a_run_holds_the_turn_only_under_pools_per_run_and_lets_go_at_its_end(
    embedded_databases: Callable[[], str], tmp_path: Path
) -> None:
    url = embedded_databases()
    qtest = QtestResource(base_url=SITE, api_token="turn-test-credential")
    held: list[bool] = []

    @dg.asset
    def talks_to_qtest(context: dg.AssetExecutionContext, qtest: QtestResource) -> None:
        """Takes qTest's turn as a publishing stage does, and says whether it holds it."""
        qtest.take_turn(context, url)
        held.append(_turn_held(url, KEY))

    for configuration, expected in (
        (REPO_ROOT / "docs" / "dagster-tenant.yaml", True),
        (REPO_ROOT / "dagster.yaml", False),  # pools per step: Dagster's slots keep the steps apart
    ):
        home = tmp_path / configuration.stem
        home.mkdir()
        with _instance(home, configuration) as instance:
            assert pools_per_run(instance) is expected
            result = dg.materialize([talks_to_qtest], instance=instance, resources={"qtest": qtest})
        assert result.success
        assert held.pop() is expected
        assert not _turn_held(url, KEY)  # the run's end let go of it
