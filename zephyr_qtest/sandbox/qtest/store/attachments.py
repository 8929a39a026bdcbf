"""Attachments: blob uploads, inline attachments of logs, listing, download, delete, search."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Sequence
from typing import Any

from zephyr_qtest.sandbox.qtest.store.base import (
    KIND_OF,
    LABEL,
    Json,
    QTestError,
    StoreBase,
    bad,
    format_time,
    page_bounds,
)

# Object types of the attachment endpoints (the swagger's enum). Test runs are not among them.
ATTACHMENT_TYPES: tuple[str, ...] = (
    "releases",
    "builds",
    "requirements",
    "test-cases",
    "test-logs",
    "test-steps",
    "test-step-logs",
    "defects",
)


class AttachmentsStore(StoreBase):
    """Attachments: blob uploads, inline attachments of logs, listing, download, delete, search."""

    def _parse_inline_attachments(self, raw: Any, what: str) -> list[tuple[str, str, bytes]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad(f"{what}.attachments must be an array of {{name, content_type, data}}")
        parsed: list[tuple[str, str, bytes]] = []
        for index, item in enumerate(raw):
            where = f"{what}.attachments[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                raise bad(f"{where}.name is required")
            if not isinstance(item.get("data"), str):
                raise bad(f"{where}.data is required (the file's bytes, base64-encoded)")
            try:
                data = base64.b64decode(item["data"], validate=True)
            except (binascii.Error, ValueError):
                raise bad(f"{where}.data is not valid base64") from None
            if len(data) > self.attachment_max_bytes:
                raise QTestError(
                    413,
                    f"{where} '{item['name']}' is too large ({len(data)} bytes; the limit is {self.attachment_max_bytes})",
                )
            content_type = item.get("content_type") if isinstance(item.get("content_type"), str) else ""
            parsed.append((item["name"], content_type or "application/octet-stream", data))
        return parsed

    def _store_attachments(
        self,
        project_id: int,
        object_type: str,
        object_id: int,
        files: Sequence[tuple[str, str, bytes]],
        user_id: int,
    ) -> list[int]:
        ids = []
        for name, content_type, data in files:
            attachment_id = self.new_id()
            self.conn.execute(
                "INSERT INTO attachments (id, project_id, object_type, object_id, name, content_type, size, sha256,"
                " created_date, author_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    attachment_id,
                    project_id,
                    object_type,
                    object_id,
                    name,
                    content_type,
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    format_time(time.time()),
                    user_id,
                    data,
                ),
            )
            ids.append(attachment_id)
        return ids

    def check_attachment_target(self, project_id: int, object_type: str, object_id: int) -> None:
        """400 for a type that takes no attachments (test runs among them), 404 for a missing object."""
        self._project(project_id)
        if object_type not in ATTACHMENT_TYPES:
            hint = " (attach to the run's test log instead)" if object_type == "test-runs" else ""
            raise bad(
                f"objectType '{object_type}' cannot hold attachments{hint}; valid: {', '.join(ATTACHMENT_TYPES)}"
            )
        if object_type in ("test-steps", "test-step-logs"):
            row = self.conn.execute("SELECT kind, project_id FROM refs WHERE id = ?", (object_id,)).fetchone()
            kind = object_type[:-1]
            if row is None or row[0] != kind or row[1] != project_id:
                raise QTestError(404, f"{LABEL[kind]} {object_id} does not exist in project {project_id}")
            return
        kind = KIND_OF.get(object_type)
        if kind is None:
            # Builds, requirements and defects are not kept by the sandbox, so none exists.
            raise QTestError(404, f"{LABEL[object_type]} {object_id} does not exist in project {project_id}")
        self._require(kind, object_id, project_id)

    def render_attachment(self, row: Sequence[Any]) -> Json:
        (
            attachment_id,
            project_id,
            object_type,
            object_id,
            name,
            content_type,
            _size,
            _sha,
            created,
            author_id,
        ) = row
        author = self.user(author_id) or {}
        url = f"{self.api_url}/projects/{project_id}/{object_type}/{object_id}/attachments/{attachment_id}"
        return {
            "links": [{"rel": "self", "href": url}],
            "name": name,
            "content_type": content_type,
            "id": attachment_id,
            "web_url": url,
            "created_date": created,
            "author": {
                "id": author_id,
                "email": author.get("email", ""),
                "first_name": author.get("first_name", ""),
                "last_name": author.get("last_name", ""),
            },
            "artifact_id": object_id,
        }

    _ATTACHMENT_COLUMNS = (
        "id, project_id, object_type, object_id, name, content_type, size, sha256, created_date, author_id"
    )

    def upload(
        self,
        project_id: int,
        object_type: str,
        object_id: int,
        name: str,
        content_type: str,
        data: bytes,
        user_id: int,
    ) -> Json:
        self.check_attachment_target(project_id, object_type, object_id)
        if len(data) > self.attachment_max_bytes:
            raise QTestError(
                413,
                f"The attachment is too large ({len(data)} bytes; the limit is {self.attachment_max_bytes})",
            )
        with self.tx():
            (attachment_id,) = self._store_attachments(
                project_id, object_type, object_id, [(name, content_type, data)], user_id
            )
        return self.attachment(project_id, object_type, object_id, attachment_id)

    def attachment(self, project_id: int, object_type: str, object_id: int, attachment_id: int) -> Json:
        row = self.conn.execute(
            f"SELECT {self._ATTACHMENT_COLUMNS} FROM attachments WHERE id = ? AND project_id = ?"
            " AND object_type = ? AND object_id = ?",
            (attachment_id, project_id, object_type, object_id),
        ).fetchone()
        if row is None:
            raise QTestError(404, f"Attachment {attachment_id} does not exist on {object_type} {object_id}")
        return self.render_attachment(row)

    def attachments(self, project_id: int, object_type: str, object_id: int) -> list[Json]:
        self.check_attachment_target(project_id, object_type, object_id)
        rows = self.conn.execute(
            f"SELECT {self._ATTACHMENT_COLUMNS} FROM attachments WHERE project_id = ? AND object_type = ?"
            " AND object_id = ? ORDER BY id",
            (project_id, object_type, object_id),
        ).fetchall()
        return [self.render_attachment(row) for row in rows]

    def attachment_content(
        self, project_id: int, object_type: str, object_id: int, attachment_id: int
    ) -> tuple[str, str, bytes]:
        self.check_attachment_target(project_id, object_type, object_id)
        row = self.conn.execute(
            "SELECT name, content_type, data FROM attachments WHERE id = ? AND project_id = ? AND object_type = ?"
            " AND object_id = ?",
            (attachment_id, project_id, object_type, object_id),
        ).fetchone()
        if row is None:
            raise QTestError(404, f"Attachment {attachment_id} does not exist on {object_type} {object_id}")
        return row[0], row[1], bytes(row[2])

    def delete_attachment(
        self, project_id: int, object_type: str, object_id: int, attachment_id: int
    ) -> Json:
        self.attachment(project_id, object_type, object_id, attachment_id)
        with self.tx():
            self.conn.execute("DELETE FROM attachments WHERE id = ?", (attachment_id,))
        return {"message": f"Attachment {attachment_id} was deleted"}

    def search_attachments(
        self,
        project_id: int,
        object_type: str,
        ids: Sequence[int],
        author: int | None,
        page: int,
        page_size: int,
    ) -> tuple[int, list[Json]]:
        self._project(project_id)
        if object_type not in ATTACHMENT_TYPES or object_type == "test-step-logs":
            raise bad(
                f"type must be one of {', '.join(t for t in ATTACHMENT_TYPES if t != 'test-step-logs')}"
            )
        sql = "FROM attachments WHERE project_id = ? AND object_type = ?"
        params: list[Any] = [project_id, object_type]
        if ids:
            sql += f" AND object_id IN ({','.join('?' * len(ids))})"
            params.extend(ids)
        if author is not None:
            sql += " AND author_id = ?"
            params.append(author)
        total = int(self.conn.execute(f"SELECT COUNT(*) {sql}", params).fetchone()[0])
        limit, offset = page_bounds(page, page_size)
        rows = self.conn.execute(
            f"SELECT {self._ATTACHMENT_COLUMNS} {sql} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset]
        ).fetchall()
        return total, [self.render_attachment(row) for row in rows]
