"""The Jira Cloud sandbox as an ASGI app (Starlette): the user and issue endpoints of Jira Cloud's REST API v3
that a migration uses.

- ``GET /rest/api/3/user/bulk?accountId=A&accountId=B&startAt=0&maxResults=10``: "Returns a paginated
  list of the users specified by one or more account IDs" (Atlassian's Jira Cloud platform REST API v3,
  group Users, "Bulk get users"; the same operation in generated clients: jira.js
  ``Version3Parameters.BulkGetUsers`` {accountId: string[], startAt?, maxResults?}, the Rust crates'
  ``bulk_get_users -> PageBeanUser``). The answer is a ``PageBean``: ``self, nextPage (only when there is
  another page), maxResults, startAt, total, isLast, values`` (the PageBean schema as the generated SDKs
  list it, e.g. konfig-sdks/atlassian-jira-java-sdk ``docs/PageBean*.md``). ``accountId`` is required
  (400 without it); ``maxResults`` defaults to 10 (the operation's documented default). Accounts the site
  does not know are left out of ``values`` (unverified: nothing public shows Jira's answer for an unknown
  id in a bulk call; a client must not assume one value per id).
- ``GET /rest/api/3/myself``: the user the credentials belong to (what a client checks a token with).
- ``POST /rest/api/3/issue/bulkfetch`` with ``{"issueIdsOrKeys": [...], "fields": [...]}``: "Returns the
  details for a set of requested issues" (Atlassian's Jira Cloud platform REST API v3, group Issues, "Bulk
  fetch issues"; the same operation in generated clients: jira.js ``bulkFetchIssues`` answering
  ``BulkIssue {issues, issueErrors}``, the jira_v3_openapi crate's ``BulkFetchIssueRequestBean`` and
  ``BulkIssueResults``). Each issue is an ``IssueBean`` ``{expand, id, self, key, fields}`` holding the
  fields asked for, "returned in ascending id order"; an id or key is matched case-insensitively. "Issues
  which aren't found or that the user doesn't have permission to view won't be returned in this list" and
  are not in ``issueErrors`` either (that list, ``{id, errorMessage}``, is for "a retriable error or payload
  constraint": the sandbox fails the ids of ``failing_issue_ids`` so). Up to 100 ids, or 1,000 when
  ``fields`` names the fields to return without wildcards; "larger requests are rejected with a 400 error".
  The issues are those of ``issues.py``.

Users are Atlassian's ``User`` object: ``self, accountId, accountType ("atlassian"), emailAddress,
avatarUrls, displayName, active, timeZone, locale``. ``emailAddress`` is left out for people whose
profile hides it ("Privacy controls are applied to the response based on the user's preferences. This
could mean, for example, that the user's email address is hidden": the Get user operation's text; a user
without the key: pycontribs/jira issue #827).

Auth is HTTP Basic with an e-mail address and an API token (Atlassian's "Basic auth for REST APIs"; the
``basic_auth=(email, token)`` of jira-python ``jira/client.py``). A missing or wrong credential is a 401.
Errors are Jira's ``ErrorCollection``: ``{"errorMessages": [...], "errors": {}}``.

Admin endpoints (no auth, not Jira's): ``GET /_sandbox/info`` and ``GET /_sandbox/stats``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zephyr_qtest.sandbox.common import RequestStats
from zephyr_qtest.sandbox.jira.directory import DOMAIN, Person, accounts_in, people_of
from zephyr_qtest.sandbox.jira.issues import Issue, issues_of

API = "/rest/api/3"
DEFAULT_MAX_RESULTS = 10
# The largest page the sandbox serves (Jira's own cap is not published: unverified, so it is a switch).
MAX_RESULTS_CAP = 100
# Bulk fetch issues' limits: 100 ids, or 1,000 for a request naming its fields without wildcards.
BULK_ISSUES_DEFAULT_CAP = 100
BULK_ISSUES_NAMED_FIELDS_CAP = 1000
# The account the sandbox's API token belongs to (a service user of the migration).
API_USER = Person("Migration Bot", f"migration.bot@{DOMAIN}")
API_USER_ACCOUNT = "5f0000000000000000000001"


def derive_token(seed: int) -> str:
    """The sandbox's API token, stable for a seed (Atlassian API tokens are opaque strings)."""
    return "ATATT" + hashlib.sha256(f"jira-sandbox:{seed}".encode()).hexdigest()[:40].upper()


def error(status: int, *messages: str) -> JSONResponse:
    return JSONResponse({"errorMessages": list(messages), "errors": {}}, status_code=status)


