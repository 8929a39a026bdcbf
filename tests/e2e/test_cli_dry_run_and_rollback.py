"""`migrate --dry-run`, a rehearsal, a re-run and `rollback`, each through the real `zephyr-qtest` command (a
child process, as a user runs it) on one project home, against the home's own qTest sandbox and a Zephyr
sandbox of one small generated project.

Proves, end to end: the dry run sends no write to qTest (the sandbox's request statistics) and prints and
files a plan; the sandbox keeps one address across commands (each one prints it, and the rehearsal's id map
holds that one site), so running `migrate --sandbox` again creates nothing new; `rollback` without `--yes`
names the counts and deletes nothing on "n"; with `--yes` it leaves the qTest project as it was before the
migration and clears that site's id map.

The rehearsal and the re-run publish (`--only qtest`) what the dry run extracted and transformed: their
extraction and dbt build again would add a minute and prove nothing more about qTest.

The test holds the home's sandbox itself (started as the commands start it: at the home's own address)
while the dry run and the re-run join it, so that their request statistics can be read; the rehearsal and
the rollbacks start it themselves. The qTest project is made before, so that "as it was before" has
something to compare with (qTest's API cannot delete a project a run created)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.qtest_snapshot import api_writes, snapshot
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, recorded_port, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.serve import start_in_thread

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).parent / "zephyr-qtest")
SEED = 11
SIZE = {"preset": "tiny", "projects": 1, "cases": 6, "executions": 12}
# Ends only a command that hangs (a failure); the commands themselves take seconds to a minute.
HUNG_AFTER_S = 600


@dataclass
class Command:
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"

    def qtest_url(self) -> str:
        """The qTest site the command printed (``qtest: <url>``)."""
        (url,) = set(re.findall(r"^qtest: (http://\S+)$", self.stdout, re.MULTILINE))
        return url


@dataclass
class Story:
    project: str
    state: Path
    reports: Path
    database_url: str
    project_id: int
    before: dict[str, Any]
    after_dry_run: dict[str, Any]
    dry_run: Command
    dry_run_writes: Counter[str]
    rehearsal: Command
    after_rehearsal: dict[str, Any]
    site_rows: dict[str, int]
    rerun: Command
    rerun_writes: Counter[str]
    after_rerun: dict[str, Any]
    cancelled: Command
    after_cancel: dict[str, Any]
    rollback: Command
    after_rollback: dict[str, Any]
    rows_after_rollback: dict[str, int]


def id_map_sites(database_url: str, project: str) -> dict[str, int]:
    """The id map's rows of the project, per target site."""
    with psycopg.connect(database_url) as conn:
        if conn.execute("select to_regclass('migration.id_map') is null").fetchone()[0]:
            return {}
        rows = conn.execute(
            "select target_site, count(*) from migration.id_map where project_key = %s group by 1", (project,)
        ).fetchall()
    return dict(rows)


