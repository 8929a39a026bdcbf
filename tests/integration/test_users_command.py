"""`zephyr-qtest users` end to end on an extracted tenant (a copy of the session's transformed database):
every Atlassian account id of the raw payloads listed with its roles, resolved through the Jira sandbox
(real HTTP, the tenant's people) and matched to the qTest sandbox's users by e-mail; user_map.csv written
where ZEPHYR_QTEST_USER_MAP_DIR says, a second run adding nothing and a hand-written row kept as it was."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import SHARED_ZEPHYR_SEED, SHARED_ZEPHYR_SIZE
from tests.graph_helpers import TransformedDatabase
from zephyr_qtest.cli import main
from zephyr_qtest.lib.dbt import DBT_PROJECT_DIR
from zephyr_qtest.lib.people import read_user_map
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.sandbox.jira.serve import start_jira_in_thread
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread

pytestmark = pytest.mark.e2e


def raw_accounts(database_url: str) -> set[str]:
    """The account ids the raw payloads hold as owners, executors and assignees (plain SQL, not the
    command's query)."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "select payload -> 'owner' ->> 'accountId' from zephyr_raw.test_cases "
            "union select payload -> 'owner' ->> 'accountId' from zephyr_raw.test_cycles "
            "union select payload ->> 'executedById' from zephyr_raw.test_executions "
            "union select payload ->> 'assignedToId' from zephyr_raw.test_executions"
        ).fetchall()
    return {row[0] for row in rows if row[0]}


def test_users_lists_resolves_matches_and_writes_the_user_map(
    transformed_database: TransformedDatabase,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database_url = transformed_database.copy("zq_users")
    # dbt reads the user map inside its project only (ZEPHYR_QTEST_USER_MAP_DIR, git-ignored there).
    user_map_dir = DBT_PROJECT_DIR / ".user_maps" / f"test-{uuid.uuid4().hex[:10]}"
    request.addfinalizer(lambda: shutil.rmtree(user_map_dir, ignore_errors=True))
    monkeypatch.chdir(tmp_path)  # no .env
    with (
        start_jira_in_thread(seed=SHARED_ZEPHYR_SEED, size=SHARED_ZEPHYR_SIZE) as jira,
        start_qtest_in_thread(tmp_path / "qtest", seed=2) as qtest,
    ):
        for name, value in {
            "DATABASE_URL": database_url,
            "JIRA_BASE_URL": jira.base_url,
            "JIRA_EMAIL": jira.email,
            "JIRA_API_TOKEN": jira.token,
            "QTEST_BASE_URL": qtest.base_url,
            "QTEST_API_TOKEN": qtest.token,
            "ZEPHYR_QTEST_USER_MAP_DIR": str(user_map_dir),
        }.items():
            monkeypatch.setenv(name, value)

        assert main(["users"]) == 0
        out = capsys.readouterr().out
        accounts = raw_accounts(database_url)
        assert accounts and accounts <= set(jira.people)
        listed = set(re.findall(r"^(\S+)  ", out, flags=re.MULTILINE))
        assert accounts <= listed, accounts - listed
        assert "test execution executedById (" in out and "test case owner (" in out
        mapped = read_user_map(user_map_dir / "user_map.csv")
        for account in listed & set(jira.people):
            person = jira.people[account]
            if person.in_qtest and person.email_visible:
                assert mapped[account] == person.email, account
            else:
                assert account not in mapped
        hidden = [a for a in listed if not jira.people[a].email_visible]
        for account in hidden:
            assert re.search(rf"^{re.escape(account)} .*hides this person's e-mail", out, flags=re.MULTILINE)
        assert jira.token not in out and qtest.token not in out

        # A row written by hand stays; a second run adds nothing.
        path = user_map_dir / "user_map.csv"
        first, *_ = sorted(mapped)
        edited = path.read_text().replace(f"{first},{mapped[first]}", f"{first},hand.picked")
        path.write_text(edited)
        assert main(["users"]) == 0
        again = capsys.readouterr().out
        assert path.read_text() == edited
        assert "0 rows added" in again and "-> hand.picked (your row in user_map.csv, kept)" in again
