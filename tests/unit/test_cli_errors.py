"""The CLI ends an error with one line naming its cause and what to do; the traceback only with
--verbose; secrets never in either."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from zephyr_qtest.cli import explain
from zephyr_qtest.lib.redaction import register_secret

CLI = str(Path(sys.executable).parent / "zephyr-qtest")


def test_an_unreachable_staging_database_names_the_setting() -> None:
    register_secret("sekret-pw")
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect("postgresql://postgres:sekret-pw@127.0.0.1:1/nowhere", connect_timeout=5)
    line = explain(caught.value)
    assert "\n" not in line and "DATABASE_URL" in line and "embedded server" in line
    assert "sekret-pw" not in line


def run_cli(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        env={**os.environ, "ZEPHYR_QTEST_HOME": str(tmp_path / "home"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    done = run_cli(
        "migrate", "--project", "SHOP", "--sandbox", tmp_path=tmp_path, ZEPHYR_QTEST_WHEN_BUSY="sometimes"
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("zephyr-qtest migrate:") and "ZEPHYR_QTEST_WHEN_BUSY" in lines[0]


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    done = run_cli(
        "--verbose",
        "migrate",
        "--project",
        "SHOP",
        "--sandbox",
        tmp_path=tmp_path,
        ZEPHYR_QTEST_WHEN_BUSY="sometimes",
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("zephyr-qtest migrate:")
