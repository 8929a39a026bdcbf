"""`QtestClient`: the qTest Manager REST API v3 on the shared HTTP layer.

Every call the migration makes and every call a reader needs to check the result. Creates are POSTs
that qTest cannot deduplicate: the HTTP layer never resends one that may have reached the server
(`AmbiguousWriteError`); the exactly-once protocol (``exactly_once.py``) resolves those through the id map
and a lookup. Listings follow qTest's two page shapes (plain arrays paged by ``page``/``pageSize`` or
``size``, and wrapped ``{page, page_size, total, items}`` pages).

Authentication: an API token (``Authorization: bearer <token>``, never expires), or a user name and
password exchanged at ``/oauth/token`` and exchanged again when the server answers 401.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from zephyr_qtest.lib.http import ApiClient, ApiError, AuthProvider, BearerToken, limiter_key
from zephyr_qtest.lib.pagination import PageNumberPaginator, WrappedPagePaginator, paginate
from zephyr_qtest.lib.redaction import register_secret

log = logging.getLogger(__name__)

# The object types of /settings/{objectType}/fields that the migration reads.
FIELD_OBJECT_TYPES = ("test-cases", "test-runs", "test-suites", "releases", "test-steps")
# Blob-handle targets (qTest refuses test-runs: attach to the test log instead).
BLOB_OBJECT_TYPES = frozenset(
    {
        "releases",
        "builds",
        "requirements",
        "test-cases",
        "test-logs",
        "test-steps",
        "test-step-logs",
        "defects",
    }
)
QUEUE_DONE_STATES = frozenset({"SUCCESS", "FAILED"})


class QtestOAuth(AuthProvider):
    """User name and password exchanged for a bearer token at ``/oauth/token``; again on a 401."""

    def __init__(
        self, site_url: str, username: str, password: str, *, transport: Any = None, timeout: Any = 30.0
    ) -> None:
        register_secret(password)
        self._site_url = site_url.rstrip("/")
        self._username = username
        self._password = password
        self._transport = transport
        # The client's own timeout: a preflight's short connect timeout holds for the login too.
        self._timeout = timeout
        self._value: str | None = None
        self._lock = asyncio.Lock()

    async def authorization(self) -> str | None:
        if self._value is None:
            await self._login()
        return self._value

    async def refresh(self) -> bool:
        self._value = None
        await self._login()
        return self._value is not None

    async def _login(self) -> None:
        async with self._lock:
            if self._value is not None:
                return
            site_name = (urlsplit(self._site_url).hostname or "").split(".")[0]
            basic = base64.b64encode(f"{site_name}:".encode()).decode()
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as http:
                response = await http.post(
                    f"{self._site_url}/oauth/token",
                    data={"grant_type": "password", "username": self._username, "password": self._password},
                    headers={"Authorization": f"Basic {basic}"},
                )
            if response.status_code != 200:
                raise ApiError(
                    "POST", f"{self._site_url}/oauth/token", response.status_code,
                    f"qTest login as {self._username} refused ({response.status_code})",
                )  # fmt: skip
            token = response.json()["access_token"]
            register_secret(token)
            self._value = f"{response.json().get('token_type', 'bearer')} {token}"

    def __repr__(self) -> str:
        return f"QtestOAuth({self._username!r}, ***)"


def _array(data: Any) -> None:
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON array, got {type(data).__name__}")


def _version_number(version: Mapping[str, Any]) -> tuple[int, ...]:
    """A test case version's number ("2.1") as (2, 1); one qTest did not number goes first."""
    parts = str(version.get("version") or "").split(".")
    return tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else (-1,)


def _object(data: Any) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")


def rate_limit_key(
    site_url: str, api_token: str | None, username: str | None = None, password: str | None = None
) -> str:
    """What qTest counts requests against (the site and the token, or the user), as the key of the
    process-wide limiter (``lib/http.py``): it holds no secret."""
    return limiter_key(site_url, api_token or f"{username}:{password}")


