"""Preflight: what a migration needs, checked in seconds and before anything is written.

``zephyr-qtest preflight`` prints the table; ``migrate`` (and, with the sandboxes, ``demo``) runs the same
checks first, so that a wrong token, an unreachable host, an unknown project or a staging database that
cannot be used fails before the extraction, before a Dagster partition is added, and names the setting
to change. Every check only reads: listings of both services (the same clients as the run, with short
timeouts and no retry, so an unreachable host is reported after one attempt), the staging database
(``select version()`` and the id map), the dbt seeds and the user map.

What can be known before extraction is checked; what depends on the extracted payloads (Zephyr's custom
fields, which accounts a project uses when nothing was extracted yet) is a row saying so, never a guess.
The fields the run would create come from the rule the publishing stages use (``field_setup``): the
mapped values of Zephyr's priorities, test-case statuses and environments, and the Zephyr key fields,
compared with the target project's field settings.

No ``import dagster`` here: the CLI calls it in its own process, before any child process or run.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from zephyr_qtest.lib.dbt import DBT_PROJECT_DIR
from zephyr_qtest.lib.http import AdaptiveRateLimiter, ApiError, AuthError, NotFoundError, TransportError
from zephyr_qtest.lib.jira import JiraClient
from zephyr_qtest.lib.jira_issues import linked_issue_ids_in
from zephyr_qtest.lib.people import NothingExtracted, accounts_in_use, read_user_map
from zephyr_qtest.lib.postgres import redact_url
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.field_setup import (
    CREATE_FIELDS_SETTING,
    INHERITED_VALUES,
    FieldNeed,
    _missing_values,
    _values_field,
    name_values,
    needed_fields,
)
from zephyr_qtest.lib.qtest.id_map import NO_SITE, site_of
from zephyr_qtest.lib.qtest.kinds.base import ZEPHYR_KEY_LABEL
from zephyr_qtest.lib.qtest.loader import project_moved_remedy
from zephyr_qtest.lib.zephyr.client import ZephyrClient
from zephyr_qtest.settings import Settings

# A result of a check. BLOCKER makes preflight (and the migration it precedes) stop.
OK, BLOCKER, WARNING, LATER = "ok", "BLOCKER", "warning", "after extraction"
# What only the target project's template can tell, and the project does not exist yet.
NOT_YET = "not yet known"
# Preflight's calls: a short connect timeout and no retry, so an unreachable host is reported at once
# (the run's clients retry transport errors with backoff, which takes minutes on a dead host).
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 20.0
MAX_RATE_LIMITED_RETRIES = 3
# The oldest PostgreSQL the staging SQL runs on (README: any PostgreSQL >= 13).
MIN_POSTGRES_MAJOR = 13
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
ZEPHYR_URL_HINT = "the API base, e.g. https://api.zephyrscale.smartbear.com/v2 (EU: https://eu.api.zephyrscale.smartbear.com/v2)"
QTEST_URL_HINT = "the site, e.g. https://acme.qtestnet.com (without /api/v3)"
# Field-settings object types preflight reads: those of the fields the run sets, and the ones they inherit
# values from.
_FIELD_OBJECT_TYPES = ("test-cases", "test-runs", "test-suites", "releases")
# Permissions the publishing stages use on the target project (UserProfile of the swagger's
# GET /projects/{id}/user-profiles/current): what they create, and approving test cases.
_NEEDED_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("module", "create"),
    ("test_case", "create"),
    ("test_case", "edit"),
    ("test_cycle", "create"),
    ("release", "create"),
    ("test_suite", "create"),
    ("test_run", "create"),
    ("test_run", "execute"),
)


@dataclass(frozen=True)
class Check:
    """One row of the table: what was checked, its result, what was found and what to change."""

    name: str
    result: str
    detail: str
    remedy: str = ""


@dataclass
class PreflightReport:
    """The checks of one preflight, and what the services answered that the caller may reuse."""

    checks: list[Check] = field(default_factory=list)
    # The Zephyr project keys the token can read (None when Zephyr could not be asked).
    zephyr_projects: list[str] | None = None

    def add(self, name: str, result: str, detail: str, remedy: str = "") -> None:
        self.checks.append(Check(name, result, detail, remedy))

    @property
    def blockers(self) -> list[Check]:
        return [check for check in self.checks if check.result == BLOCKER]

    @property
    def ok(self) -> bool:
        return not self.blockers

    def table(self) -> str:
        """The checks as a plain-text table: check, result, what was found (and what to change)."""
        rows = [("check", "result", "found / what to change")]
        for check in self.checks:
            text = check.detail + (f" -> {check.remedy}" if check.remedy else "")
            rows.append((check.name, check.result, text))
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}" for row in rows]
        lines.insert(1, f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * 22}")
        return "\n".join(lines)

    def summary(self) -> str:
        blockers = self.blockers
        if not blockers:
            warnings = sum(check.result == WARNING for check in self.checks)
            return f"preflight passed ({len(self.checks)} checks, {warnings} warnings)"
        return f"preflight found {len(blockers)} blocker(s): " + "; ".join(
            f"{check.name}: {check.remedy or check.detail}" for check in blockers
        )


# ------------------------------------------------------------------------------------------ clients


def _client_options() -> dict[str, Any]:
    """Options of the existing clients for preflight: short timeouts, no retry, a limiter of its own."""
    return {
        "timeout": httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        "max_retries": 0,
        "max_rate_limit_retries": MAX_RATE_LIMITED_RETRIES,
        "max_in_flight": 4,
        "rate_limiter": AdaptiveRateLimiter(initial_rate=20.0),
    }


def zephyr_client(settings: Settings) -> ZephyrClient:
    token = settings.zephyr.api_token.get_secret_value() if settings.zephyr.api_token else ""
    return ZephyrClient(settings.zephyr.base_url, token, **_client_options())


def qtest_client(settings: Settings) -> QtestClient:
    qtest = settings.qtest
    token = qtest.api_token.get_secret_value() if qtest.api_token else None
    password = qtest.password.get_secret_value() if qtest.password else None
    return QtestClient(
        qtest.base_url, token, username=qtest.username or None, password=password, **_client_options()
    )


def qtest_credential_setting(settings: Settings) -> str:
    """The variable(s) of the qTest credential in use."""
    return "QTEST_API_TOKEN" if settings.qtest.api_token else "QTEST_USERNAME and QTEST_PASSWORD"


def _service_problem(error: ApiError, url_setting: str, url_hint: str, credential: str) -> tuple[str, str]:
    """(what happened, what to change) for a service's first call that failed."""
    happened = error.message
    if isinstance(error, TransportError):
        return happened, f"check {url_setting} (it must be reachable from here: {url_hint}) and the network"
    if isinstance(error, AuthError) or error.status in (400, 401, 403):
        return (
            happened,
            f"{credential} was refused: set a valid one (of a user who can read every project to migrate)",
        )
    if isinstance(error, NotFoundError):
        return happened, f"{url_setting} does not serve the API there: set it to {url_hint}"
    return (
        happened,
        f"the service answered an error: check {url_setting} and {credential}, and the service's status",
    )


