"""The qTest sandbox's own address per state directory: what keeps every command on a project home on one
qTest site (the id map knows a site by its URL)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from zephyr_qtest.cli import build_parser, explain
from zephyr_qtest.sandbox.qtest.serve import (
    PORT_FILE,
    STABLE_PORTS,
    RunningQTestSandbox,
    SandboxPortBusy,
    recorded_port,
    start_or_join_qtest,
    start_qtest_in_thread,
)


def test_a_state_keeps_the_port_its_first_start_picked(tmp_path: Path) -> None:
    state = tmp_path / "qtest"
    assert recorded_port(state) is None
    with start_qtest_in_thread(state, port=None) as first:
        port = int(first.base_url.rsplit(":", 1)[1])
        token = first.token
    assert port in STABLE_PORTS and recorded_port(state) == port
    with start_qtest_in_thread(state, port=None) as again:
        assert again.base_url == f"http://127.0.0.1:{port}" and again.token == token
    # An explicit port serves it elsewhere and leaves the record as it was.
    with start_qtest_in_thread(state, port=0) as elsewhere:
        assert elsewhere.base_url != f"http://127.0.0.1:{port}"
    assert recorded_port(state) == port


def test_a_second_command_joins_the_sandbox_another_one_serves(tmp_path: Path) -> None:
    state = tmp_path / "qtest"
    with start_qtest_in_thread(state, port=None) as served:
        joined = start_or_join_qtest(state)
        assert isinstance(joined, RunningQTestSandbox)
        assert (joined.base_url, joined.api_url, joined.token) == (
            served.base_url,
            served.api_url,
            served.token,
        )
        joined.stop()  # leaves it to the process that serves it
        answer = httpx.get(f"{served.api_url}/projects", headers=served.headers, timeout=10)
        assert answer.status_code == 200


def test_another_program_on_the_recorded_port_is_named_with_what_to_change(tmp_path: Path) -> None:
    state, other = tmp_path / "qtest", tmp_path / "other"
    with start_qtest_in_thread(state, port=None):
        pass
    port = recorded_port(state)
    # Another sandbox (another state) on that port is not this state's: no joining it.
    with start_qtest_in_thread(other, port=port), pytest.raises(SandboxPortBusy) as busy:
        start_or_join_qtest(state)
    text = explain(busy.value)
    assert f"port {port}" in text and str(state / PORT_FILE) in text and "delete" in text, text
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(SandboxPortBusy):
            start_or_join_qtest(state)


def test_a_damaged_port_file_is_named(tmp_path: Path) -> None:
    (tmp_path / PORT_FILE).write_text("eighty\n")
    with pytest.raises(ValueError, match=str(tmp_path / PORT_FILE)):
        recorded_port(tmp_path)


def test_sandbox_serve_uses_the_states_own_port_unless_told() -> None:
    assert build_parser().parse_args(["sandbox", "serve"]).qtest_port is None
    assert build_parser().parse_args(["sandbox", "serve", "--qtest-port", "8091"]).qtest_port == 8091
