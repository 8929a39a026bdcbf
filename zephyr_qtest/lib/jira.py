"""Jira Cloud's REST API v3, asked two things: who an Atlassian account id is, and which issue an issue id is.

Zephyr Scale Cloud names people by account id only (``owner.accountId``, ``executedById``,
``assignedToId``, user custom fields). ``GET /rest/api/3/user/bulk?accountId=..&accountId=..`` answers
their display names and, where each person's profile lets it, their e-mail addresses, as a ``PageBean``
(``startAt, maxResults, total, isLast, values``: the same offset pages as Zephyr's, so
``OffsetPaginator`` reads them). Auth is HTTP Basic with an Atlassian account's e-mail and an API token
(Atlassian's "Basic auth for REST APIs"; jira-python's ``basic_auth=(email, token)``); the token is
registered as a secret, so it never shows in a log or an error.

The ids go in batches (``batch_size`` per request, a URL of a few kilobytes), each batch paged.

Zephyr Scale's issue links give only the Jira issue's numeric id. ``POST /rest/api/3/issue/bulkfetch``
with ``{"issueIdsOrKeys": [...], "fields": ["summary"]}`` answers ``{"issues": [IssueBean {id, key, self,
fields: {summary}}], "issueErrors": [{id, errorMessage}]}`` (Atlassian's "Bulk fetch issues"; the same
operation in generated clients: jira.js ``bulkFetchIssues`` / ``BulkIssue``, the jira_v3_openapi crate's
``BulkFetchIssueRequestBean``, ``BulkIssueResults``, ``IssueError``). Up to 100 ids per call ("By default
you can request up to 100 issues in a single call"; up to 1,000 only for requests shaped a certain way:
100 is the limit that always holds). "Issues which aren't found or that the user doesn't have permission to
view won't be returned": such an id is in neither list, and ``issueErrors`` names the ids Jira could not
return "due to a retriable error or payload constraint".
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable
from typing import Any

from zephyr_qtest.lib.http import ApiClient, AuthProvider, limiter_key
from zephyr_qtest.lib.pagination import OffsetPaginator, paginate
from zephyr_qtest.lib.redaction import register_secret

# Account ids per request: ~50 characters each, so a request line of some 3 kB (Jira publishes no cap).
BATCH_SIZE = 50
# Jira's documented default page is 10; more per page means fewer calls (the site may serve fewer).
PAGE_SIZE = 50
# Issue ids per bulkfetch call: the documented limit that holds for every request shape.
ISSUE_BATCH_SIZE = 100
# The one issue field the migration reads (the key comes with every IssueBean).
ISSUE_FIELDS = ("summary",)


class JiraBasicAuth(AuthProvider):
    """``Authorization: Basic base64(email:api_token)``."""

    def __init__(self, email: str, api_token: str) -> None:
        register_secret(api_token)
        encoded = base64.b64encode(f"{email}:{api_token}".encode()).decode("ascii")
        register_secret(encoded)
        self._value = f"Basic {encoded}"

    async def authorization(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "JiraBasicAuth(***)"


def _object(data: Any) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")


class JiraClient(ApiClient):
    """Jira Cloud at a site URL (``https://<site>.atlassian.net`` or the sandbox); ``async with``."""

    def __init__(
        self,
        site_url: str,
        email: str,
        api_token: str,
        *,
        batch_size: int = BATCH_SIZE,
        page_size: int = PAGE_SIZE,
        max_in_flight: int = 4,
        timeout: float = 30.0,
        **options: Any,
    ) -> None:
        """`options` go to `ApiClient` (a test transport, a rate limiter, clock and sleep)."""
        if not (site_url and email and api_token):
            raise ValueError("Jira needs JIRA_BASE_URL, JIRA_EMAIL and JIRA_API_TOKEN")
        options.setdefault("rate_limit_key", limiter_key(site_url, f"{email}:{api_token}"))
        self.site_url = site_url.rstrip("/")
        super().__init__(
            f"{self.site_url}/rest/api/3",
            auth=JiraBasicAuth(email, api_token),
            timeout=timeout,
            max_in_flight=max_in_flight,
            **options,
        )
        self.batch_size = batch_size
        self.page_size = page_size

    async def myself(self) -> dict[str, Any]:
        """The account the credentials belong to (a 401 here means the e-mail or the token is wrong)."""
        return await self.get_json("myself", validate=_object)

    async def users(self, account_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Account id -> Jira's ``User`` for every id Jira knows (an unknown id is simply absent)."""
        wanted = list(dict.fromkeys(account_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), self.batch_size):
            batch = wanted[start : start + self.batch_size]
            pages = paginate(self, "user/bulk", {"accountId": batch}, OffsetPaginator(self.page_size))
            async for page in pages:
                for user in page.items:
                    if isinstance(user, dict) and isinstance(user.get("accountId"), str):
                        found[user["accountId"]] = user
        return found

    async def issues(self, issue_ids: Iterable[Any]) -> IssueAnswer:
        """Jira's answer for these issue ids (``fetch_issues``)."""
        return await fetch_issues(self, issue_ids)


def _bulk_issues(data: Any) -> None:
    _object(data)
    for name in ("issues", "issueErrors"):
        if not isinstance(data.get(name, []), list):
            raise ValueError(f"expected {name} to be a list, got {type(data[name]).__name__}")


class IssueAnswer:
    """What Jira answered for a set of issue ids: the issues it returned (id -> IssueBean), the ids it named
    in ``issueErrors`` (id -> its message), and the ids it returned nothing for (not found, or the token may
    not see them: Jira does not say which)."""

    def __init__(self) -> None:
        self.issues: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.absent: list[str] = []


async def fetch_issues(client: JiraClient, issue_ids: Iterable[Any]) -> IssueAnswer:
    """Every issue id's IssueBean (key and summary), ``ISSUE_BATCH_SIZE`` ids per ``issue/bulkfetch``
    call, batches in flight together under the client's rate limiter (429s are waited out and resent)."""
    wanted = [str(issue_id) for issue_id in dict.fromkeys(issue_ids)]
    batches = [wanted[start : start + ISSUE_BATCH_SIZE] for start in range(0, len(wanted), ISSUE_BATCH_SIZE)]
    answer = IssueAnswer()

    async def one(batch: list[str]) -> None:
        data = await client.request_json(
            "POST",
            "issue/bulkfetch",
            json_body={"issueIdsOrKeys": batch, "fields": list(ISSUE_FIELDS)},
            validate=_bulk_issues,
            retry=True,  # a read: sending it twice changes nothing
        )
        for issue in data.get("issues") or []:
            if isinstance(issue, dict) and issue.get("id") is not None:
                answer.issues[str(issue["id"])] = issue
        for error in data.get("issueErrors") or []:
            if isinstance(error, dict) and error.get("id") is not None:
                answer.errors[str(error["id"])] = str(error.get("errorMessage") or "no message")

    await asyncio.gather(*(one(batch) for batch in batches))
    if answer.errors:
        # "a retriable error": asked once more, on their own; what fails again stays an error.
        again = list(answer.errors)
        answer.errors = {}
        await asyncio.gather(
            *(
                one(again[start : start + ISSUE_BATCH_SIZE])
                for start in range(0, len(again), ISSUE_BATCH_SIZE)
            )
        )
        for issue_id in answer.issues:
            answer.errors.pop(issue_id, None)
    answer.absent = [i for i in wanted if i not in answer.issues and i not in answer.errors]
    return answer