# ---------------------------------------------------------------------------------------- the checks


async def _zephyr_checks(
    settings: Settings, projects: Sequence[str], report: PreflightReport, severity: str = BLOCKER
) -> dict[str, dict]:
    """Zephyr reachable with the token, each project there; per project its priorities, statuses (by type)
    and environments, for the checks of the mapping. `severity`: the result of a problem (a warning when
    the run does not extract)."""
    listings: dict[str, dict] = {}
    async with zephyr_client(settings) as client:
        try:
            found = [project async for project in client.iter_projects()]
        except ApiError as error:
            detail, remedy = _service_problem(error, "ZEPHYR_BASE_URL", ZEPHYR_URL_HINT, "ZEPHYR_API_TOKEN")
            report.add("Zephyr API and token", severity, f"{settings.zephyr.base_url}: {detail}", remedy)
            return listings
        keys = sorted(str(p["key"]) for p in found if p.get("key") and p.get("enabled", True))
        report.zephyr_projects = keys
        report.add(
            "Zephyr API and token",
            OK,
            f"{settings.zephyr.base_url}: the token reads {len(keys)} project(s)",
        )
        unknown = [key for key in projects if key not in keys]
        if unknown:
            report.add(
                "Zephyr projects",
                severity,
                f"no project {', '.join(unknown)} for this token",
                f"pass --project with one of: {', '.join(keys) or '(none: check ZEPHYR_API_TOKEN)'}",
            )
        elif projects:
            report.add("Zephyr projects", OK, f"{', '.join(projects)} found")
        else:
            report.add(
                "Zephyr projects",
                WARNING,
                f"none named; the token reads {', '.join(keys) or 'none'}",
                "pass --project KEY for the per-project checks",
            )
        for key in [key for key in projects if key in keys]:
            try:
                listings[key] = {
                    "priorities": [p async for p in client.iter_priorities(key)],
                    "statuses": [s async for s in client.iter_typed_statuses(key)],
                    "environments": [e async for e in client.iter_environments(key)],
                }
            except ApiError as error:
                detail, remedy = _service_problem(
                    error, "ZEPHYR_BASE_URL", ZEPHYR_URL_HINT, "ZEPHYR_API_TOKEN"
                )
                report.add(f"Zephyr {key} listings", severity, detail, remedy)
    return listings


