"""Jira Cloud's user API (REST v3), the one thing a migration asks Jira: who an Atlassian account id is.

Zephyr Scale Cloud names people by account id only (``owner.accountId``, ``executedById``,
``assignedToId``, user custom fields). ``GET /rest/api/3/user/bulk?accountId=..&accountId=..`` answers
their display names and, where each person's profile lets it, their e-mail addresses, as a ``PageBean``
(``startAt, maxResults, total, isLast, values``: the same offset pages as Zephyr's, so
``OffsetPaginator`` reads them). Auth is HTTP Basic with an Atlassian account's e-mail and an API token
(Atlassian's "Basic auth for REST APIs"; jira-python's ``basic_auth=(email, token)``); the token is
registered as a secret, so it never shows in a log or an error.

The ids go in batches (``batch_size`` per request, a URL of a few kilobytes), each batch paged.
"""

from __future__ import annotations

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
