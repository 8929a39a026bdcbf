"""Project discovery under Dagster's own sensor machinery: ``dagster sensor preview`` loads the code
location from workspace.yaml as the UI does, evaluates the sensor against a running Zephyr sandbox, and
prints what it would request. (The UI test, tests/e2e/test_ui.py, sees the daemon add the partitions.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle

REPO = Path(__file__).resolve().parents[2]


def test_sensor_preview_names_the_projects_it_would_add(
    shared_zephyr: ZephyrSandboxHandle, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "ZEPHYR_QTEST_HOME": str(tmp_path / "home"),
        "ZEPHYR_BASE_URL": shared_zephyr.base_url,
        "ZEPHYR_API_TOKEN": shared_zephyr.token,
    }
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "sensor",
            "preview",
            "zephyr_project_discovery",
            "-w",
            str(REPO / "workspace.yaml"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "coroutine" not in output and "Error" not in output, output
    listed = httpx.get(
        f"{shared_zephyr.base_url}/projects",
        params={"maxResults": 1000},
        headers={"Authorization": f"Bearer {shared_zephyr.token}"},
        timeout=30,
    ).json()["values"]
    keys = [project["key"] for project in listed if project.get("enabled", True)]
    assert keys
    for key in keys:
        assert key in output, (key, output)
    assert shared_zephyr.token not in output
