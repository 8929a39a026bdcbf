"""Auth (``/oauth/token``, ``/oauth/status``, ``/oauth/revoke``) and the users of the site and of a
project."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.qtest import auth
from zephyr_qtest.sandbox.qtest.routes.http import (
    API,
    MAX_USER_PAGE_SIZE,
    PROJECT,
    bool_query,
    guarded_route,
    json_response,
    page_query,
    paged,
    path_int,
)
from zephyr_qtest.sandbox.qtest.store import QTestError

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def _header_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    token = auth.bearer_token(header)
    if token is None and header and " " not in header.strip():
        token = header.strip()  # "The qTest access token you want to check", bare
    return token


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The auth and user routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def oauth_token(request: Request) -> Response:
        client = auth.basic_client(request.headers.get("authorization"))
        allowed = {sandbox.site_name, auth.REFRESH_CLIENT} if sandbox.site_name else None
        if client is None or (allowed is not None and client not in allowed):
            return json_response(
                {"error": "unauthorized", "error_description": "Missing or invalid Authorization header"},
                401,
            )
        form = auth.parse_form(await request.body())
        grant = form.get("grant_type", "password")
        try:
            if grant == "password":
                return json_response(store.login(form.get("username"), form.get("password")))
            if grant == "refresh_token":
                return json_response(store.refresh(form.get("refresh_token")))
        except QTestError as exc:
            return json_response({"error": "invalid_grant", "error_description": exc.message}, 400)
        return json_response(
            {"error": "unsupported_grant_type", "error_description": f"Unsupported grant type: {grant}"},
            400,
        )

    async def oauth_status(request: Request) -> Response:
        token = _header_token(request)
        status = store.token_status(token) if token else None
        if status is None:
            return json_response(auth.invalid_token(token or ""), 401)
        return json_response(status)

    async def oauth_revoke(request: Request) -> Response:
        token = _header_token(request)
        if not token or store.authenticate(token) is None:
            return json_response(auth.invalid_token(token or ""), 401)
        store.revoke(token)
        return Response(b"", status_code=200)

    async def project_users(request: Request) -> Response:
        store.require_project(path_int(request, "projectId"))
        return json_response(store.users(include_inactive=bool_query(request, "inactive", True)))

    async def users_search(request: Request) -> Response:
        page, size = page_query(request, cap=MAX_USER_PAGE_SIZE)
        found = store.search_users(
            request.query_params.get("username"),
            include_inactive=bool_query(request, "includeInactiveUsers", False),
        )
        if not bool_query(request, "pagination", True):
            return json_response(paged(1, len(found), len(found), found))
        return json_response(paged(page, size, len(found), found[(page - 1) * size : page * size]))

    async def user(request: Request) -> Response:
        found = store.user(path_int(request, "userId"))
        if found is None:
            raise QTestError(404, f"User {request.path_params['userId']} does not exist")
        return json_response(store.render_user(found))

    return [
        guarded_route("/oauth/token", oauth_token, ["POST"]),
        guarded_route("/oauth/status", oauth_status, ["GET"]),
        guarded_route("/oauth/revoke", oauth_revoke, ["POST"]),
        guarded_route(f"{PROJECT}/users", project_users, ["GET"]),
        guarded_route(f"{API}/users/search", users_search, ["GET"]),
        guarded_route(f"{API}/users/{{userId}}", user, ["GET"]),
    ]
