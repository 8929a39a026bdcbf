"""The retry rule for the staging database (``postgres.retrying``): what counts as the server going away,
the work redone whole after a reconnect, and the one line an outage longer than
``ZEPHYR_QTEST_DATABASE_OUTAGE_S`` ends in (the database named without its password)."""

from __future__ import annotations

import asyncio
import socket

import psycopg
import pytest

from zephyr_qtest.cli import explain
from zephyr_qtest.lib.postgres import (
    OUTAGE_SETTING,
    DatabaseUnavailable,
    Outage,
    connection_lost,
    redact_url,
    retrying,
)
from zephyr_qtest.lib.store import Store


def closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("message", "lost"),
    [
        ('connection failed: connection to server at "db", port 5432 failed: Connection refused', True),
        ("connection failed: server closed the connection unexpectedly", True),
        ("connection failed: ... failed: FATAL:  the database system is starting up", True),
        ('connection failed: ... failed: FATAL:  password authentication failed for user "u"', False),
        ('connection failed: ... failed: FATAL:  database "nope" does not exist', False),
    ],
)
def test_what_counts_as_the_server_going_away_when_connecting(message: str, lost: bool) -> None:
    assert connection_lost(psycopg.OperationalError(message)) is lost


def test_an_error_of_the_work_itself_is_not_retried() -> None:
    assert not connection_lost(psycopg.errors.UniqueViolation("duplicate key"))
    assert not connection_lost(DatabaseUnavailable("given up already"))


def test_the_work_is_redone_whole_after_a_reconnect() -> None:
    calls: list[str] = []

    async def work() -> str:
        calls.append("work")
        if calls.count("work") == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return "done"

    async def reopen() -> None:
        calls.append("reopen")

    said: list[str] = []
    outage = Outage("postgresql://u@db/x", 60.0, said.append, first_pause=0.0)
    result = asyncio.run(retrying(work, reopen, outage, "recording M1 done", lambda error: True))

    assert result == "done" and calls == ["work", "reopen", "work"]
    assert said[0].startswith("the staging database postgresql://u@db/x went away while recording M1 done")
    assert said[1] == "reconnected to the staging database; redoing recording M1 done"


def test_a_database_that_stays_away_ends_in_one_line_naming_the_setting_without_the_password() -> None:
    url = f"postgresql://migrator:pa55-w0rd@127.0.0.1:{closed_port()}/staging"

    async def open_id_map() -> None:
        with Store(url, outage_seconds=0.3) as store:
            await store.open_id_map("SHOP", "https://acme.qtestnet.com")

    with pytest.raises(DatabaseUnavailable) as caught:
        asyncio.run(open_id_map())

    line = explain(caught.value)
    assert "\n" not in line and OUTAGE_SETTING in line and "DATABASE_URL" in line, line
    assert redact_url(url) in line and "pa55-w0rd" not in line, line
    assert "pa55-w0rd" not in str(caught.value)
