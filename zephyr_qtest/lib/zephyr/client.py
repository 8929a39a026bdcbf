"""`ZephyrClient`: the Zephyr Scale Cloud REST API v2, read side, on the shared HTTP layer.

Every listing streams items (``async for``) at the largest page the API serves (``maxResults`` /
``limit`` = 1000; it may serve fewer and the paginators follow). The big collections use the cursor
("NextGen") endpoints, which stay stable while the data changes, and fall back to the offset ones
where a tenant lacks them. A listing yields what its pages hold: offset pages shift under concurrent
inserts and edits, so an object may come twice (identical, or edited in between); the raw writer judges
(`RawPartitionWriter.add_again`). Child listings (steps) keep each id once, at its first position. A 404
raises `NotFoundError`; the caller decides what it means.

Shapes seen from real tenants (REAL_SHAPES.md, Zephyr Scale Cloud): a status carries no `statusType`, so
statuses are read once per type and the caller keeps the type it asked for; a step-by-step case answers
`GET .../testscript` with 422 (its `testScript.self` points at `/teststeps`); the last page has
``"next": null``, and nextgen pages may leave `next` out (the paginators stop on either).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from zephyr_qtest.lib import progress
from zephyr_qtest.lib.http import (
    ApiClient,
    ApiError,
    AuthProvider,
    BearerToken,
    limiter_key,
)
from zephyr_qtest.lib.pagination import CursorPaginator, OffsetPaginator, Paginator, paginate

log = logging.getLogger(__name__)

# Collections whose count `reported_total` may read (the offset endpoint's `total`).
COLLECTIONS = frozenset(
    {
        "testcases",
        "testcycles",
        "testplans",
        "testexecutions",
        "folders",
        "statuses",
        "priorities",
        "environments",
    }
)
# The change filter each cursor listing takes, as SmartBear's own 2026 schema has them
# (`SmartBear/smartbear-mcp` `src/zephyr/common/rest-api-schemas.ts` @01a4733f: `updatedAfter` in
# ListTestCasesCursorPaginatedQueryParams and ListTestCyclesCursorPaginatedQueryParams; none in
# ListTestPlansCursorPaginatedQueryParams; only `actualEndDateAfter`/`Before` in
# ListTestExecutionsNextgenQueryParams). No listed object carries its update time (the schemas are strict:
# a test case has only the read-only `createdOn`, an execution its `actualEndDate`), so a delta's "since"
# is the client's own record of when it last read (`lib/raw_store.py`, the extraction log).
CHANGE_FILTERS: dict[str, str] = {
    "testcases": "updatedAfter",
    "testcycles": "updatedAfter",
    "testexecutions": "actualEndDateAfter",
}
# The values of the `statusType` filter, in the order statuses are read. A status answers under exactly one.
STATUS_TYPES: tuple[str, ...] = ("TEST_CASE", "TEST_PLAN", "TEST_CYCLE", "TEST_EXECUTION")
# `GET .../testscript` answers these when the case has no plain or BDD script: 422 for a step-by-step
# case in the 2026 schema (REAL_SHAPES.md, Zephyr Scale Cloud 2), 404 when there is none at all.
_NO_SCRIPT = frozenset({404, 422})
# A nextgen path that answers one of these on its first page does not exist on this tenant: an old API
# routes `/testcases/nextgen` to `/testcases/{testCaseKey}` and rejects or misses the "key".
_NO_NEXTGEN = frozenset({400, 404, 405})


class ZephyrClient(ApiClient):
    """Zephyr Scale Cloud v2 (``https://api.zephyrscale.smartbear.com/v2`` or the sandbox); ``async with``."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        max_in_flight: int = 16,
        page_size: int = 1000,
        timeout: float = 60.0,
        max_retries: int = 8,
        auth: AuthProvider | None = None,
        **options: Any,
    ) -> None:
        """`options` go to `ApiClient` (a test transport, a rate limiter, clock and sleep)."""
        options.setdefault("rate_limit_key", limiter_key(base_url, api_token))
        super().__init__(
            base_url,
            auth=auth or BearerToken(api_token, "Bearer"),
            timeout=timeout,
            max_in_flight=max_in_flight,
            max_retries=max_retries,
            **options,
        )
        self.page_size = page_size
        # Collections whose nextgen endpoint turned out to be missing (so later calls go straight to offset).
        self._no_nextgen: set[str] = set()
        # `total` from the last offset listing of (collection, project): `reported_total` needs no call then.
        self._totals: dict[tuple[str, str], int] = {}

    # ----------------------------------------------------------------------------------- projects

    async def iter_projects(self) -> AsyncIterator[dict]:
        async for item in self._iter_offset("projects", {}):
            yield item

    async def get_project(self, project_key: str) -> dict:
        return await self.get_json(f"projects/{_segment(project_key)}", validate=_object)

    # ------------------------------------------------------------------------ per-project lookups

    async def iter_folders(self, project_key: str) -> AsyncIterator[dict]:
        """Every folder of the project, of all types (no `folderType` filter)."""
        async for item in self._iter_offset("folders", {"projectKey": project_key}):
            yield item

    async def iter_statuses(self, project_key: str, status_type: str | None = None) -> AsyncIterator[dict]:
        """The statuses of the project of one `status_type` (the `statusType` filter), or of all types.

        The objects never say their type (REAL_SHAPES.md, Zephyr Scale Cloud 1): only the filter does, so
        a caller that needs it asks per type (`iter_typed_statuses`).
        """
        if status_type is not None and status_type not in STATUS_TYPES:
            raise ValueError(f"unknown statusType {status_type!r} (one of {', '.join(STATUS_TYPES)})")
        params = {"projectKey": project_key}
        if status_type is not None:
            params["statusType"] = status_type
        async for item in self._iter_offset("statuses", params):
            yield item

    async def iter_typed_statuses(self, project_key: str) -> AsyncIterator[tuple[str, dict]]:
        """Every status of the project as ``(statusType, status)``: one listing per type, as SmartBear's
        own scripts do, the type taken from the filter asked for."""
        for status_type in STATUS_TYPES:
            async for item in self.iter_statuses(project_key, status_type):
                yield status_type, item

    async def iter_priorities(self, project_key: str) -> AsyncIterator[dict]:
        async for item in self._iter_offset("priorities", {"projectKey": project_key}):
            yield item

    async def iter_environments(self, project_key: str) -> AsyncIterator[dict]:
        async for item in self._iter_offset("environments", {"projectKey": project_key}):
            yield item

    # ----------------------------------------------------------------------- the big collections

    async def iter_test_cases(
        self, project_key: str, *, updated_after: datetime | None = None
    ) -> AsyncIterator[dict]:
        """Every test case, or (`updated_after`) those Zephyr says were updated after that moment."""
        async for item in self._iter_changed("testcases", project_key, "updatedAfter", updated_after):
            yield item

    async def iter_test_cycles(
        self, project_key: str, *, updated_after: datetime | None = None
    ) -> AsyncIterator[dict]:
        """Every test cycle, or (`updated_after`) those Zephyr says were updated after that moment."""
        async for item in self._iter_changed("testcycles", project_key, "updatedAfter", updated_after):
            yield item

    async def iter_test_plans(self, project_key: str) -> AsyncIterator[dict]:
        # No `updatedAfter` here: the 2026 schema's test-plan cursor listing takes only projectKey, limit
        # and startAtId (`CHANGE_FILTERS`).
        async for item in self._iter_nextgen("testplans", {"projectKey": project_key}):
            yield item

    async def iter_test_executions(
        self, project_key: str, *, ended_after: datetime | None = None
    ) -> AsyncIterator[dict]:
        """Every test execution, or (`ended_after`) those whose actual end date is at or after that moment."""
        async for item in self._iter_changed(
            "testexecutions", project_key, "actualEndDateAfter", ended_after
        ):
            yield item

    async def _iter_changed(
        self, collection: str, project_key: str, name: str, moment: datetime | None
    ) -> AsyncIterator[dict]:
        """The cursor listing of `collection`, filtered by the change filter `name` when `moment` is given.

        A filtered listing has no offset fallback: an offset endpoint without the filter would answer every
        object, silently, so a tenant without nextgen answers `ApiError` and the caller reads everything.
        """
        params: dict[str, Any] = {"projectKey": project_key}
        if moment is None:
            async for item in self._iter_nextgen(collection, params):
                yield item
            return
        if CHANGE_FILTERS.get(collection) != name:
            raise ValueError(f"{collection} has no {name!r} filter (CHANGE_FILTERS)")
        params[name] = api_datetime(moment)
        async for item in self._iter(f"{collection}/nextgen", params, CursorPaginator(self.page_size)):
            yield item

    async def reported_total(self, collection: str, project_key: str) -> int | None:
        """The count the API reports for `collection` of the project (None if it reports none).

        Reuses the `total` of an offset listing this client already made of the same collection;
        otherwise one offset call with ``maxResults=1``.
        """
        if collection not in COLLECTIONS:
            raise ValueError(f"unknown collection {collection!r} (one of {sorted(COLLECTIONS)})")
        known = self._totals.get((collection, project_key))
        if known is not None:
            return known
        paginator = OffsetPaginator(1)
        params: dict[str, Any] = {"projectKey": project_key}
        paginator.init_request(params)
        paginator.update_state(await self.get_json(collection, params, validate=paginator.validate))
        return paginator.total

    # ------------------------------------------------------------------------ per-object children

    async def get_test_steps(self, test_case_key: str) -> list[dict]:
        """Every step of a test case, all pages, in order (the server serves at most 100 a page)."""
        return await self._collect(f"testcases/{_segment(test_case_key)}/teststeps")

    async def list_test_case_versions(self, test_case_key: str) -> list[dict]:
        """The versions of a test case as ``{id, self}`` references, most recent first (the spec's
        listTestCaseVersions); the version's number is the last segment of ``self``."""
        return await self._collect(f"testcases/{_segment(test_case_key)}/versions")

    async def get_test_case_version(self, test_case_key: str, version: int) -> dict:
        """One version of a test case, as a whole TestCase (its fields then; its steps are not in it)."""
        return await self.get_json(
            f"testcases/{_segment(test_case_key)}/versions/{int(version)}", validate=_object
        )

    async def get_test_script(self, test_case_key: str) -> dict | None:
        """The plain or BDD script of a test case; None when it has none: 422 (a step-by-step case, 2026
        schema) or 404. Neither is retried; a step-by-step case's steps come from `get_test_steps`, which
        its `testScript.self` names."""
        try:
            return await self.get_json(f"testcases/{_segment(test_case_key)}/testscript", validate=_object)
        except ApiError as error:
            if error.status in _NO_SCRIPT:
                return None
            raise

    async def get_execution_steps(self, execution_id_or_key: str | int) -> list[dict]:
        """Every step result of a test execution, all pages, in order."""
        return await self._collect(f"testexecutions/{_segment(str(execution_id_or_key))}/teststeps")

    async def list_attachments(self, owner_path: str) -> list[dict]:
        """The attachments of `owner_path` (``testcases/KEY``, ``testexecutions/123/teststeps/7``, …)."""
        data = await self.get_json(f"{_owner(owner_path)}/attachments", validate=_attachment_list)
        return data["attachments"]

    async def download_attachment(self, owner_path: str, attachment_id: int) -> tuple[bytes, str | None]:
        """The bytes of one attachment and its content type (as the server labels them)."""
        content, headers = await self.get_bytes(f"{_owner(owner_path)}/attachments/{int(attachment_id)}")
        return content, headers.get("content-type")

    # ------------------------------------------------------------------------------------ helpers

    async def _collect(self, path: str) -> list[dict]:
        """Every item of an offset listing of children, each id once: the first copy, which keeps the
        position it was listed at (a step's place is its meaning)."""
        items: list[dict] = []
        seen: set[Any] = set()
        async for item in self._iter(path, {}, OffsetPaginator(self.page_size)):
            ident = item.get("id") if isinstance(item, dict) else None
            if ident is not None:
                if ident in seen:
                    log.warning("%s served object id %s twice; kept the first", path, ident)
                    continue
                seen.add(ident)
            items.append(item)
        return items

    async def _iter_offset(self, collection: str, params: Mapping[str, Any]) -> AsyncIterator[dict]:
        paginator = OffsetPaginator(self.page_size)
        async for item in self._iter(collection, params, paginator, counted=_unit(collection)):
            yield item
        project_key = params.get("projectKey")
        # Only an unfiltered listing's total is the collection's (a `statusType` listing counts one type).
        if paginator.total is not None and project_key is not None and set(params) == {"projectKey"}:
            self._totals[(collection, project_key)] = paginator.total

    async def _iter_nextgen(self, collection: str, params: Mapping[str, Any]) -> AsyncIterator[dict]:
        """The cursor endpoint, or the offset one when the tenant has no nextgen endpoint."""
        if collection not in self._no_nextgen:
            first_page = True
            try:
                async for item in self._iter(
                    f"{collection}/nextgen",
                    params,
                    CursorPaginator(self.page_size),
                    counted=_unit(collection),
                ):
                    first_page = False
                    yield item
                return
            except ApiError as error:
                # Only a first page that does not exist means "no nextgen here"; later, switching
                # endpoints would repeat what was already yielded.
                if not first_page or error.status not in _NO_NEXTGEN:
                    raise
                log.info("%s/nextgen answered %s; using the offset endpoint", collection, error.status)
                self._no_nextgen.add(collection)
        async for item in self._iter_offset(collection, params):
            yield item

    async def _iter(
        self, path: str, params: Mapping[str, Any], paginator: Paginator, *, counted: str | None = None
    ) -> AsyncIterator[dict]:
        """Items of every page, as the pages hold them; a listing `counted` as a stage's objects reports its
        pages' items and, when its first page carries one, its total (``lib/progress``)."""
        first = True
        async for page in paginate(self, path, params, paginator):
            if counted is not None:
                total = getattr(paginator, "total", None)
                if first and total is not None:
                    progress.expect(total, counted)
                progress.advance(len(page.items), counted)
                first = False
            for item in page.items:
                yield item


def _unit(collection: str) -> str:
    """What a collection's items are called on the terminal: ``testcases`` -> ``test cases``."""
    return f"test {collection[4:]}" if collection.startswith("test") else collection


def api_datetime(moment: datetime) -> str:
    """A moment in the API's date-time format, ``yyyy-MM-dd'T'HH:mm:ss'Z'`` (UTC, whole seconds, rounded
    down: a filter "after" an earlier second only widens what is read)."""
    if moment.tzinfo is None:
        raise ValueError("a change filter needs an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _segment(value: str) -> str:
    """One path segment: a key or id can never reach another path (``/``, ``..``, ``?``)."""
    return quote(value, safe="")


def _owner(owner_path: str) -> str:
    """An attachment owner path relative to the API root, each segment escaped."""
    segments = owner_path.strip("/").split("/")
    if not owner_path.strip("/") or any(segment in ("", ".", "..") for segment in segments):
        raise ValueError(f"not an attachment owner path: {owner_path!r}")
    return "/".join(_segment(segment) for segment in segments)


def _object(data: Any) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")


def _attachment_list(data: Any) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("attachments"), list):
        raise ValueError("expected an object with an 'attachments' list")
