"""What the qTest routes share: JSON answers and errors, request parsing (query, path, body, headers),
the wrapped page shape, and ``guarded_route``, which turns a handler's unexpected failure into a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.qtest.store import QTestError

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox

logger = logging.getLogger(__name__)

API = "/api/v3"
PROJECT = f"{API}/projects/{{projectId}}"
MAX_PAGE_SIZE = 999  # "You can specify your custom number (up to 999)"
MAX_USER_PAGE_SIZE = 100
SERVER_ERROR_MESSAGE = "Internal Server Error - Unexpected error"


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, *, raw: bool = False
) -> Response:
    content = body if raw else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}, ensure_ascii=False).encode("utf-8")


def refuse(sandbox: QTestSandbox, kind: str, body: Any = None, *, file_name: str | None = None) -> None:
    """A 400 when the switch ``refuse`` names this create call (before anything is stored)."""
    message = sandbox.faults.refusal(kind, body, file_name=file_name)
    if message is not None:
        raise QTestError(400, message)


# ---------------------------------------------------------------------------- request parsing


def int_query(request: Request, name: str, default: int | None, *, low: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QTestError(400, f"{name} must be an integer, got '{raw}'") from None
    if low is not None and value < low:
        raise QTestError(400, f"{name} must be >= {low}, got {value}")
    return value


def page_query(
    request: Request, *, size_name: str = "pageSize", default_size: int = 100, cap: int = MAX_PAGE_SIZE
) -> tuple[int, int]:
    """``page`` (1-based: page 0 is an error, not the first page) and the effective page size."""
    page = int_query(request, "page", 1)
    assert page is not None
    if page < 1:
        raise QTestError(400, f"page must be >= 1 (pages are numbered from 1), got {page}")
    size = int_query(request, size_name, default_size, low=1)
    assert size is not None
    return page, min(size, cap)


def bool_query(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise QTestError(400, f"{name} must be true or false, got '{raw}'")


def path_int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    try:
        return int(raw)
    except ValueError:
        raise QTestError(400, f"{name} must be a number, got '{raw}'") from None


def parent_type_query(request: Request) -> str | None:
    raw = request.query_params.get("parentType")
    return raw.lower() if raw else None


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise QTestError(400, "the request body is required (JSON)")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QTestError(400, f"the request body is not valid JSON: {exc}") from None


def paged(page: int, size: int, total: int, items: Sequence[Any]) -> dict[str, Any]:
    """The wrapped page shape ``{links, page, page_size, total, items}`` (PagedResource and its kin)."""
    return {"links": [], "page": page, "page_size": size, "total": total, "items": list(items)}


def file_name_header(header: str | None) -> str | None:
    """The File-Name header as text: UTF-8 bytes are accepted as such (Starlette hands headers over as
    latin-1); anything else is taken verbatim. Percent-encoding is not decoded."""
    if header is None:
        return None
    raw = header.encode("latin-1", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return header


def request_user_id(request: Request) -> int:
    return int(request.scope["state"]["qtest_user_id"])


def guarded_route(path: str, handler: Callable[[Request], Awaitable[Response]], methods: list[str]) -> Route:
    """A route whose unexpected failures answer a 500 ``{"message"}`` (and are logged): a sandbox bug must
    look like a server error to the client, not like a protocol one."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except QTestError:
            raise
        except Exception:
            logger.exception(
                "qTest sandbox: unexpected error serving %s %s", request.method, request.url.path
            )
            return json_response(error_body(SERVER_ERROR_MESSAGE), 500, raw=True)

    return Route(path, guarded, methods=methods)
