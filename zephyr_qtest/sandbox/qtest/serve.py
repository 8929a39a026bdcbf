"""Run the qTest sandbox: in the foreground (``serve_qtest``) or on a background thread
(``start_qtest_in_thread`` / ``qtest_sandbox``), always a real uvicorn server on 127.0.0.1.

The foreground form is what ``zephyr-qtest sandbox serve`` and ``python -m zephyr_qtest.sandbox.qtest``
run; the threaded form is what the test-suite, the demo and the benchmark use: it picks a free port, waits
until the server accepts connections, and returns a handle with ``.base_url`` (the site URL; the API is
under ``/api/v3``), ``.token``, ``.stop()`` and helpers for the admin endpoints.

The server runs with a small uvicorn protocol subclass that lets the app close a connection without
answering (``app.ABORT_EXTENSION``): that is how a dropped connection and a lost answer look to the client
("server disconnected without sending a response").
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from zephyr_qtest.sandbox.qtest.app import ABORT_EXTENSION, QTestSandbox
from zephyr_qtest.sandbox.qtest.faults import FaultConfig, RetryAfterMode, apply_changes
from zephyr_qtest.sandbox.qtest.store import DEFAULT_ATTACHMENT_MAX_BYTES

_QUIET_TEXTS = (
    "ASGI callable returned without completing response.",
    "ASGI callable returned without starting response.",
)

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


class _IntentionalDropFilter(logging.Filter):
    """Closing connections is a feature of the sandbox; uvicorn should not log it as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in _QUIET_TEXTS


def _quiet_intentional_drops() -> None:
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _IntentionalDropFilter) for f in error_log.filters):
        error_log.addFilter(_IntentionalDropFilter())


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


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
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    queue_polls: int = 2,
    queue_delay_s: float | None = 2.0,
    token_ttl_s: int = 3600,
    site_name: str | None = None,
    projects: Sequence[str] = (),
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
        "seed": seed,
    }
    faults = apply_changes(FaultConfig(), switches)  # checks every value, naming a bad switch
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
    )


