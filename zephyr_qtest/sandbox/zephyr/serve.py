"""Run the Zephyr sandbox: in the foreground (``serve_zephyr``) or on a background thread
(``start_in_thread`` / ``zephyr_sandbox``), always a real uvicorn server on 127.0.0.1.

The foreground form is what ``zephyr-qtest sandbox serve`` and ``python -m
zephyr_qtest.sandbox.zephyr`` run; the threaded form is what the test-suite, the demo and the
benchmark use: it picks a free port, waits until the server accepts connections, and returns a
handle with ``.base_url``, ``.token`` and ``.stop()`` (plus helpers for the admin endpoints).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zephyr_qtest.sandbox.common import (
    SandboxHandle,
    ServerThread,
    bind_socket,
    serve_forever,
    start_server_thread,
    url_host,
)
from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox, create_app
from zephyr_qtest.sandbox.zephyr.auth import derive_secret
from zephyr_qtest.sandbox.zephyr.faults import FaultConfig, RetryAfterMode, apply_changes
from zephyr_qtest.sandbox.zephyr.fixture import load_fixture
from zephyr_qtest.sandbox.zephyr.generator import generate


def _secret(token_secret: str | bytes | None, seed: int) -> bytes:
    if token_secret is None:
        return derive_secret(seed)
    return token_secret.encode("utf-8") if isinstance(token_secret, str) else token_secret


def build_zephyr_sandbox(
    *,
    base_url: str,
    fixture: str | Path | Mapping[str, Any] | None = None,
    seed: int = 0,
    size: str | Mapping[str, Any] = "small",
    token_secret: str | bytes | None = None,
    rate_limit: float | None = None,
    retry_after_mode: RetryAfterMode = "seconds",
    latency_ms: float = 0.0,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    page_cap: int | None = None,
    malformed: list[dict[str, Any]] | None = None,
) -> ZephyrSandbox:
    """The sandbox object (data, token, switches) without a server: a fixture, or generated data."""
    document = load_fixture(fixture) if fixture is not None else generate(seed, size)
    switches: dict[str, Any] = {
        "rate_limit": rate_limit,
        "retry_after_mode": retry_after_mode,
        "latency_ms": latency_ms,
        "fault_rate": fault_rate,
        "drop_rate": drop_rate,
        "page_cap": page_cap,
        "malformed": malformed or [],
        "seed": seed,
    }
    faults = apply_changes(FaultConfig(), switches)  # checks every value, naming a bad switch
    return create_app(document, base_url=base_url, token_secret=_secret(token_secret, seed), faults=faults)


class ZephyrSandboxHandle(SandboxHandle):
    """A Zephyr sandbox served on a background thread. Use as a context manager or call ``stop()``.

    ``headers`` are ``Authorization: Bearer <token>``; ``stats()``, ``reset_stats()``,
    ``set_faults(**switches)`` and ``info()`` call the admin endpoints.
    """

    def __init__(self, sandbox: ZephyrSandbox, server: ServerThread, root_url: str) -> None:
        super().__init__(server, token=sandbox.token, admin_url=f"{root_url}/_sandbox")
        self.sandbox = sandbox
        self.base_url = sandbox.base_url
        self.root_url = root_url  # without /v2: the admin endpoints live under /_sandbox

    def delete_test_case(self, key: str) -> dict[str, Any]:
        return self._admin("DELETE", f"testcases/{key}")

    def mutate(
        self, kind: str, ref: str | int, changes: Mapping[str, Any], remove: list[str] | None = None
    ) -> Any:
        """Edit an object as a user would in Zephyr, e.g. ``mutate("testcase", "SHOP-T1", {"name": "x"})``."""
        return self._admin(
            "POST", "mutate", {"type": kind, "key": str(ref), "set": dict(changes), "remove": remove or []}
        )

    def churn(self, project: str, share: float, *, delete_cases: int = 0, seed: int = 0) -> dict[str, Any]:
        """Change `share` of each kind of `project`'s objects (their update times advanced; executions run
        again) and delete `delete_cases` test cases, as between two migration runs: ``POST /_sandbox/churn``.
        Answers what changed (``changed[kind]``: keys, ids for executions) and was deleted."""
        return self._admin(
            "POST", "churn", {"project": project, "share": share, "delete_cases": delete_cases, "seed": seed}
        )


def start_in_thread(
    *,
    fixture: str | Path | Mapping[str, Any] | None = None,
    seed: int = 0,
    size: str | Mapping[str, Any] = "tiny",
    host: str = "127.0.0.1",
    port: int = 0,
    token_secret: str | bytes | None = None,
    rate_limit: float | None = None,
    retry_after_mode: RetryAfterMode = "seconds",
    latency_ms: float = 0.0,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    page_cap: int | None = None,
    malformed: list[dict[str, Any]] | None = None,
    startup_timeout: float = 30.0,
) -> ZephyrSandboxHandle:
    """Serve a Zephyr sandbox on a background thread (``port=0``: a free port) and return its handle.

    Data: ``fixture`` (a path or a document) or generated from ``seed`` and ``size``. The other
    arguments are the fault switches described in docs/zephyr-sandbox.md.
    """
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    root_url = f"http://{url_host(host)}:{bound_port}"
    try:
        sandbox = build_zephyr_sandbox(
            base_url=f"{root_url}/v2",
            fixture=fixture,
            seed=seed,
            size=size,
            token_secret=token_secret,
            rate_limit=rate_limit,
            retry_after_mode=retry_after_mode,
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            drop_rate=drop_rate,
            page_cap=page_cap,
            malformed=malformed,
        )
    except BaseException:
        sock.close()
        raise
    server = start_server_thread(
        sandbox.asgi,
        sock,
        name=f"zephyr-sandbox-{bound_port}",
        description="the Zephyr sandbox",
        url=root_url,
        startup_timeout=startup_timeout,
    )
    return ZephyrSandboxHandle(sandbox, server, root_url)


@contextmanager
def zephyr_sandbox(**kwargs: Any) -> Iterator[ZephyrSandboxHandle]:
    """``with zephyr_sandbox(seed=1, size="tiny") as zephyr: ...``: ``start_in_thread`` + ``stop``."""
    handle = start_in_thread(**kwargs)
    try:
        yield handle
    finally:
        handle.stop()


def serve_zephyr(
    port: int = 8080,
    *,
    host: str = "127.0.0.1",
    fixture: str | Path | Mapping[str, Any] | None = None,
    seed: int = 0,
    size: str | Mapping[str, Any] = "small",
    token_secret: str | bytes | None = None,
    rate_limit: float | None = None,
    retry_after_mode: RetryAfterMode = "seconds",
    latency_ms: float = 0.0,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    page_cap: int | None = None,
    malformed: list[dict[str, Any]] | None = None,
    public_base_url: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve a Zephyr Scale Cloud sandbox in the foreground until interrupted (Ctrl-C).

    Prints the API base URL (``http://127.0.0.1:PORT/v2``) and the Bearer token to use, as
    ``ZEPHYR_BASE_URL`` / ``ZEPHYR_API_TOKEN`` lines a shell can ``export``.

    Args:
        port: TCP port (0 picks a free one).
        host: interface to listen on; 127.0.0.1 keeps the sandbox local.
        fixture: a fixture file (``.json`` / ``.json.gz``) or document to serve instead of generated data.
        seed: seed of the generated data, of the token secret and of the fault decisions.
        size: generated-data size, a preset (``tiny``, ``small``, ``bench``) or a dict of overrides
            (``{"preset": "small", "projects": 3, "cases": 400, "executions": 2000}``; per project).
        token_secret: signing secret of the token; default: derived from ``seed`` (stable across restarts).
        rate_limit: requests per second per token (token bucket, one second's burst); over it: 429.
        retry_after_mode: ``seconds`` (ceil of the wait), ``zero`` (always 0) or ``absent`` (no header).
        latency_ms: mean added latency per request (+-20 % jitter).
        fault_rate: fraction of requests answered 500/502/503.
        drop_rate: fraction of requests whose connection is cut mid-body.
        page_cap: lowers every endpoint's maximum page size further.
        malformed: rules ``{"prefix": "/testcases", "count": 2, "kind": "invalid_json" | "missing_values"}``.
        public_base_url: the API root clients reach the sandbox at, if not ``http://host:port/v2``
            (behind a proxy or a container port mapping); ``self`` and ``next`` links use it.
        log_level: uvicorn log level.
    """
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    base_url = (public_base_url or f"http://{url_host(host)}:{bound_port}/v2").rstrip("/")
    sandbox = build_zephyr_sandbox(
        base_url=base_url,
        fixture=fixture,
        seed=seed,
        size=size,
        token_secret=token_secret,
        rate_limit=rate_limit,
        retry_after_mode=retry_after_mode,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        drop_rate=drop_rate,
        page_cap=page_cap,
        malformed=malformed,
    )
    counts = sandbox.store.counts()
    cases = sum(project["testcases"] for project in counts["per_project"].values())
    executions = sum(project["testexecutions"] for project in counts["per_project"].values())
    source = (
        f"fixture {fixture}"
        if isinstance(fixture, str | Path)
        else "fixture"
        if fixture
        else f"seed {seed}, size {size}"
    )
    print(
        f"Zephyr Scale Cloud sandbox ({source}: {counts['projects']} projects, {cases} test cases, {executions} executions)"
    )
    print(f"  API base URL : {base_url}")
    print(f"  admin        : {base_url.removesuffix('/v2')}/_sandbox/stats")
    print(f"ZEPHYR_BASE_URL={base_url}")
    print(f"ZEPHYR_API_TOKEN={sandbox.token}")
    # The browser session token its CDN of inline images takes (optional: without it they stay ledger lines).
    print(f"ZEPHYR_CDN_TOKEN={sandbox.cdn_token}", flush=True)
    serve_forever(sandbox.asgi, sock, log_level=log_level)