@dataclass
class JiraSandbox:
    """The site: its people by account id, the one credential it accepts, and its switches."""

    base_url: str
    people: dict[str, Person]
    email: str = API_USER.email
    token: str = field(default_factory=lambda: derive_token(0))
    max_results_cap: int = MAX_RESULTS_CAP
    # Issue id -> the issue (``issues.py``); an issue that is not ``visible`` is never returned.
    issues: dict[str, Issue] = field(default_factory=dict)
    # Issue ids answered in ``issueErrors`` instead (a switch: a retriable error on Jira's side).
    failing_issue_ids: set[str] = field(default_factory=set)
    stats: RequestStats = field(default_factory=RequestStats)

    @property
    def asgi(self) -> Starlette:
        return create_asgi(self)

    def render(self, account_id: str, person: Person) -> dict[str, Any]:
        user: dict[str, Any] = {
            "self": f"{self.base_url}{API}/user?{urlencode({'accountId': account_id})}",
            "accountId": account_id,
            "accountType": "atlassian",
        }
        if person.email_visible:
            user["emailAddress"] = person.jira_email or person.email
        user.update(
            {
                "avatarUrls": {
                    size: f"https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/{account_id}/{size}"
                    for size in ("48x48", "24x24", "16x16", "32x32")
                },
                "displayName": person.display_name,
                "active": person.active,
                "timeZone": "Europe/Berlin",
                "locale": "en_US",
            }
        )
        return user

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            email, _, token = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return email.lower() == self.email.lower() and hmac.compare_digest(token, self.token)

    def bulk(self, request: Request) -> Response:
        account_ids = request.query_params.getlist("accountId")
        if not account_ids:
            return error(400, "You must specify at least one accountId.")
        try:
            start_at = int(request.query_params.get("startAt", 0))
            max_results = int(request.query_params.get("maxResults", DEFAULT_MAX_RESULTS))
        except ValueError:
            return error(400, "startAt and maxResults must be integers.")
        if start_at < 0 or max_results < 1:
            return error(400, "startAt must be 0 or more and maxResults 1 or more.")
        max_results = min(max_results, self.max_results_cap)
        seen: set[str] = set()
        found = []
        for account_id in account_ids:
            if account_id in self.people and account_id not in seen:
                seen.add(account_id)
                found.append(self.render(account_id, self.people[account_id]))
        values = found[start_at : start_at + max_results]
        is_last = start_at + len(values) >= len(found)

        def page_url(start: int) -> str:
            query = [("accountId", a) for a in account_ids] + [
                ("startAt", start),
                ("maxResults", max_results),
            ]
            return f"{self.base_url}{API}/user/bulk?{urlencode(query)}"

        page: dict[str, Any] = {"self": page_url(start_at)}
        if not is_last:
            page["nextPage"] = page_url(start_at + len(values))
        page.update(
            {
                "maxResults": max_results,
                "startAt": start_at,
                "total": len(found),
                "isLast": is_last,
                "values": values,
            }
        )
        return JSONResponse(page)

    def render_issue(self, issue: Issue, fields: list[str]) -> dict[str, Any]:
        wanted = {name.lstrip("-") for name in fields if not name.startswith("-")} or {"summary"}
        values = {"summary": issue.summary} if wanted & {"summary", "*all", "*navigable"} else {}
        return {
            "expand": "",
            "id": issue.issue_id,
            "self": f"{self.base_url}{API}/issue/{issue.issue_id}",
            "key": issue.key,
            "fields": values,
        }

    def bulk_issues(self, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("issueIdsOrKeys"), list):
            return error(400, "issueIdsOrKeys must be provided.")
        wanted = [str(value) for value in body["issueIdsOrKeys"]]
        fields = body.get("fields") or []
        if not isinstance(fields, list) or not all(isinstance(name, str) for name in fields):
            return error(400, "fields must be a list of field names.")
        named = bool(fields) and not any(name.startswith(("*", "-")) for name in fields)
        cap = BULK_ISSUES_NAMED_FIELDS_CAP if named else BULK_ISSUES_DEFAULT_CAP
        if not wanted or len(wanted) > cap:
            return error(400, f"Between 1 and {cap} issues can be requested at once.")
        by_key = {issue.key.lower(): issue for issue in self.issues.values()}
        found: dict[int, Issue] = {}
        failed: list[dict[str, str]] = []
        for value in wanted:
            issue = self.issues.get(value) or by_key.get(value.lower())
            if issue is None or not issue.visible:
                continue
            if issue.issue_id in self.failing_issue_ids:
                failed.append(
                    {"id": issue.issue_id, "errorMessage": "Issue could not be fetched. Try again."}
                )
                continue
            found[int(issue.issue_id)] = issue
        return JSONResponse(
            {
                "issues": [self.render_issue(found[i], fields) for i in sorted(found)],
                "issueErrors": failed,
            }
        )


def create_asgi(sandbox: JiraSandbox) -> Starlette:
    def guarded(route: str, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            if not sandbox.authorized(request):
                response: Response = error(401, "You are not authenticated. Authentication required.")
            elif request.method == "POST":
                try:
                    body = await request.json()
                except ValueError:
                    body = None
                response = handler(body)
            else:
                response = handler(request)
            sandbox.stats.record(route, response.status_code)
            return response

        return endpoint

    async def info(_: Request) -> Response:
        return JSONResponse(
            {"base_url": sandbox.base_url, "people": len(sandbox.people), "issues": len(sandbox.issues)}
        )

    async def stats(_: Request) -> Response:
        return JSONResponse(sandbox.stats.to_json())

    return Starlette(
        routes=[
            Route(f"{API}/user/bulk", guarded("user/bulk", sandbox.bulk), methods=["GET"]),
            Route(
                f"{API}/myself",
                guarded("myself", lambda _: JSONResponse(sandbox.render(API_USER_ACCOUNT, API_USER))),
                methods=["GET"],
            ),
            Route(
                f"{API}/issue/bulkfetch", guarded("issue/bulkfetch", sandbox.bulk_issues), methods=["POST"]
            ),
            Route("/_sandbox/info", info, methods=["GET"]),
            Route("/_sandbox/stats", stats, methods=["GET"]),
        ]
    )


def build_jira_sandbox(
    *, base_url: str, document: Mapping[str, Any], seed: int = 0, max_results_cap: int = MAX_RESULTS_CAP
) -> JiraSandbox:
    """The site for a Zephyr fixture document: its accounts, each the directory's person (``people_of``), and
    the issues its objects link to (``issues_of``)."""
    return JiraSandbox(
        base_url=base_url.rstrip("/"),
        people=people_of(accounts_in(document)),
        issues=issues_of(document),
        token=derive_token(seed),
        max_results_cap=max_results_cap,
    )
