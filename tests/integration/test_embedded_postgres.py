"""The embedded server: shared by processes, stopped when the last leaves, even after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from zephyr_qtest.lib.postgres import EmbeddedPostgres, connect

HOLDER = """
import sys, time
from pathlib import Path
from zephyr_qtest.lib.postgres import EmbeddedPostgres
print(EmbeddedPostgres(Path(sys.argv[1])).start(), flush=True)
time.sleep(120)
"""


def _start_holder(home: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(home)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("postgresql://"), url
    return process, url


def _wait_until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_processes_share_one_server_and_a_killed_owner_leaves_none_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = EmbeddedPostgres(home)
    first, url = _start_holder(home)
    second, second_url = _start_holder(home)
    try:
        assert second_url == url
        postmaster = server.postmaster_pid()
        assert postmaster is not None
        with connect(url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)

        first.send_signal(signal.SIGKILL)
        first.wait()
        time.sleep(2.5)  # the watchdog's interval is 1 s: it must not stop a server still in use
        assert server.postmaster_pid() == postmaster
        with connect(url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)

        second.send_signal(signal.SIGKILL)
        second.wait()
        assert _wait_until(lambda: server.postmaster_pid() is None), (
            "server left running after its users were killed"
        )
        watchdog_pid_file = home / "pg_watchdog.pid"
        assert _wait_until(lambda: not watchdog_pid_file.exists())
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_normal_exit_stops_the_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = "import sys; from pathlib import Path; from zephyr_qtest.lib.postgres import EmbeddedPostgres; EmbeddedPostgres(Path(sys.argv[1])).start()"
    subprocess.run([sys.executable, "-c", script, str(home)], check=True)
    pid_file = home / "pgdata" / "postmaster.pid"
    assert _wait_until(lambda: not pid_file.exists(), timeout=10)
    assert os.path.exists(home / "pgdata" / "PG_VERSION")