class QTestSandboxHandle:
    """A qTest sandbox served on a background thread. Use as a context manager or call ``stop()``."""

    def __init__(self, sandbox: QTestSandbox, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.sandbox = sandbox
        self.base_url = sandbox.base_url  # the site URL, e.g. http://127.0.0.1:41234
        self.api_url = sandbox.api_url  # base_url + "/api/v3"
        self.token = sandbox.token
        self.username = sandbox.username
        self.password = sandbox.password
        self.state_dir = sandbox.store.state_dir
        self._server = server
        self._thread = thread
        self._stopped = False

    # -- lifecycle ------------------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server, wait for its thread, and close the database (the state stays on disk)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.should_exit = True
        self._thread.join(timeout)
        self.sandbox.close()

    def __enter__(self) -> QTestSandboxHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def headers(self) -> dict[str, str]:
        """The request headers a client needs: ``Authorization: bearer <token>``."""
        return {"Authorization": f"bearer {self.token}"}

    # -- admin endpoints (over HTTP, so the server's own thread does the work) ------------------
    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.base_url}/_sandbox/{path}", json=body, timeout=30.0)
        response.raise_for_status()
        return response.json()

    def info(self) -> dict[str, Any]:
        return self._admin("GET", "info")

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def reset_stats(self) -> dict[str, Any]:
        return self._admin("POST", "stats/reset")

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change switches at run time, e.g. ``set_faults(rate_limit=5, lose_next=1)``."""
        return self._admin("POST", "faults", changes)

    def counts(self, project_id: int | None = None) -> dict[str, Any]:
        """Objects per type: of every project (``{"projects": n, "per_project": {...}}``) or of one."""
        if project_id is None:
            return self._admin("GET", "counts")
        return self._admin("GET", f"counts/{project_id}")["per_project"][str(project_id)]

    def dump(self, project_id: int) -> dict[str, Any]:
        """Every object of one project as the API shows it (for reconciliation tests)."""
        return self._admin("GET", f"dump/{project_id}")

    def reset(self) -> dict[str, Any]:
        """Delete every project (users, tokens and the start-up projects come back)."""
        return self._admin("POST", "reset")


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
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    queue_polls: int = 2,
    queue_delay_s: float | None = 2.0,
    token_ttl_s: int = 3600,
    site_name: str | None = None,
    projects: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 30.0,
) -> QTestSandboxHandle:
    """Serve a qTest sandbox on a background thread (``port=0``: a free port) and return its handle.

    ``state_dir`` holds the SQLite state: a sandbox started again on the same directory has every
    object (and the same API token). The other arguments are described in docs/qtest-sandbox.md.
    """
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    try:
        sandbox = build_qtest_sandbox(
            state_dir,
            base_url=f"http://{_url_host(host)}:{bound_port}",
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
            attachment_max_bytes=attachment_max_bytes,
            queue_polls=queue_polls,
            queue_delay_s=queue_delay_s,
            token_ttl_s=token_ttl_s,
            site_name=site_name,
            projects=projects,
        )
    except BaseException:
        sock.close()
        raise
    _quiet_intentional_drops()
    config = uvicorn.Config(
        sandbox.asgi, log_level="warning", access_log=False, lifespan="off", http=_HTTP_PROTOCOL
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"qtest-sandbox-{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            sandbox.close()
            raise RuntimeError(f"the qTest sandbox did not start on {sandbox.base_url}")
        time.sleep(0.01)
    return QTestSandboxHandle(sandbox, server, thread)


@contextmanager
def qtest_sandbox(state_dir: str | Path, **kwargs: Any) -> Iterator[QTestSandboxHandle]:
    """``with qtest_sandbox(tmp_path / "qtest") as qtest: ...``: ``start_qtest_in_thread`` + ``stop``."""
    handle = start_qtest_in_thread(state_dir, **kwargs)
    try:
        yield handle
    finally:
        handle.stop()


def serve_qtest(
    state_dir: str | Path,
    port: int = 8091,
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
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    queue_polls: int = 2,
    queue_delay_s: float | None = 2.0,
    token_ttl_s: int = 3600,
    site_name: str | None = None,
    projects: Sequence[str] = (),
    public_base_url: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve a qTest Manager sandbox in the foreground until interrupted (Ctrl-C).

    Prints the site URL and the API token as ``QTEST_BASE_URL`` / ``QTEST_API_TOKEN`` lines a shell can
    ``export`` (and ``QTEST_USERNAME`` / ``QTEST_PASSWORD`` for the ``/oauth/token`` password grant).

    Args:
        state_dir: directory of the SQLite state; created if missing, reused if not.
        port: TCP port (0 picks a free one).
        host: interface to listen on; 127.0.0.1 keeps the sandbox local.
        seed: seed of a new site's id sequence and API token, and of the fault decisions.
        rate_limit: requests per second per token (token bucket; ``burst`` its capacity); over it: 429.
        retry_after_mode: ``seconds`` (ceil of the wait), ``zero`` (always 0) or ``absent`` (no header).
        minute_quota / month_quota: requests per token per calendar minute / since start; over: 429.
        latency_ms: mean added latency per request (+-20 % jitter).
        fault_rate: share of requests answered 500/502/503 (not applied).
        drop_rate: share of requests whose connection is closed before they are applied.
        lost_answer_rate: share of writes applied and committed whose answer is never sent.
        attachment_max_bytes: the attachment size limit (413 over it); 50 MB like qTest SaaS.
        queue_polls / queue_delay_s: a bulk auto-test-logs job finishes at its Nth poll or after this
            many seconds, whichever comes first.
        token_ttl_s: lifetime of ``/oauth/token`` access tokens (the API token never expires).
        site_name: if set, ``/oauth/token`` wants ``Basic base64("<site_name>:")`` (or ``qtest-api:``).
        projects: project names to create at start when missing.
        public_base_url: the site URL clients reach the sandbox at, if not ``http://host:port``.
        log_level: uvicorn log level.
    """
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    base_url = (public_base_url or f"http://{_url_host(host)}:{bound_port}").rstrip("/")
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
        attachment_max_bytes=attachment_max_bytes,
        queue_polls=queue_polls,
        queue_delay_s=queue_delay_s,
        token_ttl_s=token_ttl_s,
        site_name=site_name,
        projects=projects,
    )
    print_banner(sandbox)
    _quiet_intentional_drops()
    config = uvicorn.Config(
        sandbox.asgi,
        log_level=log_level,
        access_log=log_level == "debug",
        lifespan="off",
        http=_HTTP_PROTOCOL,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sandbox.close()


def print_banner(sandbox: QTestSandbox) -> None:
    """What a started sandbox prints: where it is, and the export lines."""
    counts = sandbox.store.counts()
    print(f"qTest Manager sandbox (state {sandbox.store.state_dir}: {counts['projects']} projects)")
    print(f"  API base URL : {sandbox.api_url}")
    print(f"  admin        : {sandbox.base_url}/_sandbox/stats")
    print(f"QTEST_BASE_URL={sandbox.base_url}")
    print(f"QTEST_API_TOKEN={sandbox.token}")
    print(f"QTEST_USERNAME={sandbox.username}")
    print(f"QTEST_PASSWORD={sandbox.password}", flush=True)
