"""Preflight: what a migration needs, checked before anything is written (issue 15, part 1).

Through the real command (``main``) against both sandboxes served in-thread and a database of the embedded
server, configured as a live setup is (the environment), so the same path runs as against the vendors.
Proves: a wrong qTest token stops ``migrate`` naming the variable, with one read and no write in qTest (the
sandbox's request statistics) and no Dagster partition; an unknown project lists the projects that exist
and leaves no partition; unreachable hosts and an unusable database name their variables, after one
attempt each (a server that counts its connections); a ``QTEST_BASE_URL`` ending in ``/api/v3`` is taken
as its site, with a log line; and a passing preflight prints the table having only read.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest

from zephyr_qtest.cli import main
from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.sandbox.jira.serve import jira_sandbox
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.qtest.template import DEFAULT_PASSWORD
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle

WRITE_METHODS = ("POST ", "PUT ", "DELETE ", "PATCH ")
SERVICE_VARIABLES = (
    "ZEPHYR_BASE_URL", "ZEPHYR_API_TOKEN", "QTEST_BASE_URL", "QTEST_API_TOKEN", "QTEST_USERNAME",
    "QTEST_PASSWORD", "DATABASE_URL", "POSTGRES_HOST", "ZEPHYR_QTEST_PROJECT_MAP", "DAGSTER_HOME",
    "JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN",
)  # fmt: skip


@pytest.fixture(scope="module")
def qtest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QTestSandboxHandle]:
    """A qTest site that already holds the target project of every Zephyr project of the shared sandbox."""
    with start_qtest_in_thread(
        tmp_path_factory.mktemp("qtest_preflight"), projects=["PAY", "SHOP"]
    ) as handle:
        yield handle


@pytest.fixture
def configure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, embedded_databases: Callable[[], str]
) -> Callable[..., Path]:
    """Set the environment of a live setup (each variable given, the others unset); returns DAGSTER_HOME."""
    monkeypatch.chdir(tmp_path)  # no .env of the repository's
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()

    def setup(**variables: str) -> Path:
        for name in SERVICE_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        variables.setdefault("DATABASE_URL", embedded_databases())
        for name, value in {**variables, "DAGSTER_HOME": str(dagster_home)}.items():
            monkeypatch.setenv(name, value)
        return dagster_home

    return setup


def zephyr_keys(zephyr: ZephyrSandboxHandle) -> list[str]:
    answer = httpx.get(f"{zephyr.base_url}/projects", headers=zephyr.headers, timeout=10).json()
    return sorted(project["key"] for project in answer["values"])


def partitions(dagster_home: Path) -> list[str]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return instance.get_dynamic_partitions(zephyr_projects.name)


def writes(stats: dict) -> dict[str, int]:
    """The write requests a sandbox saw (a login at /oauth/token writes nothing of the site's)."""
    return {
        path: count
        for path, count in stats["by_path"].items()
        if path.startswith(WRITE_METHODS) and path != "POST /oauth/token"
    }


def test_a_wrong_qtest_token_stops_migrate_naming_it_before_any_write(
    configure: Callable[..., Path],
    shared_zephyr: ZephyrSandboxHandle,
    qtest: QTestSandboxHandle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dagster_home = configure(
        ZEPHYR_BASE_URL=shared_zephyr.base_url,
        ZEPHYR_API_TOKEN=shared_zephyr.token,
        QTEST_BASE_URL=qtest.base_url,
        QTEST_API_TOKEN="not-the-token",
    )
    qtest.reset_stats()
    assert main(["migrate", "--project", "SHOP"]) == 1
    out, err = capsys.readouterr()
    assert "qTest API and token" in out and "BLOCKER" in out
    assert "QTEST_API_TOKEN was refused" in err, err
    stats = qtest.stats()
    assert writes(stats) == {}, stats["by_path"]
    # One call, refused, and not repeated.
    assert stats["by_path"] == {"GET /api/v3/projects": 1}, stats["by_path"]
    assert partitions(dagster_home) == []


def test_an_unknown_project_lists_those_that_exist_and_leaves_no_partition(
    configure: Callable[..., Path],
    shared_zephyr: ZephyrSandboxHandle,
    qtest: QTestSandboxHandle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dagster_home = configure(
        ZEPHYR_BASE_URL=shared_zephyr.base_url,
        ZEPHYR_API_TOKEN=shared_zephyr.token,
        QTEST_BASE_URL=qtest.base_url,
        QTEST_API_TOKEN=qtest.token,
    )
    assert main(["migrate", "--project", "NOPE"]) == 1
    assert partitions(dagster_home) == []
    err = capsys.readouterr().err
    keys = zephyr_keys(shared_zephyr)
    assert keys and f"pass --project with one of: {', '.join(keys)}" in err, err


class CountingServer:
    """A TCP port that accepts connections and closes them unanswered, counting them: a host that is up but
    answers nothing (a client that retried would connect again)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def test_unreachable_hosts_and_database_are_named_after_one_attempt(
    configure: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    silent = CountingServer()
    try:
        configure(
            ZEPHYR_BASE_URL=f"http://127.0.0.1:{closed_port()}/v2",
            ZEPHYR_API_TOKEN="zq-unreachable-zephyr-token",
            QTEST_BASE_URL=f"http://127.0.0.1:{silent.port}",
            QTEST_API_TOKEN="zq-unreachable-qtest-token",
            DATABASE_URL=f"postgresql://nobody@127.0.0.1:{closed_port()}/nothing",
        )
        assert main(["preflight", "--project", "SHOP"]) == 1
    finally:
        silent.close()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "check ZEPHYR_BASE_URL" in err and "check QTEST_BASE_URL" in err and "check DATABASE_URL" in err, (
        err
    )
    # The run's clients retry transport errors (8 times, with backoff); preflight's do not.
    assert silent.connections == 1


def test_a_passing_preflight_prints_the_table_having_only_read(
    configure: Callable[..., Path],
    shared_zephyr: ZephyrSandboxHandle,
    qtest: QTestSandboxHandle,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The API base, as the qTest sandbox's banner prints it: taken as the site, with a log line.
    with jira_sandbox() as jira:
        configure(
            ZEPHYR_BASE_URL=shared_zephyr.base_url,
            ZEPHYR_API_TOKEN=shared_zephyr.token,
            QTEST_BASE_URL=f"{qtest.base_url}/api/v3/",
            QTEST_API_TOKEN=qtest.token,
            JIRA_BASE_URL=jira.base_url,
            JIRA_EMAIL=jira.email,
            JIRA_API_TOKEN=jira.token,
        )
        qtest.reset_stats()
        with caplog.at_level(logging.WARNING, logger="zephyr_qtest.settings"):
            assert main(["preflight", "--project", "SHOP"]) == 0
    assert f"QTEST_BASE_URL ends in /api/v3: using the site {qtest.base_url}" in caplog.text
    out = capsys.readouterr().out
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines() if "  " in line}
    for check in (
        "Zephyr API and token",
        "Zephyr projects",
        "qTest API and token",
        "SHOP: qTest project",
        "SHOP: qTest permissions",
        "SHOP: execution statuses",
        "staging database",
        "id map",
    ):
        assert " ok " in rows[check], rows.get(check)
    # The fields the run would create on this site (a default template): the Zephyr key at least.
    assert "test-cases field 'Zephyr Key'" in rows["SHOP: fields"]
    assert "PostgreSQL" in rows["staging database"]
    # Jira's credentials are checked now; which issues it returns, once the links are extracted.
    assert (
        "after extraction" in rows["SHOP: Jira issues"]
        and "accepts the credentials" in rows["SHOP: Jira issues"]
    )
    assert "preflight passed" in out
    stats = qtest.stats()
    assert stats["by_path"] and writes(stats) == {}, stats["by_path"]
    assert stats["by_path"].get("GET /api/v3/api/v3/projects") is None


def test_a_user_who_may_not_create_the_fields_is_stopped_naming_what_is_missing(
    configure: Callable[..., Path],
    shared_zephyr: ZephyrSandboxHandle,
    qtest: QTestSandboxHandle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A member of the project who is not its admin: the fields a bare site lacks cannot be created.
    configure(
        ZEPHYR_BASE_URL=shared_zephyr.base_url,
        ZEPHYR_API_TOKEN=shared_zephyr.token,
        QTEST_BASE_URL=qtest.base_url,
        QTEST_USERNAME="alice.tester@sandbox.local",
        QTEST_PASSWORD=DEFAULT_PASSWORD,
    )
    qtest.reset_stats()
    assert main(["preflight", "--project", "SHOP"]) == 1
    captured = capsys.readouterr()
    assert "lacks project_setting.manage" in captured.out, captured.out
    assert "SHOP: qTest permissions" in captured.err and "project administrator" in captured.err, captured.err
    stats = qtest.stats()
    assert writes(stats) == {}, stats["by_path"]
