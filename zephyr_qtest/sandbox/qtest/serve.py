"""Run the qTest sandbox: in the foreground (``serve_qtest``) or on a background thread
(``start_qtest_in_thread`` / ``qtest_sandbox``), always a real uvicorn server on 127.0.0.1.

The foreground form is what ``zephyr-qtest sandbox serve`` and ``python -m zephyr_qtest.sandbox.qtest``
run; the threaded form is what the test-suite, the demo and the benchmark use: it picks a free port, waits
until the server accepts connections, and returns a handle with ``.base_url`` (the site URL; the API is
under ``/api/v3``), ``.token``, ``.stop()`` and helpers for the admin endpoints. Started with
``port=None`` (what the CLI's commands do), a sandbox keeps one address per state directory
(``PORT_FILE``), and ``start_or_join_qtest`` uses the one another command already serves there.

The server runs with a small uvicorn protocol subclass that lets the app close a connection without
answering (``app.ABORT_EXTENSION``): that is how a dropped connection and a lost answer look to the client
("server disconnected without sending a response").
"""

from __future__ import annotations

import socket
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx

from zephyr_qtest.sandbox import common
from zephyr_qtest.sandbox.qtest.app import ABORT_EXTENSION, QTestSandbox
from zephyr_qtest.sandbox.qtest.faults import SWITCH_CHECKS, FaultConfig, RetryAfterMode
from zephyr_qtest.sandbox.qtest.store import DEFAULT_ATTACHMENT_MAX_BYTES
from zephyr_qtest.sandbox.qtest.template import DEFAULT_TEMPLATE_NAME

try:  # httptools is what uvicorn uses when installed (uvicorn[standard]); the hook needs its protocol.
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class AbortableHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's HTTP protocol, with a way for the app to close the connection without an answer."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            transport = self.transport
            self.scope["extensions"] = {ABORT_EXTENSION: {"abort": transport.abort}}  # type: ignore[typeddict-unknown-key]

    _HTTP_PROTOCOL: Any = AbortableHttpToolsProtocol
except ImportError:  # pragma: no cover - without httptools, lost answers are cut bodies instead
    _HTTP_PROTOCOL = "auto"


# The file in a state directory that names the port its site is served at when no port is given. qTest
# knows a site by its URL and so does the migration's id map (one map per site URL): a sandbox served at a
# new port by each command would be a new site to every run, which would then create everything again in
# the same projects, and `rollback --site` could not name the site of an earlier run.
PORT_FILE = "port"
# Where a new state's port is chosen: below the ephemeral ranges (Linux 32768-60999, Windows and macOS
# 49152-65535) from which the system takes the local ports of outgoing connections, so that none of those
# holds it when the sandbox starts again.
STABLE_PORTS = range(20000, 30000)


