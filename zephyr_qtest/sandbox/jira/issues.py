"""The sandbox company's Jira issues: the key and summary of each issue a Zephyr tenant links to.

Zephyr Scale's issue links (``links.issues`` of test cases, executions, cycles and plans) hold only the
issue's numeric ``issueId`` and its REST URL (REAL_SHAPES.md; the Zephyr spec's ``IssueLink``). In Jira each
issue has a key, ``<Jira project key>-<number>``, and a summary. Zephyr Scale projects are Jira projects, so
the issues a project's objects link to get that project's key here, numbered in issue-id order: the same
tenant always gets the same keys.

Like a real site, Jira does not return every issue a tenant links to: an issue deleted since it was linked,
or one in a project the API token's account may not browse, is simply absent from a bulk fetch ("Issues
which aren't found or that the user doesn't have permission to view won't be returned": Atlassian's Bulk
fetch issues). Every ``HIDDEN_EVERY``-th issue of a project (by id) is such an issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Every how many issues of a project (in id order) one Jira does not return (deleted, or not visible).
HIDDEN_EVERY = 9
# What the summaries are made of: plain words, and the characters a requirement name must keep as written.
_SUMMARIES = (
    "Refund fails for EUR",
    "Sign-in times out after 30 s",
    "Basket total ignores <discount> & vouchers",
    "Receipt shows wrong VAT",
    "Search returns archived items",
    "Zahlung über SEPA schlägt fehl",
    "Export to CSV drops the last row",
    "Password reset mail not sent",
    "顧客 name truncated on invoice",
    "Checkout button hidden on mobile",
    "Audit log misses role changes",
)
# The collections of a fixture document whose objects carry ``links.issues``.
_LINKING = ("testcases", "testcase_versions", "testexecutions", "testcycles", "testplans")


@dataclass(frozen=True, slots=True)
class Issue:
    """One Jira issue: its id, key and summary, and whether Jira returns it."""

    issue_id: str
    key: str
    summary: str
    visible: bool = True


def _project_key(item: Mapping[str, Any], keys: Mapping[Any, str]) -> str | None:
    project = item.get("project")
    if isinstance(project, Mapping):
        return keys.get(project.get("id"))
    return None


def issues_of(document: Mapping[str, Any]) -> dict[str, Issue]:
    """Issue id -> the issue, for every issue a Zephyr fixture document's objects link to: keyed after the
    project of the first object linking it (``<project key>-<n>``, n counting the project's issues in id
    order), each with a summary; every ``HIDDEN_EVERY``-th of a project not visible."""
    keys = {p.get("id"): str(p.get("key")) for p in document.get("projects") or [] if isinstance(p, Mapping)}
    project_of: dict[int, str] = {}
    for collection in _LINKING:
        for item in document.get(collection) or []:
            if not isinstance(item, Mapping):
                continue
            project = _project_key(item, keys) or "JIRA"
            for link in (item.get("links") or {}).get("issues") or []:
                issue_id = link.get("issueId") if isinstance(link, Mapping) else None
                if isinstance(issue_id, int) or (isinstance(issue_id, str) and issue_id.isdigit()):
                    project_of.setdefault(int(issue_id), project)
    found: dict[str, Issue] = {}
    counts: dict[str, int] = {}
    for issue_id in sorted(project_of):
        project = project_of[issue_id]
        number = counts[project] = counts.get(project, 0) + 1
        found[str(issue_id)] = Issue(
            str(issue_id),
            f"{project}-{number}",
            _SUMMARIES[issue_id % len(_SUMMARIES)],
            visible=number % HIDDEN_EVERY != 0,
        )
    return found
