"""One bad value stops nothing else: an execution whose status qTest does not know.

A tenant where one manual execution is in "Old Skip", an archived Zephyr status with no row in
``status_map.csv`` (the Zephyr sandbox's hard case ``add_unknown_execution_status``), extracted, built and
published like any other: the mart passes the Zephyr name through (``coalesce(status_map.qtest_name,
status)``, as it does for any unmapped status) and qTest has no such execution status. The publishing run
goes on: ``test_logs`` materializes with its check ``test_logs_all_published`` failed, naming the execution
and the reason (also in ``migration.id_map``), every attachment arrives, the reconciliation runs, the
ledger names the status with its remedy, and the CLI's check lines name it. Once the status is mapped, a
re-run sends only that one log and every check passes.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tests.conftest import SHARED_ZEPHYR_SEED, SHARED_ZEPHYR_SIZE
from tests.graph_helpers import materialize_partition
from tests.integration.test_publish import ALL_ASSETS, PUBLISH_ASSETS, proof_of, published, qtest_project_id
from tests.proof_helpers import ledger_of
from zephyr_qtest.cli import REPO_ROOT, failed_publish_checks
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.proof.ledger import Reason
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.generator.hard_cases import (
    UNKNOWN_EXECUTION_STATUS,
    add_unknown_execution_status,
)
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

UNKNOWN = UNKNOWN_EXECUTION_STATUS
CLI = Path(sys.executable).with_name("zephyr-qtest")


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[ZephyrSandboxHandle, str, str]]:
    """The session's generated tenant with one execution of its first project in "Old Skip": the sandbox,
    the project and the execution's key."""
    doc = copy.deepcopy(generate(SHARED_ZEPHYR_SEED, SHARED_ZEPHYR_SIZE))
    project = sorted(p["key"] for p in doc["projects"])[0]
    key = add_unknown_execution_status(doc, project)
    with start_in_thread(fixture=doc) as zephyr:
        yield zephyr, project, key


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == "qtest"}


def attachments_expected(database_url: str, project: str) -> int:
    """The files of the mart, and the inline images uploaded beside them (data: pictures of cases)."""
    with connect(database_url) as conn:
        files = conn.execute(
            "select count(*) from qtest_mapping.qtest_attachments where project_key = %s "
            "and skip_reason is null and qtest_object_type is not null",
            (project,),
        ).fetchone()[0]
        pictures = conn.execute(
            "select count(*) from migration.id_map where project_key = %s and object_type = 'inline_image' "
            "and state = 'done'",
            (project,),
        ).fetchone()[0]
    return int(files) + int(pictures)