class SandboxPortBusy(OSError):
    """Another program listens on the port a state directory recorded for its sandbox."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        port_file = state_dir / PORT_FILE
        super().__init__(
            f"the qTest sandbox of {state_dir} is served at port {port} (its site http://127.0.0.1:{port}, "
            f"recorded in {port_file}), and another program listens on that port: stop that program, or "
            f"delete {port_file} to give the sandbox a new port (a new site to the migration's id map: what "
            "runs created at the old address would be created again)"
        )


def recorded_port(state_dir: str | Path) -> int | None:
    """The port the sandbox of ``state_dir`` is served at by default, or None before its first start."""
    port_file = Path(state_dir) / PORT_FILE
    try:
        text = port_file.read_text().strip()
    except FileNotFoundError:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(
            f"{port_file} holds {text[:20]!r}, not a port: write the sandbox's port in it, or delete it"
        )
    return int(text)


def record_port(state_dir: str | Path, port: int) -> None:
    """Make ``port`` the address of the sandbox of ``state_dir`` for the starts without a port."""
    port_file = Path(state_dir) / PORT_FILE
    partial = port_file.with_name(f"{PORT_FILE}.partial")
    partial.write_text(f"{port}\n")
    partial.replace(port_file)


def stable_socket(state_dir: str | Path, host: str) -> socket.socket:
    """A listening socket at the recorded port of ``state_dir`` (``SandboxPortBusy`` when another program
    holds it), or, for a state without one, at a free port of ``STABLE_PORTS``."""
    state = Path(state_dir)
    port = recorded_port(state)
    if port is not None:
        try:
            return common.bind_socket(host, port)
        except OSError as error:
            raise SandboxPortBusy(state, port) from error
    # Derived from the directory: two project homes (or two test workers) seldom try the same port first.
    first = zlib.crc32(str(state.resolve()).encode())
    for offset in range(len(STABLE_PORTS)):
        try:
            return common.bind_socket(host, STABLE_PORTS[(first + offset) % len(STABLE_PORTS)])
        except OSError:
            continue
    raise OSError(
        f"no free port in {STABLE_PORTS.start}-{STABLE_PORTS.stop - 1} on {host} for the qTest sandbox of {state}"
    )


def build_qtest_sandbox(
    state_dir: str | Path,
    *,
    base_url: str,
    seed: int = 0,
    rate_limit: float | None = None,
    burst: float | None = None,
    retry_after_mode: RetryAfterMode = "seconds",
    minute_quota: int | None = None,
    month_quota: int = 10_000_000,
    latency_ms: float = 0.0,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    lost_answer_rate: float = 0.0,
    refuse: Mapping[str, list[str]] | None = None,
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    queue_polls: int = 2,
    queue_delay_s: float | None = 2.0,
    token_ttl_s: int = 3600,
    site_name: str | None = None,
    projects: Sequence[str] = (),
    template: str = DEFAULT_TEMPLATE_NAME,
) -> QTestSandbox:
    """The sandbox object (store, token, switches) without a server."""
    switches: dict[str, Any] = {
        "rate_limit": rate_limit,
        "burst": burst,
        "retry_after_mode": retry_after_mode,
        "minute_quota": minute_quota,
        "month_quota": month_quota,
        "latency_ms": latency_ms,
        "fault_rate": fault_rate,
        "drop_rate": drop_rate,
        "lost_answer_rate": lost_answer_rate,
        "refuse": dict(refuse or {}),
        "seed": seed,
    }
    faults = common.apply_switches(FaultConfig(), switches, SWITCH_CHECKS)  # naming a bad switch
    return QTestSandbox(
        state_dir,
        base_url=base_url,
        seed=seed,
        faults=faults,
        attachment_max_bytes=attachment_max_bytes,
        queue_polls=queue_polls,
        queue_delay_s=queue_delay_s,
        token_ttl_s=token_ttl_s,
        site_name=site_name,
        projects=projects,
        template=template,
    )


class QTestSandboxHandle(common.SandboxHandle):
    """A qTest sandbox served on a background thread. Use as a context manager or call ``stop()``.

    ``headers`` are ``Authorization: bearer <token>``; ``info()``, ``stats()``, ``reset_stats()``,
    ``set_faults(**switches)`` (e.g. ``set_faults(rate_limit=5, lose_next=1)``), ``counts()``, ``dump()``,
    ``drag()`` and ``reset()`` call the admin endpoints. ``stop()`` also closes the database (the state stays on disk).
    """

    auth_scheme: ClassVar[str] = "bearer"
    admin_timeout: ClassVar[float] = 30.0

    def __init__(self, sandbox: QTestSandbox, server: common.ServerThread) -> None:
        super().__init__(server, token=sandbox.token, admin_url=f"{sandbox.base_url}/_sandbox")
        self.sandbox = sandbox
        self.base_url = sandbox.base_url  # the site URL, e.g. http://127.0.0.1:41234
        self.api_url = sandbox.api_url  # base_url + "/api/v3"
        self.username = sandbox.username
        self.password = sandbox.password
        self.state_dir = sandbox.store.state_dir

    def _after_stop(self) -> None:
        self.sandbox.close()

    def counts(self, project_id: int | None = None) -> dict[str, Any]:
        """Objects per type: of every project (``{"projects": n, "per_project": {...}}``) or of one."""
        if project_id is None:
            return self._admin("GET", "counts")
        return self._admin("GET", f"counts/{project_id}")["per_project"][str(project_id)]

    def dump(self, project_id: int) -> dict[str, Any]:
        """Every object of one project as the API shows it (for reconciliation tests)."""
        return self._admin("GET", f"dump/{project_id}")

    def drag(self, project_id: int, kind: str, object_id: int, position: int) -> dict[str, Any]:
        """A module or test cycle dragged to `position` (1-based) among its siblings, as in qTest's UI."""
        return self._admin(
            "POST", f"drag/{project_id}", {"kind": kind, "id": object_id, "position": position}
        )

    def reset(self) -> dict[str, Any]:
        """Delete every project (users, tokens and the start-up projects come back)."""
        return self._admin("POST", "reset")

    def import_jira_issues(self, project_id: int, issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Requirements made as a site's Jira integration would import the issues (``issue_id``, ``key``,
        ``summary``...; see ``store/requirements.py``), with their external properties."""
        return self._admin("POST", f"jira-import/{project_id}", issues)


def start_qtest_in_thread(
    state_dir: str | Path,
    *,
    seed: int = 0,
    rate_limit: float | None = None,
    burst: float | None = None,
    retry_after_mode: RetryAfterMode = "seconds",
    minute_quota: int | None = None,
    month_quota: int = 10_000_000,
    latency_ms: float = 0.0,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    lost_answer_rate: float = 0.0,
    refuse: Mapping[str, list[str]] | None = None,
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    queue_polls: int = 2,
    queue_delay_s: float | None = 2.0,
    token_ttl_s: int = 3600,
    site_name: str | None = None,
    projects: Sequence[str] = (),
    template: str = DEFAULT_TEMPLATE_NAME,
    host: str = "127.0.0.1",
    port: int | None = 0,
    startup_timeout: float = 30.0,
) -> QTestSandboxHandle:
    """Serve a qTest sandbox on a background thread (``port=0``: a free port; ``None``: the port of
    ``state_dir``, see ``PORT_FILE``) and return its handle.

    ``state_dir`` holds the SQLite state: a sandbox started again on the same directory has every
    object (and the same API token). ``template`` is what new projects get: ``default``, a new qTest site's
    system fields only, or ``rich``, with the migration's fields (Zephyr Key, Labels...) already there. The
    other arguments are described in docs/qtest-sandbox.md.
    """
    sock = stable_socket(state_dir, host) if port is None else common.bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    sandbox: QTestSandbox | None = None
    try:
        sandbox = build_qtest_sandbox(
            state_dir,
            base_url=f"http://{common.url_host(host)}:{bound_port}",
            seed=seed,
            rate_limit=rate_limit,
            burst=burst,
            retry_after_mode=retry_after_mode,
            minute_quota=minute_quota,
            month_quota=month_quota,
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            drop_rate=drop_rate,
            lost_answer_rate=lost_answer_rate,
            refuse=refuse,
            attachment_max_bytes=attachment_max_bytes,
            queue_polls=queue_polls,
            queue_delay_s=queue_delay_s,
            token_ttl_s=token_ttl_s,
            site_name=site_name,
            projects=projects,
            template=template,
        )
        server = common.start_server_thread(
            sandbox.asgi,
            sock,
            name=f"qtest-sandbox-{bound_port}",
            description="the qTest sandbox",
            url=sandbox.base_url,
            http=_HTTP_PROTOCOL,
            startup_timeout=startup_timeout,
        )
    except BaseException:
        sock.close()
        if sandbox is not None:
            sandbox.close()
        raise
    if port is None and recorded_port(state_dir) != bound_port:
        record_port(state_dir, bound_port)  # once started: a state that could not be served keeps no port
    return QTestSandboxHandle(sandbox, server)


@dataclass(frozen=True)
class RunningQTestSandbox:
    """The sandbox of a state directory that another process serves (another command on the same project
    home), joined rather than started: ``stop()`` leaves it to that process."""

    base_url: str
    api_url: str
    token: str

    def stop(self) -> None:
        """Nothing to stop: the process that serves it stops it."""


def running_qtest_sandbox(
    state_dir: str | Path, port: int, host: str = "127.0.0.1"
) -> RunningQTestSandbox | None:
    """The sandbox served at ``port`` if it is the one of ``state_dir`` (its admin information says so)."""
    try:
        response = httpx.get(f"http://{common.url_host(host)}:{port}/_sandbox/info", timeout=2.0)
        info = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(info, dict) or not info.get("state_dir") or not info.get("token"):
        return None
    if Path(info["state_dir"]).resolve() != Path(state_dir).resolve():
        return None
    return RunningQTestSandbox(str(info["base_url"]), str(info["api_url"]), str(info["token"]))


def start_or_join_qtest(
    state_dir: str | Path, *, host: str = "127.0.0.1", **options: Any
) -> QTestSandboxHandle | RunningQTestSandbox:
    """The sandbox of ``state_dir`` at its own address (``PORT_FILE``): served here on a background thread
    (``options`` as ``start_qtest_in_thread``'s), or, when another process serves it there already, that
    one (its switches are that process's). Raises ``SandboxPortBusy`` when another program holds the port."""
    try:
        return start_qtest_in_thread(state_dir, host=host, port=None, **options)
    except SandboxPortBusy as busy:
        running = running_qtest_sandbox(state_dir, busy.port, host)
        if running is None:
            raise
        return running


def qtest_sandbox(state_dir: str | Path, **kwargs: Any) -> QTestSandboxHandle:
    """``with qtest_sandbox(tmp_path / "qtest") as qtest: ...``: the handle stops the server on leaving."""
    return start_qtest_in_thread(state_dir, **kwargs)


def serve_qtest(
    state_dir: str | Path,
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    seed: int = 0,
    rate_limit: float | None = None,
    burst: float | None = None,
    retry_after_mode: RetryAfterMode = "seconds",
    minute_quota: int | None = None,
    month_quota: int = 10_000_000,
    latency_ms: float = 0.0,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    lost_answer_rate: float = 0.0,
    refuse: Mapping[str, list[str]] | None = None,
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    queue_polls: int = 2,
    queue_delay_s: float | None = 2.0,
    token_ttl_s: int = 3600,
    site_name: str | None = None,
    projects: Sequence[str] = (),
    template: str = DEFAULT_TEMPLATE_NAME,
    public_base_url: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve a qTest Manager sandbox in the foreground until interrupted (Ctrl-C).

    Prints the site URL and the API token as ``QTEST_BASE_URL`` / ``QTEST_API_TOKEN`` lines a shell can
    ``export`` (and ``QTEST_USERNAME`` / ``QTEST_PASSWORD`` for the ``/oauth/token`` password grant).

    Args:
        state_dir: directory of the SQLite state; created if missing, reused if not.
        port: TCP port (0 picks a free one; None: the port of ``state_dir``, see ``PORT_FILE``).
        host: interface to listen on; 127.0.0.1 keeps the sandbox local.
        seed: seed of a new site's id sequence and API token, and of the fault decisions.
        rate_limit: requests per second per token (token bucket; ``burst`` its capacity); over it: 429.
        retry_after_mode: ``seconds`` (ceil of the wait), ``zero`` (always 0) or ``absent`` (no header).
        minute_quota / month_quota: requests per token per calendar minute / since start; over: 429.
        latency_ms: mean added latency per request (+-20 % jitter).
        fault_rate: share of requests answered 500/502/503 (not applied).
        drop_rate: share of requests whose connection is closed before they are applied.
        lost_answer_rate: share of writes applied and committed whose answer is never sent.
        refuse: kind of object -> texts naming the objects whose create call is answered 400 (faults.py).
        attachment_max_bytes: the attachment size limit (413 over it); 50 MB like qTest SaaS.
        queue_polls / queue_delay_s: a bulk auto-test-logs job finishes at its Nth poll or after this
            many seconds, whichever comes first.
        token_ttl_s: lifetime of ``/oauth/token`` access tokens (the API token never expires).
        site_name: if set, ``/oauth/token`` wants ``Basic base64("<site_name>:")`` (or ``qtest-api:``).
        projects: project names to create at start when missing.
        template: the field settings new projects get: ``default`` (a new qTest site's system fields only)
            or ``rich`` (plus the fields a migration would otherwise create: Zephyr Key, Labels...).
        public_base_url: the site URL clients reach the sandbox at, if not ``http://host:port``.
        log_level: uvicorn log level.
    """
    sock = stable_socket(state_dir, host) if port is None else common.bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    if port is None and recorded_port(state_dir) != bound_port:
        # The same address as the CLI's sandbox of this state: a run's id map names the site by its URL.
        record_port(state_dir, bound_port)
    base_url = (public_base_url or f"http://{common.url_host(host)}:{bound_port}").rstrip("/")
    sandbox = build_qtest_sandbox(
        state_dir,
        base_url=base_url,
        seed=seed,
        rate_limit=rate_limit,
        burst=burst,
        retry_after_mode=retry_after_mode,
        minute_quota=minute_quota,
        month_quota=month_quota,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        drop_rate=drop_rate,
        lost_answer_rate=lost_answer_rate,
        refuse=refuse,
        attachment_max_bytes=attachment_max_bytes,
        queue_polls=queue_polls,
        queue_delay_s=queue_delay_s,
        token_ttl_s=token_ttl_s,
        site_name=site_name,
        projects=projects,
        template=template,
    )
    print_banner(sandbox)
    try:
        common.serve_forever(sandbox.asgi, sock, log_level=log_level, http=_HTTP_PROTOCOL)
    finally:
        sandbox.close()


def print_banner(sandbox: QTestSandbox) -> None:
    """What a started sandbox prints: where it is, and the export lines."""
    counts = sandbox.store.counts()
    print(
        f"qTest Manager sandbox (state {sandbox.store.state_dir}: {counts['projects']} projects; "
        f"template {sandbox.store.template_name})"
    )
    print(f"  API base URL : {sandbox.api_url}")
    print(f"  admin        : {sandbox.base_url}/_sandbox/stats")
    print(f"QTEST_BASE_URL={sandbox.base_url}")
    print(f"QTEST_API_TOKEN={sandbox.token}")
    print(f"QTEST_USERNAME={sandbox.username}")
    print(f"QTEST_PASSWORD={sandbox.password}", flush=True)