@pytest.fixture(scope="module")
def story(
    new_embedded_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    root = tmp_path_factory.mktemp("cli_rollback")
    home, reports = root / "home", root / "reports"
    home.mkdir()
    state = home / "qtest-sandbox"  # the home's qTest sandbox, as every command on it uses
    database_url = new_embedded_database("zq_cli_rollback")
    (project,) = (item["key"] for item in generate(SEED, SIZE)["projects"])
    with start_in_thread(seed=SEED, size=SIZE) as zephyr:
        env = {
            **{
                key: value
                for key, value in os.environ.items()
                if not key.startswith("QTEST_") and key != "DAGSTER_HOME"
            },
            "ZEPHYR_QTEST_HOME": str(home),
            "ZEPHYR_QTEST_REPORTS": str(reports),
            "DATABASE_URL": database_url,
            "ZEPHYR_BASE_URL": zephyr.base_url,
            "ZEPHYR_API_TOKEN": zephyr.token,
        }

        def run(*args: str, answer: str | None = None) -> Command:
            done = subprocess.run(
                [CLI, *args],
                env=env,
                cwd=home,  # no .env of the repository's
                input=answer,
                stdin=None if answer is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=HUNG_AFTER_S,
            )
            return Command(done.returncode, done.stdout, done.stderr)

        @contextmanager
        def held() -> Iterator[QTestSandboxHandle]:
            """The home's sandbox, started here as the commands start it (at the home's own address)."""
            with start_qtest_in_thread(state, port=None, template="default") as qtest:
                yield qtest

        with held() as qtest:

            async def create_project() -> int:
                async with QtestClient(qtest.base_url, qtest.token) as client:
                    return int((await client.create_project(project, "made before the migration"))["id"])

            project_id = asyncio.run(create_project())
            before = snapshot(qtest, project_id)
            qtest.reset_stats()
            dry_run = run("migrate", "--project", project, "--dry-run", "--sandbox")
            dry_run_writes = api_writes(qtest)
            after_dry_run = snapshot(qtest, project_id)
        # Publishing what the dry run extracted and transformed (the extraction and dbt again would add a
        # minute and prove nothing more here); the command starts the sandbox itself.
        rehearsal = run("migrate", "--project", project, "--sandbox", "--only", "qtest")
        site_rows = id_map_sites(database_url, project)
        with held() as qtest:
            after_rehearsal = snapshot(qtest, project_id)
            qtest.reset_stats()
            rerun = run("migrate", "--project", project, "--sandbox", "--only", "qtest")
            rerun_writes = api_writes(qtest)
            after_rerun = snapshot(qtest, project_id)
        site = rehearsal.qtest_url()
        cancelled = run("rollback", "--project", project, "--site", site, answer="n\n")
        with held() as qtest:
            after_cancel = snapshot(qtest, project_id)
        rollback = run("rollback", "--project", project, "--site", site, "--yes")
        with held() as qtest:
            after_rollback = snapshot(qtest, project_id)
    yield Story(
        project=project,
        state=state,
        reports=reports,
        database_url=database_url,
        project_id=project_id,
        before=before,
        after_dry_run=after_dry_run,
        dry_run=dry_run,
        dry_run_writes=dry_run_writes,
        rehearsal=rehearsal,
        after_rehearsal=after_rehearsal,
        site_rows=site_rows,
        rerun=rerun,
        rerun_writes=rerun_writes,
        after_rerun=after_rerun,
        cancelled=cancelled,
        after_cancel=after_cancel,
        rollback=rollback,
        after_rollback=after_rollback,
        rows_after_rollback=id_map_sites(database_url, project),
    )


def home_site(story: Story) -> str:
    return f"http://127.0.0.1:{recorded_port(story.state)}"


def test_a_dry_run_writes_nothing_to_qtest_and_prints_and_files_the_plan(story: Story) -> None:
    dry_run = story.dry_run
    assert dry_run.code == 0, dry_run
    assert dry_run.qtest_url() == home_site(story), dry_run
    assert "served by another command already" in dry_run.stdout  # it used the sandbox held here
    assert story.dry_run_writes == Counter(), story.dry_run_writes
    assert story.after_dry_run == story.before
    assert "== dry run: the qTest writes the migration would make (none was sent) ==" in dry_run.stdout
    plan_file = story.reports / "dry-run-plan.json"
    assert f"plan: {plan_file}" in dry_run.stdout, dry_run
    (plan,) = json.loads(plan_file.read_text())["plans"]
    assert plan["project_key"] == story.project and plan["qtest_project_id"] == story.project_id
    creates = {name: counts["create"] for name, counts in plan["objects"].items() if counts["create"]}
    assert creates.get("test_case", 0) > 0 and creates.get("module", 0) > 0, plan["objects"]
    # The printed plan names the same creates.
    assert re.search(rf"^\s+test_case\s+{creates['test_case']}\s", dry_run.stdout, re.M), dry_run


def test_the_sandbox_keeps_its_address_and_a_second_run_creates_nothing(story: Story) -> None:
    rehearsal, rerun = story.rehearsal, story.rerun
    assert "failed:" not in rehearsal.stderr and re.search(r"^run \S+ succeeded", rehearsal.stdout, re.M), (
        rehearsal
    )
    # Started by the command itself, at the address the home's sandbox had before: one site in the id map.
    assert "served by another command already" not in rehearsal.stdout
    assert rehearsal.qtest_url() == rerun.qtest_url() == home_site(story)
    assert list(story.site_rows) == [home_site(story)] and story.site_rows[home_site(story)] > 1
    assert story.after_rehearsal["counts"]["test-cases"] > 0, story.after_rehearsal["counts"]
    assert "failed:" not in rerun.stderr and re.search(r"^run \S+ succeeded", rerun.stdout, re.M), rerun
    assert story.rerun_writes == Counter(), story.rerun_writes
    assert story.after_rerun == story.after_rehearsal


def test_rollback_without_yes_names_the_counts_and_deletes_nothing_on_no(story: Story) -> None:
    cancelled = story.cancelled
    assert cancelled.code == 1, cancelled
    cases = story.after_rehearsal["counts"]["test-cases"]
    assert f"Delete from qTest project {story.project_id} on {home_site(story)}" in cancelled.stdout, (
        cancelled
    )
    assert re.search(rf"\b{cases} test_case\b", cancelled.stdout), cancelled
    assert "rollback cancelled: nothing was deleted" in cancelled.stdout
    assert story.after_cancel == story.after_rehearsal


def test_rollback_leaves_the_qtest_project_as_it_was_before_the_migration(story: Story) -> None:
    rollback = story.rollback
    assert rollback.code == 0, rollback
    assert "deleted: " in rollback.stdout, rollback
    assert story.after_rollback == story.before
    assert story.rows_after_rollback == {}, story.rows_after_rollback
