"""People: the Atlassian accounts a Zephyr tenant uses, who they are (Jira), and which qTest user each is.

Zephyr Scale's API names people by Atlassian account id only. The migration carries a person into qTest
through ``user_map.csv`` (account id -> qTest user name, a dbt seed the user reviews), and this module
fills it:

1. ``accounts_in_use``: every account id the extracted raw payloads hold (``zephyr_raw.*``: case, cycle
   and plan owners, executors, assignees, custom-field values shaped like an account id), with the role
   it plays and how often;
2. ``resolve``: each account's Jira user (display name, e-mail where the profile shows it) matched to the
   qTest user with the same e-mail address (case-insensitive), or the reason there is none;
3. ``write_user_map``: the matches as rows of ``user_map.csv``, after the rows already there, which are
   never changed (a row someone wrote by hand wins over any match); ``write_user_names``: Jira's display
   names in ``user_names.csv`` beside it, for the notes of logs whose executor stays unmapped.

A person is never matched by display name: two people may share one, and a wrong match would put
someone else's name on years of test results. Without an e-mail the person stays unmapped, named.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

USER_MAP_FILENAME = "user_map.csv"
USER_MAP_COLUMNS = ("zephyr_account_id", "qtest_username")
USER_NAMES_FILENAME = "user_names.csv"
USER_NAMES_COLUMNS = ("zephyr_account_id", "display_name")

# Atlassian account ids: 24 lower-case letters and digits (with a digit: canonical.custom_field's rule),
# or <digits>:<uuid>.
_ACCOUNT_PATTERN = r"^([0-9a-z]{24}|[0-9]+:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"

# (raw table, object words) of the objects that carry an owner and custom fields.
_OWNED = (("test_cases", "test case"), ("test_cycles", "test cycle"), ("test_plans", "test plan"))
_WITH_CUSTOM_FIELDS = (*_OWNED, ("test_executions", "test execution"))


def _mentions_sql(tables: set[str]) -> str:
    """One row per mention (account_id, role, project_key) over the raw tables that exist."""
    parts: list[str] = []
    for table, words in _OWNED:
        if table in tables:
            parts.append(
                f"select payload -> 'owner' ->> 'accountId', '{words} owner', project_key from zephyr_raw.{table}"
            )
    if "test_executions" in tables:
        for key in ("executedById", "assignedToId"):
            parts.append(
                f"select payload ->> '{key}', 'test execution {key}', project_key from zephyr_raw.test_executions"
            )
    for table, words in _WITH_CUSTOM_FIELDS:
        if table in tables:
            parts.append(
                f"select fields.value #>> '{{}}', '{words} customFields.' || fields.key, project_key "
                f"from zephyr_raw.{table} cross join lateral jsonb_each(case when "
                f"jsonb_typeof(payload -> 'customFields') = 'object' then payload -> 'customFields' "
                f"else '{{}}'::jsonb end) as fields where jsonb_typeof(fields.value) = 'string'"
            )
    return " union all ".join(parts)


@dataclass
class AccountUse:
    """One account id and what it does in the tenant: role -> number of objects."""

    account_id: str
    roles: Counter[str] = field(default_factory=Counter)
    projects: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.roles.values())

    def describe_roles(self) -> str:
        return ", ".join(
            f"{role} ({count})" for role, count in sorted(self.roles.items(), key=lambda r: (-r[1], r[0]))
        )


class NothingExtracted(RuntimeError):
    """The staging database holds no extracted Zephyr payloads (yet)."""


def accounts_in_use(conn: psycopg.Connection, projects: Sequence[str] = ()) -> list[AccountUse]:
    """Every Atlassian account id the raw payloads of ``projects`` (all when empty) mention, most used
    first. Raises ``NothingExtracted`` when no raw table exists."""
    tables = {
        row[0]
        for row in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'zephyr_raw'"
        ).fetchall()
    }
    mentions = _mentions_sql(tables)
    if not mentions:
        raise NothingExtracted(
            "no Zephyr payloads were extracted into this staging database: run "
            "`zephyr-qtest migrate --project KEY --only zephyr_raw` first (or the whole migration)"
        )
    query = (
        f"select account_id, role, project_key, count(*) from ({mentions}) as mentions (account_id, role, "
        f"project_key) where account_id ~ %(pattern)s and (cardinality(%(projects)s::text[]) = 0 or "
        f"project_key = any(%(projects)s::text[])) group by 1, 2, 3"
    )
    uses: dict[str, AccountUse] = {}
    rows = conn.execute(query, {"pattern": _ACCOUNT_PATTERN, "projects": list(projects)}).fetchall()
    for account_id, role, project_key, count in rows:
        # A 24-letter custom-field text without a digit is a word (canonical.custom_field's rule).
        if " customFields." in role and not any(c.isdigit() for c in account_id):
            continue
        use = uses.setdefault(account_id, AccountUse(account_id))
        use.roles[role] += int(count)
        use.projects.add(project_key)
    return sorted(uses.values(), key=lambda use: (-use.total, use.account_id))


# ------------------------------------------------------------------------------------------ resolving


@dataclass
class Resolution:
    """Who one account is, and the qTest user it maps to (or why none)."""

    use: AccountUse
    display_name: str | None = None
    email: str | None = None
    qtest_username: str | None = None
    # Why there is no qTest user (None when there is one).
    reason: str | None = None
    # The row user_map.csv already had (it wins; never rewritten).
    existing: str | None = None

    @property
    def account_id(self) -> str:
        return self.use.account_id


def resolve(
    uses: Iterable[AccountUse],
    jira_users: Mapping[str, Mapping[str, Any]] | None,
    qtest_users: Iterable[Mapping[str, Any]],
    existing: Mapping[str, str] | None = None,
) -> list[Resolution]:
    """Each account's Jira user matched to a qTest user by e-mail (case-insensitive). ``jira_users``
    None: Jira is not configured. ``existing``: the rows user_map.csv already has, which stand as they are."""
    by_email: dict[str, list[Mapping[str, Any]]] = {}
    for user in qtest_users:
        email = str(user.get("email") or "").strip().lower()
        if email:
            by_email.setdefault(email, []).append(user)
    existing = existing or {}
    resolutions: list[Resolution] = []
    for use in uses:
        resolution = Resolution(use)
        resolutions.append(resolution)
        jira_user = (jira_users or {}).get(use.account_id)
        if jira_user is not None:
            resolution.display_name = jira_user.get("displayName")
            resolution.email = jira_user.get("emailAddress") or None
        if use.account_id in existing:
            resolution.existing = existing[use.account_id]
            resolution.qtest_username = existing[use.account_id]
            continue
        resolution.reason = _match(resolution, jira_users, jira_user, by_email)
    return resolutions


def _match(
    resolution: Resolution,
    jira_users: Mapping[str, Mapping[str, Any]] | None,
    jira_user: Mapping[str, Any] | None,
    by_email: Mapping[str, list[Mapping[str, Any]]],
) -> str | None:
    """Set the qTest user name of ``resolution``; return why there is none instead."""
    if jira_users is None:
        return "not looked up: set JIRA_BASE_URL, JIRA_EMAIL and JIRA_API_TOKEN to resolve names and e-mails"
    if jira_user is None:
        return "Jira does not know this account (deleted, or another site's)"
    if not resolution.email:
        return (
            "Jira hides this person's e-mail address (their profile visibility): "
            "add a row by hand with their qTest user name"
        )
    candidates = by_email.get(resolution.email.lower(), [])
    if not candidates:
        return f"no qTest user has the e-mail address {resolution.email}"
    active = [user for user in candidates if user.get("status", 1) == 1]
    if len(active) > 1:
        names = ", ".join(sorted(str(user.get("username")) for user in active))
        return (
            f"several qTest users have the e-mail address {resolution.email} ({names}): add the row by hand"
        )
    if not active:
        return f"the qTest user {candidates[0].get('username')} with that e-mail address is inactive"
    resolution.qtest_username = str(active[0]["username"])
    return None


# ------------------------------------------------------------------------------------------ the file


def read_user_map(path: Path) -> dict[str, str]:
    """The rows of ``user_map.csv`` (account id -> qTest user name); none when the file does not exist."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in USER_MAP_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path} lacks the column(s) {', '.join(missing)}: its header must be "
                f"{','.join(USER_MAP_COLUMNS)}"
            )
        return {
            row["zephyr_account_id"].strip(): row["qtest_username"].strip()
            for row in reader
            if (row.get("zephyr_account_id") or "").strip() and (row.get("qtest_username") or "").strip()
        }


