"""The sandbox's admin endpoints under ``/_sandbox/`` (not part of the vendor API, no auth): information,
request statistics, switches, counts, dump, reset, a drag in the tree as a user does it in qTest's UI, and
Jira issues imported as requirements the way a site's Jira integration would (``store/requirements.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.common import FaultConfigError, read_switch_changes
from zephyr_qtest.sandbox.qtest.routes.http import (
    guarded_route,
    json_body,
    json_response,
    path_int,
)
from zephyr_qtest.sandbox.qtest.store import QTestError

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The admin routes: the sandbox's information, statistics, switches and store."""
    store = sandbox.store

    async def admin_info(request: Request) -> Response:
        return json_response(
            {
                "base_url": sandbox.base_url,
                "api_url": sandbox.api_url,
                "token": sandbox.token,
                "username": sandbox.username,
                "password": sandbox.password,
                "state_dir": str(store.state_dir),
                "site_seed": store.site_seed,
                "faults": sandbox.faults.config.to_json(),
                "settings": sandbox.settings(),
                "counts": store.counts(),
            }
        )

    async def admin_stats(request: Request) -> Response:
        return json_response(sandbox.stats.to_json())

    async def admin_stats_reset(request: Request) -> Response:
        sandbox.stats.reset()
        return json_response(sandbox.stats.to_json())

    async def admin_faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = read_switch_changes(await request.body())
                sandbox.apply_settings(changes)
                sandbox.faults.update(changes)
            except FaultConfigError as exc:
                raise QTestError(400, str(exc)) from None
        return json_response({**sandbox.faults.config.to_json(), **sandbox.settings()})

    async def admin_counts(request: Request) -> Response:
        raw = request.path_params.get("projectId")
        return json_response(store.counts(None if raw is None else path_int(request, "projectId")))

    async def admin_dump(request: Request) -> Response:
        return json_response(store.dump(path_int(request, "projectId")))

    async def admin_jira_import(request: Request) -> Response:
        return json_response(
            store.import_jira_issues(path_int(request, "projectId"), await json_body(request))
        )

    async def admin_drag(request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict) or not all(isinstance(body.get(k), int) for k in ("id", "position")):
            raise QTestError(400, 'a drag takes {"kind": ..., "id": <int>, "position": <int>}')
        return json_response(
            store.drag(path_int(request, "projectId"), str(body.get("kind")), body["id"], body["position"])
        )

    async def admin_reset(request: Request) -> Response:
        store.reset()
        sandbox.ensure_projects()
        return json_response(store.counts())

    return [
        guarded_route("/_sandbox/info", admin_info, ["GET"]),
        guarded_route("/_sandbox/stats", admin_stats, ["GET"]),
        guarded_route("/_sandbox/stats/reset", admin_stats_reset, ["POST"]),
        guarded_route("/_sandbox/faults", admin_faults, ["GET", "POST"]),
        guarded_route("/_sandbox/counts", admin_counts, ["GET"]),
        guarded_route("/_sandbox/counts/{projectId}", admin_counts, ["GET"]),
        guarded_route("/_sandbox/dump/{projectId}", admin_dump, ["GET"]),
        guarded_route("/_sandbox/drag/{projectId}", admin_drag, ["POST"]),
        guarded_route("/_sandbox/reset", admin_reset, ["POST"]),
        guarded_route("/_sandbox/jira-import/{projectId}", admin_jira_import, ["POST"]),
    ]
