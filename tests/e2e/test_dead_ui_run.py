"""A run launched from the UI whose process dies never blocks the next one: under `dagster dev` (webserver,
daemon, code server, the project's dagster.yaml with one slot per pool), a run is launched through
GraphQL as the UI launches it, its pooled step waits on a Zephyr that never answers, and the whole
machine's Dagster dies at once (SIGKILL to `dagster dev`, its code server, the run and its step: a power
loss or an OOM kill of the group). When only the run's process dies, its code server sees it and fails
the run itself, and run monitoring frees the slot; after a crash of everything nobody is left to see it:
the run stays STARTED with its slot claimed. After `dagster dev` starts again, the daemon's
`dead_run_closer` sensor marks that run failed and frees its slot, and the next run gets the slot."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from tests.e2e.processes import free_port, stop_group
from zephyr_qtest.defs.partitions import zephyr_projects

REPO = Path(__file__).resolve().parents[2]
PROJECT = "SHOP"
POOL = "zephyr_api"
# The deadline only bounds a hang; every wait below waits for a state, never for a time.
DEADLINE_S = 600

LAUNCH = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""
LOCATION = (
    "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { __typename } } } } }"
)


@pytest.fixture
def silent_zephyr() -> Iterator[str]:
    """A Zephyr that accepts connections and never answers: a pooled raw step holds its slot, waiting."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v2"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def _wait_for(what: str, probe: Callable[[], Any], process: subprocess.Popen[str]) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"dagster dev exited while waiting for {what}"
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"never saw {what}")


def _descendants(pid: int) -> list[int]:
    """The processes under `pid` (the run's step processes), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _graphql(port: int, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
    )
    return response.json()["data"]


def _launch(port: int) -> str:
    params = {
        "selector": {
            "repositoryLocationName": "zephyr_qtest",
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": ["zephyr_raw", "projects"]}],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": PROJECT}]},
    }
    launched = _graphql(port, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def _slot_holders(home: Path) -> set[str]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def _run(home: Path, run_id: str) -> dg.DagsterRun:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        return run


def _worker_pid(home: Path, run_id: str) -> int | None:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            if (entry.message or "").startswith("Started process for run (pid: "):
                return int(entry.message.split("pid: ")[1].rstrip(")."))
    return None


@pytest.mark.e2e
def test_a_dead_ui_run_is_closed_and_its_slot_freed(
    tmp_path: Path, silent_zephyr: str, embedded_databases: Callable[[], str]
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(zephyr_projects.name, [PROJECT])
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ZEPHYR_QTEST_HOME": str(tmp_path / "home"),
        "ZEPHYR_BASE_URL": silent_zephyr,
        "ZEPHYR_API_TOKEN": "not-a-real-token",
        "DATABASE_URL": embedded_databases(),
        # `dagster dev` starts `dagster-webserver` and `dagster-daemon` from PATH.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    command = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(REPO / "workspace.yaml")]

    def start() -> tuple[subprocess.Popen[str], int]:
        port = free_port()
        process = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

        def loaded() -> dict[str, Any] | None:
            try:
                entries = _graphql(port, LOCATION)["workspaceOrError"]["locationEntries"]
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                return None
            return (entries[0]["locationOrLoadError"] if entries else None) or None

        location = _wait_for("the code location", loaded, process)
        assert location["__typename"] == "RepositoryLocation", location
        return process, port

    process, port = start()
    try:
        first = _launch(port)
        _wait_for(
            "the first run's step holding the zephyr_api slot", lambda: first in _slot_holders(home), process
        )
        worker = _wait_for("the first run's process", lambda: _worker_pid(home, first), process)
        for pid in [process.pid, *_descendants(process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        assert _run(home, first).status == dg.DagsterRunStatus.STARTED
        assert first in _slot_holders(home)

        process, port = start()
        _wait_for(
            "the dead run marked failed and its slot freed",
            lambda: (
                _run(home, first).status == dg.DagsterRunStatus.FAILURE and first not in _slot_holders(home)
            ),
            process,
        )
        with dg.DagsterInstance.from_config(str(home)) as instance:
            messages = [entry.message or "" for entry in instance.all_logs(first)]
        assert any(
            f"pid {worker}" in message and "closed by the dead_run_closer sensor" in message
            for message in messages
        ), messages[-5:]

        # The next run of the project is not blocked: its pooled step gets the slot.
        second = _launch(port)
        _wait_for("the next run's step holding the slot", lambda: second in _slot_holders(home), process)
    finally:
        stop_group(process)
