"""Attachments: search, list, download, upload (blob handles), delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zephyr_qtest.sandbox.common import content_disposition
from zephyr_qtest.sandbox.qtest.routes.http import (
    PROJECT,
    bool_query,
    file_name_header,
    guarded_route,
    int_query,
    json_response,
    page_query,
    paged,
    path_int,
    refuse,
    request_user_id,
)
from zephyr_qtest.sandbox.qtest.store import QTestError

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.qtest.app import QTestSandbox


def routes(sandbox: QTestSandbox) -> list[Route]:
    """The attachment routes, answered from ``sandbox.store``."""
    store = sandbox.store

    async def attachment_search(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        object_type = request.query_params.get("type")
        if not object_type:
            raise QTestError(400, "type is required")
        ids: list[int] = []
        for raw in request.query_params.getlist("ids"):
            for part in raw.split(","):
                if part.strip():
                    if not part.strip().isdigit():
                        raise QTestError(400, f"ids must be numbers, got '{part}'")
                    ids.append(int(part))
        page, size = page_query(request)
        total, items = store.search_attachments(
            project_id, object_type, ids, int_query(request, "author", None), page, size
        )
        return json_response(paged(page, size, total, items))

    async def attachments(request: Request) -> Response:
        return json_response(
            store.attachments(
                path_int(request, "projectId"),
                request.path_params["objectType"],
                path_int(request, "objectId"),
            )
        )

    async def attachment(request: Request) -> Response:
        name, content_type, data = store.attachment_content(
            path_int(request, "projectId"),
            request.path_params["objectType"],
            path_int(request, "objectId"),
            path_int(request, "attachmentId"),
        )
        disposition = "attachment" if bool_query(request, "forceDownload", False) else "inline"
        # The content type exactly as uploaded (media_type= would append a charset to text/*).
        return Response(
            data,
            headers={
                "Content-Type": content_type,
                "Content-Disposition": content_disposition(name).replace("attachment", disposition, 1),
            },
        )

    async def blob_handles(request: Request) -> Response:
        project_id = path_int(request, "projectId")
        object_type = request.path_params["objectType"]
        object_id = path_int(request, "objectId")
        # The target is checked before the bytes are read: a wrong type or id costs no upload.
        store.check_attachment_target(project_id, object_type, object_id)
        name = file_name_header(request.headers.get("file-name"))
        content_type = request.headers.get("content-type")
        if not name:
            raise QTestError(400, "the File-Name header is required")
        if not content_type:
            raise QTestError(400, "the Content-Type header is required")
        refuse(sandbox, "attachments", file_name=name)
        cap = store.attachment_max_bytes
        chunks: list[bytes] = []
        size = 0
        # An oversized body is still read to its end (and dropped): answering while the client is
        # still sending would reach it as a reset connection, not as the 413.
        async for chunk in request.stream():
            size += len(chunk)
            if size <= cap:
                chunks.append(chunk)
        if size > cap:
            chunks.clear()
            raise QTestError(413, f"The attachment is too large ({size} bytes; the limit is {cap})")
        created = store.upload(
            project_id, object_type, object_id, name, content_type, b"".join(chunks), request_user_id(request)
        )
        return json_response(created, 201)

    async def delete_blob(request: Request) -> Response:
        return json_response(
            store.delete_attachment(
                path_int(request, "projectId"),
                request.path_params["objectType"],
                path_int(request, "objectId"),
                path_int(request, "blobHandleId"),
            )
        )

    return [
        guarded_route(f"{PROJECT}/attachments", attachment_search, ["GET"]),
        guarded_route(f"{PROJECT}/{{objectType}}/{{objectId}}/attachments", attachments, ["GET"]),
        guarded_route(
            f"{PROJECT}/{{objectType}}/{{objectId}}/attachments/{{attachmentId}}", attachment, ["GET"]
        ),
        guarded_route(f"{PROJECT}/{{objectType}}/{{objectId}}/blob-handles", blob_handles, ["POST"]),
        guarded_route(
            f"{PROJECT}/{{objectType}}/{{objectId}}/blob-handles/{{blobHandleId}}", delete_blob, ["DELETE"]
        ),
    ]