def ensure_user_map(path: Path) -> None:
    """Create an empty ``user_map.csv`` and ``user_names.csv`` (their headers only) beside it where there
    are none: dbt needs both seeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for file, columns in (
        (path, USER_MAP_COLUMNS),
        (path.with_name(USER_NAMES_FILENAME), USER_NAMES_COLUMNS),
    ):
        if not file.exists():
            file.write_text(",".join(columns) + "\n", encoding="utf-8")


def write_user_names(path: Path, resolutions: Iterable[Resolution]) -> None:
    """``user_names.csv`` beside ``user_map.csv``: each account's display name as Jira last answered it
    (names already there for accounts not looked up this time stay). Only for people to read: the note of
    a test log whose executor no qTest user maps names them."""
    names_file = path.with_name(USER_NAMES_FILENAME)
    names: dict[str, str] = {}
    if names_file.is_file():
        with names_file.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if (row.get("zephyr_account_id") or "").strip() and (row.get("display_name") or "").strip():
                    names[row["zephyr_account_id"].strip()] = row["display_name"].strip()
    names.update({r.account_id: r.display_name for r in resolutions if r.display_name})
    with names_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(USER_NAMES_COLUMNS)
        writer.writerows(sorted(names.items()))


def write_user_map(path: Path, resolutions: Iterable[Resolution]) -> list[Resolution]:
    """Append a row for every matched account the file has no row for; the rows already there stay
    exactly as they were (their order and text too). Returns the resolutions it added."""
    ensure_user_map(path)
    present = read_user_map(path)
    added = [
        resolution
        for resolution in resolutions
        if resolution.qtest_username and resolution.existing is None and resolution.account_id not in present
    ]
    if added:
        text = path.read_text(encoding="utf-8")
        with path.open("a", newline="", encoding="utf-8") as handle:
            if text and not text.endswith("\n"):
                handle.write("\n")
            writer = csv.writer(handle, lineterminator="\n")
            for resolution in sorted(added, key=lambda r: r.account_id):
                writer.writerow([resolution.account_id, resolution.qtest_username])
    return added


# ------------------------------------------------------------------------------------------ the services


async def qtest_site_users(client: Any) -> list[dict[str, Any]]:
    """Every user of the qTest site, inactive ones included, with their e-mail addresses:
    ``GET /api/v3/users/search`` (swagger: "Queries Users by Username", wrapped pages of up to 100 with
    ``includeInactiveUsers``), asked without a user name. Whether a real site answers every user to an
    empty ``username`` is unverified; the sandbox does."""
    from zephyr_qtest.lib.pagination import WrappedPagePaginator, paginate

    users: list[dict[str, Any]] = []
    params = {"includeInactiveUsers": "true"}
    async for page in paginate(client, "users/search", params, WrappedPagePaginator(100)):
        users.extend(user for user in page.items if isinstance(user, dict))
    return users


async def jira_users_of(
    site_url: str, email: str, api_token: str, account_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Jira's ``User`` of each account id it knows (``JiraClient.users``), after checking the credential
    with ``/myself`` so that a wrong token says so instead of looking like a site of strangers."""
    from zephyr_qtest.lib.jira import JiraClient

    async with JiraClient(site_url, email, api_token) as jira:
        await jira.myself()
        return await jira.users(account_ids)