def _read_seed(name: str) -> list[dict[str, str]]:
    path = SEEDS_DIR / name
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(handle)]


@dataclass(frozen=True)
class Seeds:
    """The mapping seeds (dbt_project/seeds) as the dbt models read them."""

    priorities: Mapping[str, str]
    statuses: Mapping[tuple[str, str], str]
    labels: Mapping[tuple[str, str], str]

    @classmethod
    def read(cls) -> Seeds:
        return cls(
            {row["zephyr_name"]: row["qtest_name"] for row in _read_seed("priority_map.csv")},
            {
                (row["status_type"], row["zephyr_name"]): row["qtest_name"]
                for row in _read_seed("status_map.csv")
            },
            {
                (row["object_type"], row["zephyr_field"]): row["qtest_label"]
                for row in _read_seed("custom_field_map.csv")
            },
        )

    def label(self, object_type: str, zephyr_field: str, default: str) -> str:
        return self.labels.get((object_type, zephyr_field)) or default


def _names(items: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({str(item["name"]) for item in items if item.get("name") and not item.get("archived")})


def mapping_checks(
    key: str, listing: Mapping[str, Any], seeds: Seeds, report: PreflightReport
) -> list[tuple]:
    """Priorities and statuses without a row in their seed (each keeps its Zephyr name), and the uses of
    fields these listings make known: (object type, label, Zephyr field, JSON type, value) rows, as the
    publishing stages read them from the marts (``field_setup.needed_fields``)."""
    priorities = _names(listing["priorities"])
    case_statuses = _names(
        status for status_type, status in listing["statuses"] if status_type == "TEST_CASE"
    )
    unmapped = [f"priority {name}" for name in priorities if name not in seeds.priorities]
    unmapped += [
        f"test-case status {name}" for name in case_statuses if ("TEST_CASE", name) not in seeds.statuses
    ]
    execution = _names(s for status_type, s in listing["statuses"] if status_type == "TEST_EXECUTION")
    unmapped += [
        f"execution status {name}" for name in execution if ("TEST_EXECUTION", name) not in seeds.statuses
    ]
    if unmapped:
        report.add(
            f"{key}: statuses and priorities",
            WARNING,
            f"no mapping for {name_values(unmapped)}: each keeps its Zephyr name",
            "add rows to dbt_project/seeds/priority_map.csv or status_map.csv, or accept the names as they are",
        )
    else:
        report.add(
            f"{key}: statuses and priorities", OK, "every Zephyr priority and status has a mapping row"
        )
    uses: list[tuple] = []
    priority_label = seeds.label("TestCase", "priority", "Priority")
    for name in priorities:
        uses.append(("test-cases", priority_label, "priority", "string", seeds.priorities.get(name, name)))
    status_label = seeds.label("TestCase", "status", "Status")
    for name in case_statuses:
        uses.append(
            ("test-cases", status_label, "status", "string", seeds.statuses.get(("TEST_CASE", name), name))
        )
    environment_label = seeds.label("TestExecution", "environment", "Environment")
    for name in _names(listing["environments"]):
        uses.append(("test-runs", environment_label, "environment", "string", name))
    return uses


def execution_status_check(
    key: str, listing: Mapping[str, Any], seeds: Seeds, qtest_statuses: Iterable[Mapping[str, Any]]
) -> Check:
    """Each Zephyr execution status, mapped, must be one of the qTest project's execution statuses (the
    test logs' status); qTest's list is the site's own and preflight does not change it."""
    have = {str(status.get("name") or "").lower() for status in qtest_statuses}
    missing = []
    for name in _names(s for status_type, s in listing["statuses"] if status_type == "TEST_EXECUTION"):
        target = seeds.statuses.get(("TEST_EXECUTION", name), name)
        if target.lower() not in have:
            missing.append(f"{name} -> {target}")
    if missing:
        return Check(
            f"{key}: execution statuses",
            WARNING,
            f"not a qTest execution status: {name_values(missing)} (their test logs would be refused)",
            "map them to qTest's statuses in dbt_project/seeds/status_map.csv, or add the statuses in qTest",
        )
    return Check(f"{key}: execution statuses", OK, "every Zephyr execution status has a qTest status")


def field_plan(
    needs: Sequence[FieldNeed], existing: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> tuple[list[FieldNeed], list[tuple[str, str, tuple[str, ...]]]]:
    """The fields `needs` lack in `existing` (object type -> label, lower case -> field resource) and the
    allowed values to add ((object type, label, values)), decided as ``field_setup.ensure_fields`` does."""
    to_create: list[FieldNeed] = []
    to_extend: list[tuple[str, str, tuple[str, ...]]] = []
    for need in needs:
        resource = existing.get(need.object_type, {}).get(need.label.strip().lower())
        if resource is None:
            to_create.append(need)
            continue
        if resource.get("is_active", True) is False or not need.values:
            continue
        where = _values_field(existing, need, resource)
        if where is not None:
            values_type, values_resource = where
            missing = _missing_values(values_resource, need.values)
            if missing:
                to_extend.append((values_type, str(values_resource.get("label") or need.label), missing))
    return to_create, to_extend


async def _fields_of(client: QtestClient, project_id: int) -> dict[str, dict[str, Mapping[str, Any]]]:
    object_types = dict.fromkeys(_FIELD_OBJECT_TYPES)
    object_types.update(dict.fromkeys(INHERITED_VALUES.values()))
    existing: dict[str, dict[str, Mapping[str, Any]]] = {}
    for object_type in object_types:
        resources = await client.get_fields(project_id, object_type, include_inactive=True)
        existing[object_type] = {str(r.get("label") or "").strip().lower(): r for r in resources}
    return existing


async def _permissions(client: QtestClient, key: str, project_id: int, changes_settings: bool) -> Check:
    """The token's user's permissions in the target project (GET /projects/{id}/user-profiles/current, the
    swagger's getCurrentProfile): what the stages create, and field settings when the run changes them."""
    try:
        profile = await client.get_json(f"projects/{project_id}/user-profiles/current")
    except (NotFoundError, AuthError):
        return Check(
            f"{key}: qTest permissions",
            WARNING,
            "not checked: the site does not answer GET /projects/{id}/user-profiles/current",
            "a stage that may not write stops naming what to do, before it writes",
        )
    needed = list(_NEEDED_PERMISSIONS)
    if changes_settings:
        needed.append(("project_setting", "manage"))
    lacking = [
        f"{area}.{action}"
        for area, action in needed
        if isinstance(profile, dict) and (profile.get(area) or {}).get(action) is False
    ]
    if lacking:
        return Check(
            f"{key}: qTest permissions",
            BLOCKER,
            f"the token's user lacks {', '.join(lacking)} in project {project_id}",
            "use the token of a project administrator, or grant these in the user's profile"
            + (
                ", or create the fields of the row above by hand (Field Settings)"
                if "project_setting.manage" in lacking
                else ""
            ),
        )
    return Check(
        f"{key}: qTest permissions",
        OK,
        f"the token's user may create what the migration creates in {project_id}",
    )


async def _qtest_checks(
    settings: Settings, projects: Sequence[str], uses: Mapping[str, list[tuple]],
    listings: Mapping[str, Mapping[str, Any]], seeds: Seeds, report: PreflightReport,
) -> dict[str, str]:  # fmt: skip
    """qTest reachable with the credential; per Zephyr project its target project, the token's permissions
    there, the fields and allowed values the run would create, and the execution statuses. Returns the
    qTest user names of the site (lower case -> as written) for the user-map check."""
    credential = qtest_credential_setting(settings)
    async with qtest_client(settings) as client:
        try:
            qtest_projects = await client.list_projects()
        except ApiError as error:
            detail, remedy = _service_problem(error, "QTEST_BASE_URL", QTEST_URL_HINT, credential)
            report.add("qTest API and token", BLOCKER, f"{settings.qtest.base_url}: {detail}", remedy)
            return {}
        report.add(
            "qTest API and token",
            OK,
            f"{settings.qtest.base_url}: the credential ({credential}) sees {len(qtest_projects)} project(s)",
        )
        users: dict[str, str] = {}
        for key in projects:
            target = settings.mapping.project_map.get(key) or key
            match = next(
                (p for p in qtest_projects if str(p.get("id")) == target or p.get("name") == target), None
            )
            if match is None:
                if target.isdigit():
                    report.add(
                        f"{key}: qTest project",
                        BLOCKER,
                        f"qTest project id {target} (ZEPHYR_QTEST_PROJECT_MAP) is not visible to this token",
                        f"fix ZEPHYR_QTEST_PROJECT_MAP, or assign the {credential} user to the project",
                    )
                else:
                    report.add(
                        f"{key}: qTest project",
                        WARNING,
                        f"no qTest project named {target!r}: the first publishing stage creates it, with the "
                        "site's default template",
                        "create it (or name an existing one in ZEPHYR_QTEST_PROJECT_MAP) if this token's user "
                        "may not create projects",
                    )
                    _new_project_fields(
                        key, needed_fields(uses.get(key, [])), settings.mapping.create_fields, report
                    )
                    _custom_fields_row(key, report)
                continue
            project_id = int(match["id"])
            template = match.get("template_id")
            report.add(
                f"{key}: qTest project",
                OK,
                f"{match.get('name')!r} (id {project_id}"
                + (f", template {template}" if template is not None else "")
                + ")",
            )
            try:
                existing = await _fields_of(client, project_id)
                changes_settings = _report_field_plan(
                    key,
                    project_id,
                    needed_fields(uses.get(key, [])),
                    existing,
                    settings.mapping.create_fields,
                    report,
                )
                _custom_fields_row(key, report)
                report.checks.append(await _permissions(client, key, project_id, changes_settings))
                if key in listings:
                    statuses = await client.execution_statuses(project_id)
                    report.checks.append(execution_status_check(key, listings[key], seeds, statuses))
                for user in await client.list_users(project_id):
                    if user.get("username"):
                        users[str(user["username"]).lower()] = str(user["username"])
            except ApiError as error:
                if isinstance(error, AuthError):
                    report.add(
                        f"{key}: qTest project settings",
                        BLOCKER,
                        f"the {credential} user may not read project {project_id}'s settings: {error.message}",
                        "use the token of a project administrator of the target project",
                    )
                else:
                    detail, remedy = _service_problem(error, "QTEST_BASE_URL", QTEST_URL_HINT, credential)
                    report.add(f"{key}: qTest project settings", BLOCKER, detail, remedy)
    return users


def _new_project_fields(key: str, needs: Sequence[FieldNeed], create: bool, report: PreflightReport) -> None:
    report.add(
        f"{key}: fields",
        NOT_YET,
        "the new project's template decides which exist; of these the run "
        + ("creates" if create else f"creates only the Zephyr Key ({CREATE_FIELDS_SETTING}=false)")
        + " what is missing: "
        + "; ".join(need.describe() for need in needs),
        "run preflight again once the project exists to see exactly what is created",
    )


def _custom_fields_row(key: str, report: PreflightReport) -> None:
    report.add(
        f"{key}: custom fields",
        LATER,
        "Zephyr's custom fields, labels, components and links are known from the extracted payloads only",
        "`zephyr-qtest migrate --dry-run` (or the first stage's log) lists the fields they add",
    )


def _report_field_plan(
    key: str, project_id: int, needs: Sequence[FieldNeed],
    existing: Mapping[str, Mapping[str, Mapping[str, Any]]], create: bool, report: PreflightReport,
) -> bool:  # fmt: skip
    """The row of the fields the run would create in the project; True when it changes field settings."""
    to_create, to_extend = field_plan(needs, existing)
    where = f"qTest project {project_id}"
    if not create:
        # Report only still makes the Zephyr Key fields, the run's own bookkeeping (field_setup).
        keys = [need for need in to_create if need.label.strip().lower() == ZEPHYR_KEY_LABEL.lower()]
        left = [need.describe() for need in to_create if need not in keys]
        left += [
            f"{object_type} field '{label}': values {name_values(values)}"
            for object_type, label, values in to_extend
        ]
        made = "; ".join(need.describe() for need in keys)
        report.add(
            f"{key}: fields",
            WARNING if left else OK,
            (f"the run creates in {where}: {made}. " if made else "")
            + (
                f"Report only ({CREATE_FIELDS_SETTING}=false), not created: {'; '.join(left)}"
                if left
                else "nothing else to create"
            ),
            "create them in qTest (Field Settings), or their values become ledger lines" if left else "",
        )
        return bool(keys)
    if to_create or to_extend:
        made = [need.describe() for need in to_create]
        made += [
            f"{object_type} field '{label}': values {name_values(values)}"
            for object_type, label, values in to_extend
        ]
        report.add(f"{key}: fields", OK, f"the run creates in {where}: " + "; ".join(made))
        return True
    report.add(f"{key}: fields", OK, f"{where} has every field and value these listings need")
    return False


def _database_checks(
    db_url: str, embedded: bool, settings: Settings, projects: Sequence[str], report: PreflightReport
) -> list[str] | None:
    """The staging database: reachable, its version, the id map's sites for these projects; returns the
    account ids the extracted payloads use (None when nothing was extracted)."""
    setting = "ZEPHYR_QTEST_HOME (the embedded server's data)" if embedded else database_setting(settings)
    try:
        conn = psycopg.connect(db_url, connect_timeout=int(CONNECT_TIMEOUT_S), autocommit=True)
    except psycopg.Error as error:
        report.add(
            "staging database",
            BLOCKER,
            f"{redact_url(db_url)}: {' '.join(str(error).split())[:200]}",
            f"check {setting}" + ("" if embedded else ", or unset it to use the embedded server"),
        )
        return None
    with conn:
        version = conn.execute("show server_version").fetchone()[0]
        major = int(conn.execute("show server_version_num").fetchone()[0]) // 10000
        where = "embedded server" if embedded else redact_url(db_url)
        if major < MIN_POSTGRES_MAJOR:
            report.add(
                "staging database",
                BLOCKER,
                f"{where}: PostgreSQL {version}",
                f"use PostgreSQL >= {MIN_POSTGRES_MAJOR} ({setting})",
            )
        else:
            report.add("staging database", OK, f"{where}: PostgreSQL {version}")
        _id_map_check(conn, settings, projects, report)
        try:
            return [use.account_id for use in accounts_in_use(conn, projects)]
        except NothingExtracted:
            return None


def _id_map_check(
    conn: psycopg.Connection, settings: Settings, projects: Sequence[str], report: PreflightReport
) -> None:
    site = site_of(settings.qtest.base_url) if settings.qtest.base_url else ""
    exists = conn.execute("select to_regclass('migration.id_map')").fetchone()
    has_site = (
        exists
        and exists[0]
        and conn.execute(
            "select 1 from information_schema.columns where table_schema = 'migration' "
            "and table_name = 'id_map' and column_name = 'target_site'"
        ).fetchone()
    )
    rows = []
    if has_site:
        rows = conn.execute(
            "select project_key, target_site, count(*) from migration.id_map where project_key = any(%s) "
            "group by 1, 2 order by 1, 2",
            (list(projects),),
        ).fetchall()
    if not rows:
        report.add(
            "id map",
            OK,
            f"no rows yet for {', '.join(projects) or 'these projects'}: the run starts one for {site}",
        )
        return
    for key in projects:
        sites = {target: count for project_key, target, count in rows if project_key == key}
        if not sites:
            report.add(f"{key}: id map", OK, f"no rows yet: the run starts one for {site}")
        elif site in sites:
            report.add(
                f"{key}: id map",
                OK,
                f"{sites[site]} rows for {site}: a re-run sends only what is left or changed",
            )
            _project_target_check(conn, settings, key, site, report)
        else:
            others = ", ".join(
                f"{target or '(no site: an earlier version)'} ({count} rows)"
                for target, count in sites.items()
            )
            report.add(
                f"{key}: id map",
                WARNING,
                f"rows for {others}, none for {site}: everything is created on {site} anew"
                + (
                    " (rows without a site are adopted if that site holds their project)"
                    if NO_SITE in sites
                    else ""
                ),
                "intended after a rehearsal; if the same site was reached by another URL, set QTEST_BASE_URL as before",
            )


def _project_target_check(
    conn: psycopg.Connection, settings: Settings, key: str, site: str, report: PreflightReport
) -> None:
    """A project map naming another qTest project than the one this site's id map sends `key` to (the
    run would stop at its first stage: ``loader.resolve_project``)."""
    target = settings.mapping.project_map.get(key)
    row = conn.execute(
        "select qtest_id, detail ->> 'name' from migration.id_map where target_site = %s and project_key = %s "
        "and object_type = 'project' and state = 'done' and qtest_id is not null",
        (site, key),
    ).fetchone()
    if not target or row is None or target in (str(row[0]), row[1]):
        return
    report.add(
        f"{key}: qTest project",
        BLOCKER,
        f"migrated to {row[1]!r} (id {row[0]}) on this site; ZEPHYR_QTEST_PROJECT_MAP now names {target!r}",
        project_moved_remedy(key, row[1], target, site),
    )


def _user_check(
    settings: Settings, accounts: list[str] | None, qtest_users: Mapping[str, str], report: PreflightReport
) -> None:
    path = settings.jira.user_map_file()
    try:
        mapped = read_user_map(path)
    except (OSError, ValueError) as error:
        report.add("user map", BLOCKER, str(error), f"fix {path} (or ZEPHYR_QTEST_USER_MAP_DIR)")
        return
    unknown = sorted({name for name in mapped.values() if qtest_users and name.lower() not in qtest_users})
    if unknown:
        report.add(
            "user map: qTest users",
            WARNING,
            f"{path.name} names users the qTest project does not have: {name_values(unknown)}",
            f"correct {path}, or add the users to the qTest project",
        )
    if accounts is None:
        report.add(
            "user map coverage",
            LATER,
            f"{len(mapped)} rows in {path}; which accounts the projects use is known after extraction",
            "after `migrate --only zephyr_raw`, run `zephyr-qtest users` to fill the map",
        )
        return
    missing = [account for account in accounts if account not in mapped]
    if missing:
        report.add(
            "user map coverage",
            WARNING,
            f"{len(missing)} of {len(accounts)} accounts the extracted payloads use have no qTest user",
            "run `zephyr-qtest users` (with JIRA_* set) and review the map; unmapped people are ledger lines",
        )
    else:
        report.add(
            "user map coverage", OK, f"all {len(accounts)} accounts of the extracted payloads are mapped"
        )


# The linked issues preflight asks Jira about per project (10 bulkfetch calls): a sample, in seconds.
JIRA_ISSUES_SAMPLE = 1000
JIRA_SETTINGS = "JIRA_BASE_URL, JIRA_EMAIL and JIRA_API_TOKEN"


async def _jira_issues_check(
    settings: Settings, db_url: str, projects: Sequence[str], report: PreflightReport
) -> None:
    """How many of the extracted payloads' linked Jira issues Jira returns (their requirements are named
    '<KEY> <summary>', the others 'Jira issue <id>'); before extraction, that the credentials work."""
    jira = settings.jira
    if not jira.is_configured or jira.api_token is None:
        report.add(
            "Jira issues",
            OK,
            "Jira not configured: linked issues become requirements named 'Jira issue <id>'",
            f"set {JIRA_SETTINGS} to name them '<KEY> <summary>'",
        )
        return
    linked: dict[str, list[str]] = {}
    try:
        with psycopg.connect(db_url, connect_timeout=int(CONNECT_TIMEOUT_S)) as conn:
            for key in projects:
                ids = linked_issue_ids_in(conn, key)
                if ids is not None:
                    linked[key] = ids
    except psycopg.Error:
        pass  # the staging database's own row says what is wrong with it
    options = {name: value for name, value in _client_options().items() if name != "max_in_flight"}
    try:
        async with JiraClient(
            jira.base_url, jira.email, jira.api_token.get_secret_value(), **options
        ) as client:
            await client.myself()
            for key in projects:
                if key not in linked:
                    report.add(
                        f"{key}: Jira issues",
                        LATER,
                        f"Jira at {jira.base_url} accepts the credentials; the linked issues are known after "
                        "extraction",
                    )
                    continue
                sample = linked[key][:JIRA_ISSUES_SAMPLE]
                answer = await client.issues(sample) if sample else None
                returned = len(answer.issues) if answer is not None else 0
                asked = f"{len(sample)} asked of {len(linked[key])}" if len(sample) < len(linked[key]) else ""
                detail = f"Jira returns {returned} of the {len(sample)} linked issues{f' ({asked})' if asked else ''}"
                if returned == len(sample):
                    report.add(f"{key}: Jira issues", OK, detail + ": each named '<KEY> <summary>'")
                else:
                    report.add(
                        f"{key}: Jira issues",
                        WARNING,
                        detail + f"; the other {len(sample) - returned} keep the name 'Jira issue <id>' "
                        "(deleted, or not visible to the token)",
                        "give the account of JIRA_EMAIL browse permission on their projects, or accept it",
                    )
    except AuthError:
        report.add(
            "Jira issues",
            BLOCKER,
            f"Jira at {jira.base_url} refused the credentials",
            "check JIRA_EMAIL and JIRA_API_TOKEN (an API token of that account), or unset them",
        )
    except ApiError as error:
        report.add(
            "Jira issues",
            BLOCKER,
            f"Jira at {jira.base_url}: {error}",
            "check JIRA_BASE_URL (the site, e.g. https://acme.atlassian.net), or unset the JIRA_* settings",
        )


# ------------------------------------------------------------------------------------------- the run


def run_preflight(
    settings: Settings,
    projects: Sequence[str],
    db_url: str,
    *,
    embedded_database: bool,
    extracts: bool = True,
) -> PreflightReport:
    """Every check, reading only; the report's ``ok`` is False when any found a blocker. `extracts` False
    (a run that only transforms or publishes what was extracted): Zephyr's problems are warnings, since
    the run does not call it (Zephyr may be gone after the freeze)."""
    report = PreflightReport()
    missing = [
        name
        for name, value in (
            ("ZEPHYR_BASE_URL", settings.zephyr.base_url if extracts else "-"),
            ("ZEPHYR_API_TOKEN", settings.zephyr.api_token if extracts else "-"),
            ("QTEST_BASE_URL", settings.qtest.base_url),
        )
        if not value
    ]
    if not settings.qtest.is_configured:
        missing.append("QTEST_API_TOKEN (or QTEST_USERNAME and QTEST_PASSWORD)")
    if missing:
        report.add(
            "settings",
            BLOCKER,
            f"not set: {', '.join(missing)}",
            "set them in the environment or .env (or pass --sandbox)",
        )
        return report
    seeds = Seeds.read()

    async def services() -> None:
        listings: dict[str, dict] = {}
        if settings.zephyr.is_configured or extracts:
            listings = await _zephyr_checks(settings, projects, report, BLOCKER if extracts else WARNING)
        uses = {key: mapping_checks(key, listing, seeds, report) for key, listing in listings.items()}
        keys = [key for key in projects if report.zephyr_projects is None or key in report.zephyr_projects]
        users = await _qtest_checks(settings, keys, uses, listings, seeds, report)
        accounts = _database_checks(db_url, embedded_database, settings, keys, report)
        _user_check(settings, accounts, users, report)
        await _jira_issues_check(settings, db_url, keys, report)

    asyncio.run(services())
    return report


def service_error_remedy(error: BaseException, settings: Settings) -> str | None:
    """What to change for an API error that ended a command, naming the variable by the URL it failed on
    (None when the error is not a call to Zephyr or qTest)."""
    if not isinstance(error, ApiError):
        return None
    url = error.url or ""
    if settings.zephyr.base_url and url.startswith(settings.zephyr.base_url.rstrip("/")):
        return _service_problem(error, "ZEPHYR_BASE_URL", ZEPHYR_URL_HINT, "ZEPHYR_API_TOKEN")[1]
    if settings.qtest.base_url and url.startswith(settings.qtest.base_url.rstrip("/")):
        credential = qtest_credential_setting(settings)
        return _service_problem(error, "QTEST_BASE_URL", QTEST_URL_HINT, credential)[1]
    return None


def database_setting(settings: Settings) -> str:
    """The setting that names the configured staging database, for messages."""
    if settings.postgres.database_url:
        return "DATABASE_URL"
    return "POSTGRES_HOST (and POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB)"
