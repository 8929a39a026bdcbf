"""The Zephyr Scale Cloud sandbox as an ASGI app (Starlette), faithful to the vendor's v2 spec.

``create_app(fixture, base_url=..., token_secret=...)`` returns a ``ZephyrSandbox`` whose ``.asgi``
serves, under ``/v2``, every GET the migration uses (offset pages and 2026 cursor "nextgen" pages,
test scripts and steps, executions and their step results, links, versions, 2026 attachments), with
Bearer-JWT auth, CORS headers on every answer, and the switches of ``faults.py``. Admin endpoints
under ``/_sandbox/`` (no auth, not part of the vendor API) expose request statistics, change the
switches at run time, and edit or delete objects mid-run.

Where things are: this module holds the sandbox (data, token, switches, statistics, paging);
``routes/`` the routes, one module per resource; ``api.py`` the request parsing, lookups and error
answers they share; ``middleware.py`` the outer layer (auth, switches, CORS, statistics).

Decisions the spec leaves open are listed in docs/zephyr-sandbox.md; the client is written to
the same rules.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.common import RequestStats
from zephyr_qtest.sandbox.zephyr.api import (
    MAX_PAGE,
    MAX_START_AT,
    ApiError,
    error_body,
    int_query,
    json_response,
)
from zephyr_qtest.sandbox.zephyr.auth import cdn_session_token, mint_token
from zephyr_qtest.sandbox.zephyr.faults import FaultConfig, FaultInjector
from zephyr_qtest.sandbox.zephyr.middleware import SandboxMiddleware
from zephyr_qtest.sandbox.zephyr.routes import api_routes
from zephyr_qtest.sandbox.zephyr.store import Record, Selection, ZephyrStore

# ---------------------------------------------------------------------------- statistics


class ZephyrRequestStats(RequestStats):
    """What the server saw: the benchmark reads it to learn how many requests a client really made."""

    counters = (
        "rate_limited",
        "server_errors",
        "injected_faults",
        "drops",
        "malformed",
        "unauthorized",
        "bytes_sent",
    )
    malformed: int
    bytes_sent: int

    def record(self, key: str, status: int | str, size: int = 0) -> None:
        """Count one request under its route template, with the bytes its answer carried."""
        super().record(key, status)
        self.bytes_sent += size


# ---------------------------------------------------------------------------- the sandbox


class ZephyrSandbox:
    """Everything one running sandbox holds: data, token, switches, statistics, and its ASGI app."""

    def __init__(
        self,
        fixture: Mapping[str, Any],
        *,
        base_url: str,
        token_secret: bytes,
        faults: FaultConfig | None = None,
    ) -> None:
        self.store = ZephyrStore(fixture, base_url=base_url)
        self.base_url = self.store.base_url
        self.secret = token_secret
        self.token = mint_token(token_secret)
        # A browser session's token for the inline images (routes/cdn.py): not the API token.
        self.cdn_token = cdn_session_token(token_secret)
        self.faults = FaultInjector(faults)
        self.stats = ZephyrRequestStats()
        self.app = self._build_app()
        self._templates = [
            (route.path_regex, route.path) for route in self.app.routes if isinstance(route, Route)
        ]
        self.asgi = SandboxMiddleware(self.app, self)

    # ------------------------------------------------------------------ paging

    def _cap(self, endpoint_cap: int) -> int:
        page_cap = self.faults.config.page_cap
        return min(endpoint_cap, page_cap) if page_cap else endpoint_cap

    def _next_url(self, request: Request, replace: Mapping[str, Any]) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k not in replace]
        params.extend((k, str(v)) for k, v in replace.items())
        api_path = request.url.path[len("/v2") :]
        return f"{self.base_url}{api_path}?{urlencode(params)}"

    def offset_page(
        self,
        request: Request,
        items: Sequence[Any],
        render: Callable[[Any], str] | None = None,
        *,
        endpoint_cap: int = MAX_PAGE,
    ) -> Response:
        """A ``PagedList`` of ``items`` (records, or what ``render`` turns into JSON text): ``maxResults``
        is the effective one, ``next`` null on the last page (REAL_SHAPES.md, Zephyr Scale Cloud 3)."""
        requested = int_query(request, "maxResults", 10, low=1)
        start_at = int_query(request, "startAt", 0, low=0, high=MAX_START_AT)
        assert requested is not None and start_at is not None
        max_results = min(requested, self._cap(endpoint_cap))
        items = self._with_edited_copies(items)
        total = len(items)
        chunk = items[start_at : start_at + max_results]
        is_last = start_at + max_results >= total
        self._edit_between_pages(items, chunk, start_at, is_last)
        next_url = (
            None
            if is_last
            else self._next_url(request, {"startAt": start_at + max_results, "maxResults": max_results})
        )
        body = (
            f'{{"next":{json.dumps(next_url)},"startAt":{start_at},"maxResults":{max_results},'
            f'"total":{total},"isLast":{"true" if is_last else "false"},"values":['
            + ",".join((render or self.store.render)(item) for item in chunk)
            + "]}"
        )
        return json_response(body)

    def _with_edited_copies(self, items: Sequence[Any]) -> Sequence[Any]:
        """``items`` with the second copy of each object an ``edited_between_pages`` rule edited while
        this listing was being read (faults.EditRule)."""
        for rule in self.faults.config.edited_between_pages:
            if rule.insert_at is None or rule.done:
                continue
            record = self.store.get(rule.kind, rule.key)
            if record is not None and any(item is record for item in items):
                items = [*items[: rule.insert_at], record, *items[rule.insert_at :]]
        return items

    def _edit_between_pages(
        self, items: Sequence[Any], chunk: Sequence[Any], start_at: int, is_last: bool
    ) -> None:
        """Edit the objects of ``edited_between_pages`` rules this page served; spend the rules whose
        listing this page ends."""
        for rule in self.faults.config.edited_between_pages:
            if rule.done:
                continue
            record = self.store.get(rule.kind, rule.key)
            if rule.insert_at is None:
                if record is not None and any(item is record for item in chunk):
                    self.store.mutate(rule.kind, rule.key, rule.set)
                    rule.insert_at = start_at + len(chunk)
            elif is_last and any(item is record for item in items):
                rule.done = True

    def answer(self, record: Record) -> Response:
        """One object, as the store renders it."""
        return json_response(self.store.render(record))

    def links_answer(self, record: Record, path: str, kinds: tuple[str, ...]) -> Response:
        """The ``links`` of ``record`` at ``/v2{path}``: a ``self`` link and a list per kind of link."""
        links = record.obj.get("links") if isinstance(record.obj.get("links"), dict) else {}
        body = {"self": f"{self.base_url}{path}", **{kind: links.get(kind) or [] for kind in kinds}}
        return json_response(self.store.to_json(body))

    def cursor_page(self, request: Request, selection: Selection) -> Response:
        """A 2026 "nextgen" page: items with id >= startAtId in id order; ``next`` and ``nextStartAtId``
        null on the last ([ZS26] in API_NOTES.md Z-2; REAL_SHAPES.md, Zephyr Scale Cloud 3), or ``next``
        left out of every page under the ``nextgen_omit_next`` switch (the same item: real pages may)."""
        if self.faults.config.nextgen_missing:
            # As an unknown path answers: the tenant predates the cursor endpoints.
            raise ApiError(404, "Not found")
        limit = int_query(request, "limit", 10, low=1, high=MAX_PAGE)
        start_at_id = int_query(request, "startAtId", 0, low=0)
        assert limit is not None and start_at_id is not None
        limit = min(limit, self._cap(MAX_PAGE))
        # Objects without an id (bad fixtures) cannot be reached by a cursor; they sort last.
        end = bisect.bisect_left(selection.ids, 2**63)
        first = bisect.bisect_left(selection.ids, start_at_id, 0, end)
        chunk = selection.records[first : min(first + limit, end)]
        next_id = selection.ids[first + limit] if first + limit < end else None
        next_url = (
            None if next_id is None else self._next_url(request, {"startAtId": next_id, "limit": limit})
        )
        next_member = "" if self.faults.config.nextgen_omit_next else f'"next":{json.dumps(next_url)},'
        body = (
            f'{{{next_member}"nextStartAtId":{json.dumps(next_id)},"limit":{limit},"values":['
            + ",".join(self.store.render(record) for record in chunk)
            + "]}"
        )
        return json_response(body)

    # ------------------------------------------------------------------ the app

    def _build_app(self) -> Starlette:
        async def on_api_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, ApiError)
            return json_response(error_body(exc.status, exc.message), exc.status)

        async def on_http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
            return json_response(error_body(exc.status_code, message), exc.status_code)

        return Starlette(
            routes=api_routes(self),
            exception_handlers={ApiError: on_api_error, HTTPException: on_http_error},
        )

    def template_for(self, path: str) -> str:
        """The route template of an API path (how the statistics group requests)."""
        for regex, template in self._templates:
            if regex.match(path):
                return template
        return "(unmatched)"


def create_app(
    fixture: Mapping[str, Any],
    *,
    base_url: str = "http://testserver/v2",
    token_secret: bytes,
    faults: FaultConfig | None = None,
) -> ZephyrSandbox:
    """Build a sandbox for ``fixture``; serve ``.asgi`` (the ASGI callable) with any ASGI server.

    ``base_url`` is the API root the sandbox is reachable at: every ``self`` and ``next`` link
    is made on it.
    """
    return ZephyrSandbox(fixture, base_url=base_url, token_secret=token_secret, faults=faults)
