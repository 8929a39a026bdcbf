"""`zephyr-qtest ui` serves the Dagster UI, with or without the venv on PATH: its GraphQL API shows the
code location with every asset, and the daemon's project-discovery sensor adds the sandbox's projects as
partitions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import free_port, stop_group
from zephyr_qtest.definitions import defs

REPO = Path(__file__).resolve().parents[2]

QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on PythonError { message }
        }
      }
    }
  }
  assetNodes { assetKey { path } }
}
"""


PARTITIONS_QUERY = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode { partitionKeys } }
}
"""


@pytest.mark.e2e
def test_ui_loads_the_code_location_with_every_asset(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ZEPHYR_QTEST_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    # As a user runs `.venv/bin/zephyr-qtest ui` without activating the venv: its bin is not on PATH.
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    for name in ("ZEPHYR_BASE_URL", "ZEPHYR_API_TOKEN"):
        env.pop(name, None)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "zephyr-qtest"), "ui", "--port", str(port), "--size", "tiny"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        payload = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=10)
                payload = response.json()["data"]
                entries = payload["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["locationOrLoadError"] and payload["assetNodes"]:
                    break
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            time.sleep(1)
        assert process.poll() is None, "the UI process exited early"
        assert payload is not None, "the UI never answered"
        entries = payload["workspaceOrError"]["locationEntries"]
        assert [entry["name"] for entry in entries] == ["zephyr_qtest"]
        assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
        served = {tuple(node["assetKey"]["path"]) for node in payload["assetNodes"]}
        graph = defs().resolve_asset_graph()
        expected = {tuple(key.path) for key in graph.get_all_asset_keys()}
        assert served == expected

        # The daemon ticks the discovery sensor (RUNNING by default): the projects become partitions.
        partitioned = next(key for key in graph.get_all_asset_keys() if graph.get(key).partitions_def)
        keys: list[str] = []
        while time.monotonic() < deadline + 180 and process.poll() is None and not keys:
            response = httpx.post(
                f"http://127.0.0.1:{port}/graphql",
                json={"query": PARTITIONS_QUERY, "variables": {"path": list(partitioned.path)}},
                timeout=10,
            )
            keys = response.json()["data"]["assetNodeOrError"].get("partitionKeys") or []
            if not keys:
                time.sleep(1)
        assert process.poll() is None, "the UI process exited"
        assert keys, "the discovery sensor added no partition"
        assert all(key.isupper() for key in keys), keys
    finally:
        stop_group(process)