class QtestClient(ApiClient):
    """qTest Manager v3 at a site URL (``https://<site>.qtestnet.com`` or the sandbox); ``async with``."""

    def __init__(
        self,
        site_url: str,
        api_token: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        max_in_flight: int = 16,
        timeout: float | httpx.Timeout = 60.0,
        max_retries: int = 8,
        page_size: int = 100,
        **options: Any,
    ) -> None:
        """`options` go to `ApiClient` (a test transport, a rate limiter, clock and sleep)."""
        if api_token:
            auth: AuthProvider = BearerToken(api_token, "bearer")
        elif username and password:
            auth = QtestOAuth(
                site_url, username, password, transport=options.get("transport"), timeout=timeout
            )
        else:
            raise ValueError("qTest needs an API token, or a user name and password")
        options.setdefault("rate_limit_key", rate_limit_key(site_url, api_token, username, password))
        self.site_url = site_url.rstrip("/")
        super().__init__(
            f"{self.site_url}/api/v3",
            auth=auth,
            timeout=timeout,
            max_in_flight=max_in_flight,
            max_retries=max_retries,
            **options,
        )
        self.page_size = page_size

    # ---------------------------------------------------------------------------------- listings

    async def _iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, size_param: str = "pageSize"
    ):
        paginator = PageNumberPaginator(self.page_size, size_param=size_param)
        async for page in paginate(self, path, params, paginator):
            for item in page.items:
                yield item

    async def _iter_wrapped(self, path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[dict]:
        async for page in paginate(self, path, params, WrappedPagePaginator(self.page_size)):
            for item in page.items:
                yield item

    # ----------------------------------------------------------------------------------- projects

    async def list_projects(self) -> list[dict]:
        return [project async for project in self._iter_pages("projects")]

    async def create_project(self, name: str, description: str = "") -> dict:
        body = {"name": name, "description": description}
        return await self.request_json("POST", "projects", json_body=body, validate=_object)

    async def list_users(self, project_id: int) -> list[dict]:
        return await self.get_json(f"projects/{project_id}/users", validate=_array)

    # ------------------------------------------------------------------------------ field settings

    async def get_fields(
        self, project_id: int, object_type: str, *, include_inactive: bool = False
    ) -> list[dict]:
        """Field settings of one object type, with their allowed values (active fields only, unless
        `include_inactive`)."""
        params = {"includeInactive": "true"} if include_inactive else None
        return await self.get_json(
            f"projects/{project_id}/settings/{object_type}/fields", params, validate=_array
        )

    async def create_field(self, project_id: int, object_type: str, body: Mapping[str, Any]) -> dict:
        """A custom field (``{label, data_type, multiple?, allowed_values?}``); needs a project admin."""
        return await self.request_json(
            "POST",
            f"projects/{project_id}/settings/{object_type}/fields",
            json_body=dict(body),
            validate=_object,
        )

    async def add_allowed_values(
        self, project_id: int, object_type: str, field_id: int, labels: Sequence[str]
    ) -> None:
        """New allowed values of a picklist field (at most 100 a call, the swagger's limit)."""
        await self.request_json(
            "POST",
            f"projects/{project_id}/settings/{object_type}/fields/{field_id}/allowed-values",
            json_body=[{"label": label} for label in labels],
        )

    async def execution_statuses(self, project_id: int) -> list[dict]:
        return await self.get_json(f"projects/{project_id}/test-runs/execution-statuses", validate=_array)

    # ------------------------------------------------------------------------------------ modules

    async def list_modules(
        self, project_id: int, *, parent_id: int | None = None, descendants: bool = False
    ) -> list[dict]:
        params: dict[str, Any] = {}
        if parent_id is not None:
            params["parentId"] = parent_id
        if descendants:
            params["expand"] = "descendants"
        return await self.get_json(f"projects/{project_id}/modules", params, validate=_array)

    async def create_module(self, project_id: int, body: Mapping[str, Any], parent_id: int | None) -> dict:
        """A module under `parent_id` (None: the root). The parent goes in the ``parentId`` query parameter,
        never in the body: the swagger's createModule takes it there for qTest 6+ (the body's ``parent_id``
        is the pre-6 way)."""
        params = {"parentId": parent_id} if parent_id else None
        body = {key: value for key, value in body.items() if key != "parent_id"}
        return await self.request_json(
            "POST", f"projects/{project_id}/modules", params=params, json_body=body, validate=_object
        )

    async def update_module(self, project_id: int, module_id: int, body: Mapping[str, Any]) -> dict:
        return await self.request_json(
            "PUT", f"projects/{project_id}/modules/{module_id}", json_body=dict(body), validate=_object
        )

    # --------------------------------------------------------------------------------- test cases

    async def create_test_case(self, project_id: int, body: Mapping[str, Any]) -> dict:
        """Creates the case with its steps in one call (qTest answers 200, with the steps' ids)."""
        return await self.request_json(
            "POST", f"projects/{project_id}/test-cases", json_body=dict(body), validate=_object
        )

    async def update_test_case(self, project_id: int, test_case_id: int, body: Mapping[str, Any]) -> dict:
        return await self.request_json(
            "PUT", f"projects/{project_id}/test-cases/{test_case_id}", json_body=dict(body), validate=_object
        )

    async def approve_test_case(self, project_id: int, test_case_id: int) -> dict:
        return await self.request_json(
            "PUT", f"projects/{project_id}/test-cases/{test_case_id}/approve", validate=_object
        )

    async def get_test_case(
        self, project_id: int, test_case_id: int | str, *, with_steps: bool = True
    ) -> dict:
        params = {"expand": "teststep"} if with_steps else None
        return await self.get_json(
            f"projects/{project_id}/test-cases/{test_case_id}", params, validate=_object
        )

    async def list_test_case_versions(self, project_id: int, test_case_id: int) -> list[dict]:
        """The case's approved major versions and its last unapproved one after them (the swagger's
        getVersions), oldest first by their number ("2.1"): the swagger's examples list them so, but
        do not promise the order."""
        found = await self.get_json(
            f"projects/{project_id}/test-cases/{test_case_id}/versions", validate=_array
        )
        return sorted((item for item in found if isinstance(item, dict)), key=_version_number)

    async def iter_test_cases(self, project_id: int, *, with_steps: bool = True) -> AsyncIterator[dict]:
        params = {"expandProps": "true", "expandSteps": "true" if with_steps else "false"}
        async for case in self._iter_pages(f"projects/{project_id}/test-cases", params, size_param="size"):
            yield case

    # ------------------------------------------------------------------------- releases and cycles

    async def create_release(self, project_id: int, body: Mapping[str, Any]) -> dict:
        return await self.request_json(
            "POST", f"projects/{project_id}/releases", json_body=dict(body), validate=_object
        )

    async def update_release(self, project_id: int, release_id: int, body: Mapping[str, Any]) -> dict:
        return await self.request_json(
            "PUT", f"projects/{project_id}/releases/{release_id}", json_body=dict(body), validate=_object
        )

    async def list_releases(self, project_id: int) -> list[dict]:
        return await self.get_json(f"projects/{project_id}/releases", validate=_array)

    async def create_test_cycle(
        self, project_id: int, body: Mapping[str, Any], *, parent_id: int, parent_type: str
    ) -> dict:
        params = {"parentId": parent_id, "parentType": parent_type}
        return await self.request_json(
            "POST",
            f"projects/{project_id}/test-cycles",
            params=params,
            json_body=dict(body),
            validate=_object,
        )

    async def update_test_cycle(
        self,
        project_id: int,
        cycle_id: int,
        body: Mapping[str, Any],
        *,
        parent_id: int | None = None,
        parent_type: str | None = None,
    ) -> dict:
        """PUT the cycle; with a parent, it is also moved there (the swagger's parentId / parentType)."""
        params = {} if parent_type is None else {"parentId": parent_id, "parentType": parent_type}
        return await self.request_json(
            "PUT",
            f"projects/{project_id}/test-cycles/{cycle_id}",
            params=params or None,
            json_body=dict(body),
            validate=_object,
        )

    async def list_test_cycles(
        self, project_id: int, *, parent_id: int = 0, parent_type: str = "root", descendants: bool = False
    ) -> list[dict]:
        params: dict[str, Any] = {"parentId": parent_id, "parentType": parent_type, "pageSize": -1}
        if descendants:
            params["expand"] = "descendants"
        return await self.get_json(f"projects/{project_id}/test-cycles", params, validate=_array)

    # ---------------------------------------------------------------------------------- test runs

    async def create_test_run(
        self, project_id: int, body: Mapping[str, Any], *, parent_id: int, parent_type: str
    ) -> dict:
        params = {"parentId": parent_id, "parentType": parent_type}
        return await self.request_json(
            "POST", f"projects/{project_id}/test-runs", params=params, json_body=dict(body), validate=_object
        )

    async def update_test_run(self, project_id: int, run_id: int, body: Mapping[str, Any]) -> dict:
        return await self.request_json(
            "PUT", f"projects/{project_id}/test-runs/{run_id}", json_body=dict(body), validate=_object
        )

    async def move_test_run(self, project_id: int, run_id: int, parent_id: int, parent_type: str) -> dict:
        """Moves a run to another container (with these parameters qTest ignores the body)."""
        return await self.request_json(
            "PUT", f"projects/{project_id}/test-runs/{run_id}",
            params={"parentId": parent_id, "parentType": parent_type}, json_body={}, validate=_object,
        )  # fmt: skip

    async def iter_test_runs(
        self, project_id: int, *, parent_id: int = 0, parent_type: str = "root", descendants: bool = False
    ) -> AsyncIterator[dict]:
        params: dict[str, Any] = {"parentId": parent_id, "parentType": parent_type}
        if descendants:
            params["expand"] = "descendants"
        async for run in self._iter_wrapped(f"projects/{project_id}/test-runs", params):
            yield run

    # ---------------------------------------------------------------------------------- test logs

    async def create_test_log(self, project_id: int, run_id: int, body: Mapping[str, Any]) -> dict:
        return await self.request_json(
            "POST",
            f"projects/{project_id}/test-runs/{run_id}/test-logs",
            json_body=dict(body),
            validate=_object,
        )

    async def update_test_log(
        self, project_id: int, run_id: int, log_id: int, body: Mapping[str, Any]
    ) -> dict:
        return await self.request_json(
            "PUT", f"projects/{project_id}/test-runs/{run_id}/test-logs/{log_id}", json_body=dict(body),
            validate=_object,
        )  # fmt: skip

    async def update_automation_log(
        self, project_id: int, run_id: int, log_id: int, body: Mapping[str, Any]
    ) -> dict:
        """Modifies an automation test log (swagger modifyAutomationLog, qTest 9.1.5+): a manual log's PUT is
        documented for manual logs only. encodeNote=false: the note is HTML (the swagger: true, the default,
        takes it as plain text)."""
        return await self.request_json(
            "PUT", f"projects/{project_id}/test-runs/{run_id}/auto-test-logs/{log_id}",
            params={"encodeNote": "false"}, json_body=dict(body), validate=_object,
        )  # fmt: skip

    async def get_test_log(self, project_id: int, run_id: int, log_id: int) -> dict:
        return await self.get_json(
            f"projects/{project_id}/test-runs/{run_id}/test-logs/{log_id}", validate=_object
        )

    async def iter_test_logs(self, project_id: int, run_id: int) -> AsyncIterator[dict]:
        async for item in self._iter_wrapped(f"projects/{project_id}/test-runs/{run_id}/test-logs"):
            yield item

    async def submit_auto_test_logs(self, project_id: int, body: Mapping[str, Any]) -> dict:
        """The bulk, asynchronous automation endpoint; returns the queue entry to poll."""
        return await self.request_json(
            "POST", f"projects/{project_id}/auto-test-logs", params={"type": "automation"},
            json_body=dict(body), validate=_object,
        )  # fmt: skip

    async def wait_for_queue(
        self,
        queue_id: int,
        *,
        first_interval: float = 0.25,
        max_interval: float = 5.0,
        timeout: float = 3600.0,
    ) -> dict:
        """Polls ``queue-processing/{id}`` until SUCCESS or FAILED (or `timeout` seconds). The wait between
        polls starts short and doubles: most jobs end within a second, a long queue is not polled hard."""
        waited, interval = 0.0, first_interval
        while True:
            state = await self.get_json(f"projects/queue-processing/{queue_id}", validate=_object)
            if state.get("state") in QUEUE_DONE_STATES:
                return state
            if waited >= timeout:
                raise ApiError(
                    "GET",
                    f"queue-processing/{queue_id}",
                    None,
                    f"still {state.get('state')} after {timeout:.0f}s",
                )
            await asyncio.sleep(interval)
            waited += interval
            interval = min(interval * 2, max_interval)

    # -------------------------------------------------------------------------------- attachments

    async def upload_attachment(
        self, project_id: int, object_type: str, object_id: int, name: str, content_type: str, content: bytes
    ) -> dict:
        if object_type not in BLOB_OBJECT_TYPES:
            raise ValueError(f"qTest takes no attachments on {object_type}")
        response = await self.request(
            "POST", f"projects/{project_id}/{object_type}/{object_id}/blob-handles", content=content,
            # Neither the swagger nor any source gives the encoding of a non-ASCII name (a header cannot
            # carry it as text): it is sent as UTF-8 bytes, which the sandbox decodes; verify on a real site.
            headers={"File-Name": name.encode("utf-8"), "Content-Type": content_type or "application/octet-stream"},
        )  # fmt: skip
        return response.json()

    async def delete_attachment(
        self, project_id: int, object_type: str, object_id: int, blob_id: int
    ) -> None:
        await self.request(
            "DELETE", f"projects/{project_id}/{object_type}/{object_id}/blob-handles/{blob_id}"
        )

    async def list_attachments(self, project_id: int, object_type: str, object_id: int) -> list[dict]:
        return await self.get_json(
            f"projects/{project_id}/{object_type}/{object_id}/attachments", validate=_array
        )

    async def download_attachment(
        self, project_id: int, object_type: str, object_id: int, attachment_id: int
    ) -> bytes:
        content, _ = await self.get_bytes(
            f"projects/{project_id}/{object_type}/{object_id}/attachments/{attachment_id}"
        )
        return content

    # ------------------------------------------------------------------------- requirements, links

    async def create_requirement(self, project_id: int, body: Mapping[str, Any]) -> dict:
        """A requirement at the project's root (swagger createRequirement: ``name`` and ``properties``)."""
        return await self.request_json(
            "POST", f"projects/{project_id}/requirements", json_body=dict(body), validate=_object
        )

    async def update_requirement(self, project_id: int, requirement_id: int, body: Mapping[str, Any]) -> dict:
        return await self.request_json(
            "PUT", f"projects/{project_id}/requirements/{requirement_id}", json_body=dict(body),
            validate=_object,
        )  # fmt: skip

    async def list_requirements(self, project_id: int, *, external_properties: bool = False) -> list[dict]:
        """Every requirement of the project (swagger getRequirements: a bare array, ``page`` and ``size``);
        `external_properties`: with the ``external_properties`` of those a Jira integration imported, which
        qTest returns only when asked (``includeExternalProperties=true``)."""
        params = {"includeExternalProperties": "true"} if external_properties else None
        return [
            item
            async for item in self._iter_pages(
                f"projects/{project_id}/requirements", params, size_param="size"
            )
        ]

    async def link_artifacts(
        self, project_id: int, object_type: str, object_id: int, linked_type: str, linked_ids: Sequence[int]
    ) -> list[dict]:
        """Links `linked_ids` (of `linked_type`) to the object (swagger linkArtifacts: the body is the
        array of ids; qTest ignores those it cannot link, so the caller reads the links back)."""
        return await self.request_json(
            "POST", f"projects/{project_id}/{object_type}/{object_id}/link", params={"type": linked_type},
            json_body=list(linked_ids), validate=_array,
        )  # fmt: skip

    async def linked_artifacts(self, project_id: int, object_type: str, ids: Sequence[int]) -> list[dict]:
        """What the objects are linked to (swagger ``find`` on linked-artifacts): one container per object,
        ``{id, pid, objects: [{id, pid, link_type, self}]}``."""
        return await self.get_json(
            f"projects/{project_id}/linked-artifacts",
            {"type": object_type, "ids": list(ids)},
            validate=_array,
        )

    # ------------------------------------------------------------------------------------- search

    async def search(
        self, project_id: int, object_type: str, query: str, *, fields: Sequence[str] = ("*",)
    ) -> list[dict]:
        """``POST /search``, every page (a read: safe to resend, so it is retried like a GET)."""
        found: list[dict] = []
        page = 1
        while True:
            data = await self.request_json(
                "POST", f"projects/{project_id}/search",
                params={"page": page, "pageSize": self.page_size},
                json_body={"object_type": object_type, "fields": list(fields), "query": query},
                validate=_object, retry=True,
            )  # fmt: skip
            items = data.get("items") or []
            found.extend(items)
            if not items or len(found) >= int(data.get("total") or 0):
                return found
            page += 1


def quote_search_value(value: str) -> str:
    """A value inside the search query's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