def describe(resolution: Resolution) -> str:
    """One line for the command's table: who, and the qTest user or why none."""
    who = resolution.display_name or "?"
    if resolution.email:
        who += f" <{resolution.email}>"
    if resolution.existing is not None:
        outcome = f"-> {resolution.existing} (your row in user_map.csv, kept)"
    elif resolution.qtest_username:
        outcome = f"-> {resolution.qtest_username} (same e-mail address)"
    else:
        outcome = f"unmapped: {resolution.reason}"
    return f"{resolution.account_id}  {who}  {outcome}\n    {resolution.use.describe_roles()}"


@dataclass
class PeopleReport:
    """What ``resolve_people`` found and wrote."""

    resolutions: list[Resolution]
    added: list[Resolution]
    user_map: Path
    jira_asked: bool
    qtest_asked: bool

    def summary(self) -> str:
        kept = sum(1 for r in self.resolutions if r.existing is not None)
        matched = sum(1 for r in self.resolutions if r.existing is None and r.qtest_username)
        unmapped = sum(1 for r in self.resolutions if not r.qtest_username)
        return (
            f"{len(self.resolutions)} accounts: {matched} matched by e-mail, {kept} kept from user_map.csv, "
            f"{unmapped} unmapped; {len(self.added)} rows added to {self.user_map}"
        )


def resolve_people(
    database_url: str,
    *,
    user_map: Path,
    projects: Sequence[str] = (),
    jira: tuple[str, str, str] | None = None,
    qtest_client: Any = None,
    write: bool = True,
) -> PeopleReport:
    """The accounts of the extracted tenant (``projects``, all when empty), resolved through Jira
    (``jira``: site URL, e-mail, API token; None: not asked) and matched to the users of the qTest site
    (``qtest_client``: a callable making a ``QtestClient``; None: not asked); with ``write``, the matches
    appended to ``user_map`` (the file created when missing, its rows kept)."""
    import asyncio

    from zephyr_qtest.lib.store import Store

    with Store(database_url) as store, store.connection() as conn:
        uses = accounts_in_use(conn, projects)

    async def ask() -> tuple[dict[str, dict[str, Any]] | None, list[dict[str, Any]]]:
        jira_users = await jira_users_of(*jira, [use.account_id for use in uses]) if jira and uses else None
        if jira and not uses:
            jira_users = {}
        qtest_users: list[dict[str, Any]] = []
        if qtest_client is not None:
            async with qtest_client() as client:
                qtest_users = await qtest_site_users(client)
        return jira_users, qtest_users

    jira_users, qtest_users = asyncio.run(ask())
    resolutions = resolve(uses, jira_users, qtest_users, read_user_map(user_map))
    if qtest_client is None:
        for resolution in resolutions:
            if resolution.existing is None and resolution.qtest_username is None and jira_users is not None:
                resolution.reason = "not matched: no qTest site configured (QTEST_BASE_URL)"
    added = write_user_map(user_map, resolutions) if write else []
    if write:
        write_user_names(user_map, resolutions)
    return PeopleReport(resolutions, added, user_map, jira is not None, qtest_client is not None)
