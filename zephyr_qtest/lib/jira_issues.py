"""The Jira issues a project's test cases and executions link to, as Jira answers them: the raw table
``zephyr_raw.jira_issues`` (one row per issue Jira returned: its IssueBean untouched as ``payload``, its
numeric id as ``id``, its key as ``key``), beside Zephyr's payloads.

Zephyr Scale's issue links give only the issue's numeric ``issueId`` (REAL_SHAPES.md; the spec's
``IssueLink``), so the requirement an issue becomes could only be named ``Jira issue <id>``. With Jira
configured (``JIRA_BASE_URL``, ``JIRA_EMAIL``, ``JIRA_API_TOKEN``, as for people) each linked id is asked
of Jira (``lib/jira.py``: ``issue/bulkfetch``, 100 ids a call), and the requirement is named ``<KEY>
<summary>`` (dbt's ``qtest_requirements``); the proof compares qTest's name with this table, Jira's answer
as extracted. An id Jira does not return (deleted since it was linked, or in a project the token's account
may not browse: Jira does not say which) is an extraction issue naming it, and its requirement keeps the
name ``Jira issue <id>``.

Without Jira configured nothing is asked and nothing changes: a table that holds an earlier run's answers
keeps them (what a requirement is named does not flip back because a later run lacked the token), and a
project never resolved has no rows, so its requirements are named as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from zephyr_qtest.lib.jira import JiraClient
from zephyr_qtest.lib.raw_store import Issue, PartitionSummary, RawRow, RawRows

RAW_ENTITY = "jira_issues"
# The raw tables whose objects' issue links become qTest requirements (cycles' and plans' stay URLs in
# their Zephyr details).
LINKING_TABLES = ("test_cases", "test_executions")
NOT_RETURNED = (
    "Jira did not return this issue (deleted since it was linked, or the JIRA_API_TOKEN's account may not "
    "browse its project): its requirement keeps the name 'Jira issue <id>'"
)

_LINKED_IDS = """
    select distinct link ->> 'issueId'
    from zephyr_raw.{table}, jsonb_array_elements(
        case when jsonb_typeof(payload -> 'links' -> 'issues') = 'array'
        then payload -> 'links' -> 'issues' else '[]'::jsonb end
    ) as link
    where project_key = %s and (link ->> 'issueId') ~ '^[0-9]+$'
"""


def linked_issue_ids(raw: RawRows, project_key: str) -> list[str]:
    """Every Jira issue id the project's extracted test cases and executions link to, in numeric order."""
    found: set[str] = set()
    for table in LINKING_TABLES:
        if raw.table_exists(table):
            # `table` is one of LINKING_TABLES, never input.
            found.update(str(row[0]) for row in raw.query(_LINKED_IDS.format(table=table), (project_key,)))
    return sorted(found, key=int)


def linked_issue_ids_in(conn: Any, project_key: str) -> list[str] | None:
    """``linked_issue_ids`` on a plain psycopg connection (preflight); None when neither table exists."""
    tables = [
        table
        for table in LINKING_TABLES
        if conn.execute("select to_regclass(%s)", (f"zephyr_raw.{table}",)).fetchone()[0] is not None
    ]
    if not tables:
        return None
    found: set[str] = set()
    for table in tables:
        found.update(str(row[0]) for row in conn.execute(_LINKED_IDS.format(table=table), (project_key,)))
    return sorted(found, key=int)


@dataclass
class IssueExtraction:
    """What one extraction of a project's linked issues did."""

    summary: PartitionSummary | None
    linked: int
    # False when Jira is not configured (nothing was asked, nothing written).
    asked: bool
    stats: dict[str, float | int] = field(default_factory=dict)

    @property
    def resolved(self) -> int:
        return self.summary.rows_written if self.summary is not None else 0


async def extract_jira_issues(
    client: JiraClient | None, raw: RawRows, project_key: str, run_id: str
) -> IssueExtraction:
    """Ask Jira for every issue the project links to and replace the project's ``zephyr_raw.jira_issues``
    rows with its answers, in one transaction (``RawPartitionWriter``). ``client`` None: Jira is not
    configured; nothing is asked or written (an earlier run's answers stay)."""
    wanted = linked_issue_ids(raw, project_key)
    if client is None:
        raw.ensure_table(RAW_ENTITY)
        return IssueExtraction(None, len(wanted), asked=False)
    started = time.monotonic()
    answer = await client.issues(wanted) if wanted else None
    writer = raw.writer(RAW_ENTITY, project_key, run_id)
    async with writer:
        if answer is not None:
            for issue_id, bean in sorted(answer.issues.items(), key=lambda item: int(item[0])):
                key = bean.get("key")
                await writer.add(RawRow(payload=bean, id=int(issue_id), key=str(key) if key else None))
                if not key:
                    writer.record(
                        Issue(f"Jira issue {issue_id}", "Jira returned the issue without a key", "key")
                    )
            for issue_id, message in sorted(answer.errors.items(), key=lambda item: int(item[0])):
                writer.record(
                    Issue(f"Jira issue {issue_id}", f"Jira could not return it: {message}", "issueId")
                )
            for issue_id in answer.absent:
                writer.record(Issue(f"Jira issue {issue_id}", NOT_RETURNED, "issueId"))
        writer.summary.api_reported = len(answer.issues) if answer is not None else 0
        stats: dict[str, Any] = {
            **client.stats.as_metadata(),
            "seconds": round(time.monotonic() - started, 3),
        }
        summary = await writer.finish(stats=stats)
    return IssueExtraction(summary, len(wanted), asked=True, stats=stats)


def issue_names(rows: list[tuple[Any, Any]]) -> dict[str, str]:
    """Issue id -> the requirement name Jira's answer gives it (``<KEY> <summary>``, qtest_requirements'
    rule), from ``(id, payload)`` rows of ``zephyr_raw.jira_issues``; an answer without a key names nothing."""
    names: dict[str, str] = {}
    for issue_id, payload in rows:
        name = requirement_name_of(payload if isinstance(payload, dict) else {})
        if issue_id is not None and name is not None:
            names[str(issue_id)] = name
    return names


# qTest's RequirementResource: name maxLength 500 (the swagger).
NAME_MAX_LENGTH = 500
# What is trimmed from a key and a summary (dbt's btrim in qtest_requirements trims the same).
SPACE = " \t\r\n"


def requirement_name_of(bean: dict[str, Any]) -> str | None:
    """``<KEY> <summary>`` of a Jira IssueBean (whitespace of the summary trimmed; the key alone when the
    summary is empty), cut to qTest's 500 characters; None without a key."""
    key = str(bean.get("key") or "").strip(SPACE)
    if not key:
        return None
    fields = bean.get("fields") if isinstance(bean.get("fields"), dict) else {}
    summary = str(fields.get("summary") or "").strip(SPACE)
    return (f"{key} {summary}" if summary else key)[:NAME_MAX_LENGTH]
