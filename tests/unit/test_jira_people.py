"""The Jira Cloud sandbox and `JiraClient` over real HTTP, and the people rules of `lib/people.py`.

The sandbox serves the generated tenant's accounts as the company directory's people (Atlassian's
``/rest/api/3/user/bulk`` PageBean, Basic e-mail:token auth, e-mail addresses hidden where a profile hides
them); the client batches the ids and follows the pages whatever size the site serves. The matching
rules: by e-mail only, case-insensitive; a hidden e-mail, an account Jira does not know, a qTest user
missing, inactive or ambiguous each leave the person unmapped with that reason; a row already in
user_map.csv is never rewritten.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import Counter
from pathlib import Path

import httpx
import pytest

from zephyr_qtest.lib.http import AuthError
from zephyr_qtest.lib.jira import JiraClient
from zephyr_qtest.lib.people import AccountUse, read_user_map, resolve, write_user_map
from zephyr_qtest.sandbox.jira.directory import PEOPLE, accounts_in, people_of, qtest_people
from zephyr_qtest.sandbox.jira.serve import JiraSandboxHandle, start_jira_in_thread
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.generator import generate


@pytest.fixture(scope="module")
def jira() -> JiraSandboxHandle:
    # Pages of 3 at most, so that a batch of ids takes several pages.
    with start_jira_in_thread(seed=7, size="tiny", max_results_cap=3) as handle:
        yield handle


def test_the_sandbox_serves_the_generated_tenants_accounts_as_the_directorys_people() -> None:
    document = generate(7, "tiny")
    accounts = accounts_in(document)
    executors = {e["executedById"] for e in document["testexecutions"] if e.get("executedById")}
    owners = {c["owner"]["accountId"] for c in document["testcases"] if c.get("owner")}
    assert executors | owners <= set(accounts)
    people = people_of(accounts)
    # Deterministic: the same tenant gets the same people; each account its own person.
    assert people == people_of(accounts_in(generate(7, "tiny")))
    assert len({person.email for person in people.values()}) == len(accounts)


def test_bulk_answers_a_page_bean_and_hides_what_profiles_hide(jira: JiraSandboxHandle) -> None:
    ids = list(jira.people)
    first = httpx.get(
        f"{jira.base_url}/rest/api/3/user/bulk",
        params={"accountId": ids, "maxResults": 50},
        headers=jira.headers,
    )
    assert first.status_code == 200
    page = first.json()
    assert list(page) == ["self", "nextPage", "maxResults", "startAt", "total", "isLast", "values"]
    assert (
        page["maxResults"] == 3 and page["startAt"] == 0 and page["total"] == len(ids) and not page["isLast"]
    )
    user = page["values"][0]
    assert {"self", "accountId", "accountType", "displayName", "active"} <= set(user)
    hidden = [a for a, person in jira.people.items() if not person.email_visible]
    answered = httpx.get(
        f"{jira.base_url}/rest/api/3/user/bulk", params={"accountId": hidden[:1]}, headers=jira.headers
    ).json()
    assert answered["isLast"] and "nextPage" not in answered
    assert "emailAddress" not in answered["values"][0] and answered["values"][0]["displayName"]
    missing = httpx.get(f"{jira.base_url}/rest/api/3/user/bulk", headers=jira.headers)
    assert missing.status_code == 400 and missing.json()["errorMessages"]
    assert httpx.get(f"{jira.base_url}/rest/api/3/myself").status_code == 401


def test_the_client_batches_and_pages_every_account(jira: JiraSandboxHandle) -> None:
    ids = list(jira.people)
    unknown = "0123456789abcdef01234567"

    async def ask() -> dict:
        async with JiraClient(jira.base_url, jira.email, jira.token, batch_size=4, page_size=50) as client:
            assert (await client.myself())["emailAddress"] == jira.email
            return await client.users([*ids, unknown, ids[0]])

    found = asyncio.run(ask())
    assert set(found) == set(ids)
    for account, person in jira.people.items():
        assert found[account]["displayName"] == person.display_name
        assert found[account].get("emailAddress") == (
            (person.jira_email or person.email) if person.email_visible else None
        )
    stats = httpx.get(f"{jira.base_url}/_sandbox/stats").json()
    assert stats["by_path"]["user/bulk"] >= -(-len(ids) // 4) * 2  # batches of 4, pages of 3


def test_a_wrong_token_is_an_auth_error_that_never_shows_the_token(
    jira: JiraSandboxHandle, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "ATATT-not-the-token-0123456789"

    async def ask() -> None:
        async with JiraClient(jira.base_url, jira.email, wrong, max_retries=0) as client:
            await client.myself()

    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as raised:
        asyncio.run(ask())
    assert raised.value.status == 401
    assert wrong not in str(raised.value) and wrong not in caplog.text


# ------------------------------------------------------------------------------------------ matching


def _use(account: str) -> AccountUse:
    return AccountUse(account, Counter({"test execution executedById": 2}))


def test_people_match_by_e_mail_only_and_each_unmapped_one_says_why() -> None:
    jira_users = {
        "a1": {"accountId": "a1", "displayName": "Priya Raman", "emailAddress": "Priya.Raman@ACME.example"},
        "a2": {"accountId": "a2", "displayName": "Sofia Rossi"},  # e-mail hidden
        "a3": {"accountId": "a3", "displayName": "Grace Hopper", "emailAddress": "grace@acme.example"},
        "a5": {"accountId": "a5", "displayName": "Dave", "emailAddress": "dave@acme.example"},
        "a6": {"accountId": "a6", "displayName": "Twin", "emailAddress": "twin@acme.example"},
    }
    qtest_users = [
        {"id": 1, "username": "priya.raman@acme.example", "email": "priya.raman@acme.example", "status": 1},
        # Same display name as the hidden person: never a match.
        {"id": 2, "username": "sofia", "email": "sofia@acme.example", "status": 1, "first_name": "Sofia"},
        {"id": 3, "username": "dave", "email": "dave@acme.example", "status": 2},
        {"id": 4, "username": "twin1", "email": "twin@acme.example", "status": 1},
        {"id": 5, "username": "twin2", "email": "TWIN@acme.example", "status": 1},
    ]
    found = {
        r.account_id: r
        for r in resolve(
            [_use(a) for a in ("a1", "a2", "a3", "a4", "a5", "a6", "a7")],
            jira_users,
            qtest_users,
            {"a7": "hand.written"},
        )
    }
    assert found["a1"].qtest_username == "priya.raman@acme.example" and found["a1"].reason is None
    assert found["a2"].qtest_username is None and "hides this person's e-mail" in found["a2"].reason
    assert "no qTest user has the e-mail address grace@acme.example" in found["a3"].reason
    assert "does not know this account" in found["a4"].reason
    assert "inactive" in found["a5"].reason
    assert "several qTest users" in found["a6"].reason and found["a6"].qtest_username is None
    assert found["a7"].qtest_username == "hand.written" and found["a7"].existing == "hand.written"
    unasked = resolve([_use("a1")], None, qtest_users)[0]
    assert unasked.qtest_username is None and "JIRA_BASE_URL" in unasked.reason


def test_the_user_map_keeps_every_row_it_had(tmp_path: Path) -> None:
    path = tmp_path / "people" / "user_map.csv"
    hand = "zephyr_account_id,qtest_username\nb2,someone.else\n"
    path.parent.mkdir()
    path.write_text(hand)
    uses = [_use("b1"), _use("b2"), _use("b3")]
    jira_users = {
        a: {"accountId": a, "displayName": a, "emailAddress": f"{a}@x.example"} for a in ("b1", "b2", "b3")
    }
    qtest_users = [
        {"id": i, "username": f"{a}.q", "email": f"{a}@x.example", "status": 1}
        for i, a in enumerate(("b1", "b2"))
    ]
    resolutions = resolve(uses, jira_users, qtest_users, read_user_map(path))
    added = write_user_map(path, resolutions)
    assert [r.account_id for r in added] == ["b1"]
    assert path.read_text() == hand + "b1,b1.q\n"
    # Again: nothing new, nothing changed.
    assert write_user_map(path, resolve(uses, jira_users, qtest_users, read_user_map(path))) == []
    assert path.read_text() == hand + "b1,b1.q\n"


def test_most_people_are_qtest_users_not_all() -> None:
    in_qtest = qtest_people()
    assert len(PEOPLE) - 4 <= len(in_qtest) < len(PEOPLE)
    assert any(not person.email_visible for person in in_qtest)


def test_a_kept_qtest_sandbox_state_gets_the_company_people(tmp_path: Path) -> None:
    """A state directory an older sandbox made (without the directory's people) has them once reopened,
    with the ids it already gave kept."""
    with start_qtest_in_thread(tmp_path, seed=4) as qtest:
        before = httpx.get(f"{qtest.base_url}/api/v3/users/search", headers=qtest.headers).json()["items"]
    with sqlite3.connect(tmp_path / "qtest.sqlite3") as conn:
        conn.execute("DELETE FROM objects WHERE kind = 'user' AND body LIKE '%acme.example%'")
    with start_qtest_in_thread(tmp_path, seed=4) as qtest:
        after = httpx.get(
            f"{qtest.base_url}/api/v3/users/search", params={"pageSize": 100}, headers=qtest.headers
        ).json()["items"]
    emails = {user["email"] for user in after}
    assert {person.email for person in qtest_people()} <= emails
    kept = {user["username"]: user["id"] for user in after}
    assert all(kept[user["username"]] == user["id"] for user in before if "sandbox.local" in user["username"])
