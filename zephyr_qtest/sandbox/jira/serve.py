"""Run the Jira Cloud sandbox on a background thread (what the demo and the tests use): a real uvicorn
server on 127.0.0.1, on a free port, serving the people of a Zephyr tenant (a fixture document, or the
one the Zephyr sandbox's generator makes for a seed and size)."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from zephyr_qtest.sandbox.common import (
    SandboxHandle,
    ServerThread,
    bind_socket,
    start_server_thread,
    url_host,
)
from zephyr_qtest.sandbox.jira.app import MAX_RESULTS_CAP, JiraSandbox, build_jira_sandbox
from zephyr_qtest.sandbox.zephyr.generator import generate


class JiraSandboxHandle(SandboxHandle):
    """A Jira sandbox served on a thread: ``base_url`` (the site, e.g. ``http://127.0.0.1:PORT``),
    ``email`` and ``token`` (the Basic credential), ``people`` (account id -> directory person), ``issues``
    (issue id -> the Jira issue, ``issues.py``)."""

    def __init__(self, sandbox: JiraSandbox, server: ServerThread) -> None:
        super().__init__(server, token=sandbox.token, admin_url=f"{sandbox.base_url}/_sandbox")
        self.sandbox = sandbox
        self.base_url = sandbox.base_url
        self.email = sandbox.email
        self.people = sandbox.people
        self.issues = sandbox.issues

    @property
    def headers(self) -> dict[str, str]:
        credential = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        return {"Authorization": f"Basic {credential}"}


def start_jira_in_thread(
    *,
    document: Mapping[str, Any] | None = None,
    seed: int = 0,
    size: str | Mapping[str, Any] = "tiny",
    host: str = "127.0.0.1",
    port: int = 0,
    max_results_cap: int = MAX_RESULTS_CAP,
    startup_timeout: float = 30.0,
) -> JiraSandboxHandle:
    """Serve the people of ``document`` (default: the generated tenant of ``seed`` and ``size``, as the
    Zephyr sandbox serves it) and return the handle once the server accepts connections."""
    sock = bind_socket(host, port)
    root_url = f"http://{url_host(host)}:{sock.getsockname()[1]}"
    try:
        sandbox = build_jira_sandbox(
            base_url=root_url,
            document=document if document is not None else generate(seed, size),
            seed=seed,
            max_results_cap=max_results_cap,
        )
    except BaseException:
        sock.close()
        raise
    server = start_server_thread(
        sandbox.asgi,
        sock,
        name=f"jira-sandbox-{sock.getsockname()[1]}",
        description="the Jira sandbox",
        url=root_url,
        startup_timeout=startup_timeout,
    )
    return JiraSandboxHandle(sandbox, server)


@contextmanager
def jira_sandbox(**kwargs: Any) -> Iterator[JiraSandboxHandle]:
    """``with jira_sandbox(seed=7, size="small") as jira: ...``: ``start_jira_in_thread`` + ``stop``."""
    handle = start_jira_in_thread(**kwargs)
    try:
        yield handle
    finally:
        handle.stop()
