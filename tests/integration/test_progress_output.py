"""What `zephyr-qtest migrate` prints when its output is piped: a bounded number of lines, no DEBUG line,
one start and one end line per stage, and the path of a log file that holds Dagster's DEBUG events.

One real run of the command (a child process, as a user runs it) on a Zephyr sandbox of one small
project, the extraction only (`--only zephyr_raw`: the transform and publishing stages report through the
same Dagster events, and their dbt and qTest time would add a minute); shared by the tests of the module.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from zephyr_qtest.lib.jira_issues import RAW_ENTITY as JIRA_ISSUES
from zephyr_qtest.lib.zephyr.extract import ENTITIES
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.serve import start_in_thread

CLI = str(Path(sys.executable).parent / "zephyr-qtest")
SEED = 5
SIZE = {"preset": "tiny", "projects": 1, "cases": 5, "executions": 10}


@dataclass
class Piped:
    code: int
    lines: list[str]
    stderr: str


@pytest.fixture(scope="module")
def piped(
    new_embedded_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Piped]:
    database_url = new_embedded_database("zq_progress")
    home = tmp_path_factory.mktemp("progress_home")
    (project,) = (item["key"] for item in generate(SEED, SIZE)["projects"])
    with start_in_thread(seed=SEED, size=SIZE) as zephyr:
        done = subprocess.run(
            [CLI, "migrate", "--sandbox", "--project", project, "--only", "zephyr_raw"],
            env={
                **os.environ,
                "ZEPHYR_QTEST_HOME": str(home),
                "DATABASE_URL": database_url,
                "ZEPHYR_BASE_URL": zephyr.base_url,
                "ZEPHYR_API_TOKEN": zephyr.token,
            },
            cwd=home,  # no .env
            capture_output=True,
            text=True,
            timeout=600,
        )
    yield Piped(done.returncode, done.stdout.splitlines(), done.stderr)


def log_path(lines: list[str]) -> Path:
    (path,) = {match.group(1) for line in lines if (match := re.search(r"log.*: (/\S+\.log)$", line))}
    return Path(path)


def test_piped_output_is_a_few_lines_a_stage(piped: Piped) -> None:
    assert piped.code == 0, piped.stderr
    assert not [line for line in piped.lines if "DEBUG" in line or "\x1b" in line]
    starts = Counter(line.split()[2] for line in piped.lines if line.startswith("start extract "))
    ends = Counter(line.split()[2] for line in piped.lines if line.startswith("end   extract "))
    # Every raw asset: the Zephyr entities and the linked Jira issues (asked of Jira when it is configured).
    entities = {entity.name for entity in ENTITIES} | {JIRA_ISSUES}
    assert starts == ends == dict.fromkeys(entities, 1), (starts, ends)
    assert all("done in" in line for line in piped.lines if line.startswith("end "))
    # Progress lines between them: at most one per tenth of a stage (plus the rare slow one).
    assert len(piped.lines) < 100 + 12 * len(entities), "\n".join(piped.lines)
    assert "Traceback" not in piped.stderr


def test_the_log_named_at_the_start_and_the_end_holds_the_debug_events(piped: Piped) -> None:
    named = [line for line in piped.lines if re.search(r"log.*: /\S+\.log$", line)]
    # At the start (before the first stage; the preflight's table comes before it) and as the last line.
    first_stage = next(index for index, line in enumerate(piped.lines) if line.startswith("start "))
    assert len(named) == 2 and piped.lines.index(named[0]) < first_stage, piped.lines
    assert named[1] == piped.lines[-1], piped.lines
    log = log_path(piped.lines).read_text()
    assert " - DEBUG - " in log and "STEP_START" in log and "STEP_SUCCESS" in log
    # What the terminal leaves out is in the log: every step's events.
    for entity in ENTITIES:
        assert f'Finished execution of step "zephyr_raw__{entity.name}"' in log