def test_an_unknown_status_fails_its_check_and_stops_nothing_else(
    tenant: tuple[ZephyrSandboxHandle, str, str],
    new_embedded_database: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    zephyr, project, key = tenant
    database_url = new_embedded_database("zq_unknown_status")
    with start_qtest_in_thread(tmp_path_factory.mktemp("qtest_unknown_status"), seed=1) as qtest:
        # Extracted, built and published in one run: raw and dbt give the mart the unmapped name.
        first = materialize_partition(
            ALL_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest
        )
        # The run went on: every stage materialized, the reconciliation included.
        assert first.success
        metadata = published(first)
        assert set(metadata) >= {"test_logs", "attachments", "reconciliation"}, set(metadata)
        assert metadata["test_logs"]["failed"] == 1, metadata["test_logs"]
        # The check names the execution and why; the id map keeps it as failed with that reason.
        check = checks(first)["test_logs_all_published"]
        assert not check.passed and key in check.description and UNKNOWN in check.description, check
        assert "status_map.csv" in check.description and "a re-run sends them again" in check.description
        assert key in str(check.metadata["failures"].value)
        with connect(database_url) as conn:
            state, error = conn.execute(
                "select state, error from migration.id_map where project_key = %s and object_type = "
                "'test_log' and source_key = %s",
                (project, key),
            ).fetchone()
        assert state == "failed" and UNKNOWN in error, (state, error)
        # The proof (raw payloads against qTest) names the status, once, with the seed to edit.
        (line,) = [line for line in ledger_of(database_url, qtest, project).lines if line.object_key == key]
        assert (line.field, line.value, line.reason) == ("testExecutionStatus", UNKNOWN, Reason.NO_MAPPING), (
            line
        )
        assert "status_map.csv" in line.remedy and f"TEST_EXECUTION,{UNKNOWN}," in line.remedy, line
        # Every other stage published everything, every attachment included, read back by the reconciliation.
        assert all(e.passed for name, e in checks(first).items() if name != "test_logs_all_published"
                   and name.endswith("_all_published")), checks(first)  # fmt: skip
        pid = qtest_project_id(database_url, project)
        expected = attachments_expected(database_url, project)
        assert expected > 0 and qtest.counts(pid)["attachments"] == expected
        assert checks(first)["attachment_equal"].metadata["loader_equal"].value
        assert not checks(first)["test_log_equal"].passed
        # What `migrate` prints and counts as failed (exit 1): one line, naming the check and the execution.
        (line,) = failed_publish_checks(first)
        assert line.startswith("check qtest/test_logs:test_logs_all_published failed: ") and key in line

        # `migrate` itself (a re-run before the fix): exit 1, the check's line naming the execution, and
        # what to do before the re-run that finishes it.
        home = tmp_path_factory.mktemp("unknown_status_home")
        (home / "dagster_home").mkdir()
        shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster_home" / "dagster.yaml")
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ZEPHYR_BASE_URL": zephyr.base_url,
            "ZEPHYR_API_TOKEN": zephyr.token,
            "QTEST_BASE_URL": qtest.base_url,
            "QTEST_API_TOKEN": qtest.token,
            "DAGSTER_HOME": str(home / "dagster_home"),
            "ZEPHYR_QTEST_HOME": str(home / "home"),
            "ZEPHYR_QTEST_REPORTS": str(home / "reports"),
        }
        migrate = subprocess.run(
            [str(CLI), "migrate", "--project", project, "--only", "qtest"],
            env=env,
            capture_output=True,
            text=True,
        )
        output = migrate.stdout + migrate.stderr
        assert migrate.returncode == 1, output[-3000:]
        (line,) = [line for line in output.splitlines() if "_all_published failed" in line]
        assert line.startswith("check qtest/test_logs:test_logs_all_published failed: ") and key in line, line
        assert f"failed: {project}: change what each failure above names" in output, output[-3000:]
        # The reconciliation ran in that run too: its verdict is printed with the report's real path.
        (verdict,) = [line for line in output.splitlines() if line.startswith(f"  {project}: ")]
        assert verdict.split(": ", 1)[1].startswith(("complete", "incomplete")), verdict
        (report,) = [line.split("report: ", 1)[1] for line in output.splitlines() if "    report: " in line]
        assert Path(report).is_absolute() and Path(report).is_file()
        assert Path(report).parent == (home / "reports").resolve()

        # The fix (a status_map.csv row for "Old Skip"; dbt then gives the mart qTest's name): the re-run
        # sends that one log, and nothing else.
        with connect(database_url) as conn:
            conn.execute(
                "update qtest_mapping.qtest_test_logs set status = 'Incomplete' "
                "where project_key = %s and source_key = %s",
                (project, key),
            )
        again = materialize_partition(
            PUBLISH_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest
        )
        assert again.success and failed_publish_checks(again) == []
        sent: dict[str, Any] = published(again)
        for stage, values in sent.items():
            if stage == "reconciliation":
                continue
            created = values["created"] + values["updated"] + values["adopted"]
            assert created == (1 if stage == "test_logs" else 0), (stage, values)
        # Every publishing check passes now, and the loader's check finds nothing missing.
        assert all(e.passed for name, e in checks(again).items() if name.endswith("_all_published")), {
            name: e.description for name, e in checks(again).items() if not e.passed
        }
        assert proof_of(again, database_url)["loader_check_equal"] is True
        assert qtest.counts(pid)["attachments"] == expected
