"""Zephyr attachments uploaded through blob-handles on their qTest test case, test step, test log, step log
or release; files over qTest's 50 MB cap are listed with the reason, not uploaded."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind, PublishSummary
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
    AttachmentContents,
    Ids,
    Kind,
    Marts,
    PublishContext,
    ReadBack,
    Row,
    load_level,
    payload_hash,
    source_key,
)
from zephyr_qtest.lib.qtest.kinds.vocabulary import (
    ATTACHMENT,
    INLINE_IMAGE,
    RELEASE,
    TEST_CASE,
    TEST_LOG,
    TEST_STEP,
    TEST_STEP_LOG,
    ObjectType,
)

# The object types qTest takes attachments on (the mart names them by API path segment).
OWNER_TYPES: tuple[ObjectType, ...] = (TEST_CASE, TEST_STEP, TEST_LOG, TEST_STEP_LOG, RELEASE)
# qTest blob-handle object type -> the id-map type of the owner.
ATTACHMENT_OWNERS = {owner.api_segment: owner.name for owner in OWNER_TYPES}


# Between an attachment's hash and the qTest id of the test step it is on (see `attachment_protocol`).
ON_STEP = ":on-step:"


def attachment_owner(ids: Ids, row: Row) -> tuple[str, int]:
    """The qTest object an attachment goes on: (API path segment, id). A step result whose step log qTest
    does not have (a result of a step the case's version lacks) hands its files to the test log, so that
    none is lost. KeyError when the owner is not in qTest."""
    object_type = str(row["qtest_object_type"])
    owner_key = str(row["parent_source_key"])
    owner_id = ids.get(ATTACHMENT_OWNERS[object_type], {}).get(owner_key)
    if owner_id is None and object_type == TEST_STEP_LOG.api_segment:
        object_type, owner_key = TEST_LOG.api_segment, owner_key.rsplit("#", 1)[0]
        owner_id = ids.get(TEST_LOG.name, {}).get(owner_key)
    if owner_id is None:
        raise KeyError(f"its owner {owner_key} is not in qTest (see that object's failure)")
    return object_type, owner_id


def uploadable(row: Row) -> bool:
    """An attachment the mart does not skip, on a kind of object qTest takes files on."""
    return not row.get("skip_reason") and bool(row.get("qtest_object_type"))


def not_uploaded(rows: list[Row], default_reason: str) -> list[dict[str, Any]]:
    """The attachments not sent, each with its reason (the mart's, else `default_reason`)."""
    return [
        {
            "name": row["name"],
            "size_bytes": row.get("size_bytes"),
            "skip_reason": row.get("skip_reason") or default_reason,
        }
        for row in rows
        if not uploadable(row)
    ]


def expected_attachment(row: Row) -> dict[str, Any]:
    """What qTest must hold for an attachment: the same name, size and bytes (sha256)."""
    return {"name": row["name"], "size": int(row["size_bytes"]), "sha256": row["sha256"]}


def held_attachment(found: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": found["name"], "size": found["size"], "sha256": found["sha256"]}


def content_identity(content: bytes) -> tuple[int, str]:
    """What tells a file from another of the same name on the same owner: its size and sha256."""
    return len(content), hashlib.sha256(content).hexdigest()


def attachment_protocol(ctx: PublishContext, contents: AttachmentContents) -> ObjectKind[Row]:
    """Upload, replace and look up attachments. A lost upload is found on its owner by name *and* content
    (size and sha256 of the bytes read back): Zephyr allows same-named files on one object, so a name alone
    would adopt another file and leave this one out for good."""
    # qTest ids this run has already given to a source key (created, replaced or adopted). The id map's done
    # rows (ctx.claimed) only cover earlier runs; without these a lookup could take a file an upload of this
    # very run made for another same-named, same-content attachment.
    taken: set[int] = set()

    def owner(row: Row) -> tuple[str, int]:
        return attachment_owner(ctx.ids, row)

    async def create(row: Row) -> Created:
        object_type, owner_id = owner(row)
        content = contents.read(int(row["attachment_id"]))
        uploaded = await ctx.client.upload_attachment(
            ctx.project_id,
            object_type,
            owner_id,
            str(row["name"]),
            str(row.get("content_type") or ""),
            content,
        )
        taken.add(int(uploaded["id"]))
        return Created(int(uploaded["id"]), {"owner_type": object_type, "owner_id": owner_id})

    def hashed(row: Row) -> str:
        """The mart's hash, and for a step's file the step it goes on: an update of its case (a property
        filled in later) makes a new version with new steps, which must get the file too."""
        if str(row["qtest_object_type"]) != TEST_STEP.api_segment:
            return payload_hash(row)
        try:
            return f"{payload_hash(row)}{ON_STEP}{owner(row)[1]}"
        except KeyError:
            return payload_hash(row)

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        if str(entry.payload_hash or "").split(ON_STEP)[0] == payload_hash(row):
            # The same file: on the same step nothing to do; on a new version's step a copy of its own
            # (the old version keeps the file it had).
            object_type, owner_id = owner(row)
            if int(entry.detail.get("owner_id") or 0) == owner_id:
                return Created(entry.qtest_id, dict(entry.detail))
            return await create(row)
        # A file cannot be edited in qTest: the old one goes, the new one comes.
        object_type = str(entry.detail.get("owner_type") or row["qtest_object_type"])
        owner_id = int(entry.detail.get("owner_id") or owner(row)[1])
        await ctx.client.delete_attachment(ctx.project_id, object_type, owner_id, entry.qtest_id)
        return await create(row)

    async def lookup(row: Row) -> Created | None:
        object_type, owner_id = owner(row)
        wanted = content_identity(contents.read(int(row["attachment_id"])))
        listed = await ctx.client.list_attachments(ctx.project_id, object_type, owner_id)
        for attachment in listed:
            attachment_id = int(attachment["id"])
            if attachment.get("name") != row["name"] or attachment_id in ctx.claimed(ATTACHMENT.name) | taken:
                continue
            # qTest's listing carries neither size nor checksum (the swagger's AttachmentResource): only the
            # bytes tell two same-named files apart.
            held = await ctx.client.download_attachment(ctx.project_id, object_type, owner_id, attachment_id)
            # Checked again after the await: a concurrent lookup may have taken it meanwhile.
            if content_identity(held) == wanted and attachment_id not in taken:
                taken.add(attachment_id)
                return Created(attachment_id, {"owner_type": object_type, "owner_id": owner_id})
        return None

    return ObjectKind(ATTACHMENT.name, source_key, hashed, load_level, create, update, lookup)


def all_attachment_rows(marts: Marts) -> list[Row]:
    assert ATTACHMENT.mart is not None
    return marts.rows(ATTACHMENT.mart)


def attachment_rows(marts: Marts) -> list[Row]:
    return [row for row in all_attachment_rows(marts) if uploadable(row)]


async def publish_attachments(ctx: PublishContext) -> PublishSummary:
    with ctx.marts.source.attachment_contents() as contents:
        summary = await ctx.run(attachment_protocol(ctx, contents), attachment_rows(ctx.marts))
    summary.not_uploaded = not_uploaded(
        all_attachment_rows(ctx.marts), "qTest takes no attachments on this kind of object"
    )
    return summary


async def read_back_attachments(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    """The files on every owner of an expected attachment, byte for byte (name, size, sha256)."""
    owners = set()
    for row in rows:
        try:
            owners.add(attachment_owner(rb.ids, row))
        except KeyError:
            continue  # its owner is missing: the attachment shows as missing
    files: dict[int, dict[str, Any]] = {}
    # The pictures of rich texts uploaded beside the files: the proof accounts for them (inline_image.py).
    pictures = set(rb.ids.get(INLINE_IMAGE.name, {}).values())
    for object_type, owner_id in sorted(owners):
        for attachment in await rb.client.list_attachments(rb.project_id, object_type, owner_id):
            if int(attachment["id"]) in pictures:
                continue
            content = await rb.client.download_attachment(
                rb.project_id, object_type, owner_id, int(attachment["id"])
            )
            size, sha256 = content_identity(content)
            files[int(attachment["id"])] = {"name": attachment.get("name"), "size": size, "sha256": sha256}
    return files


KIND = Kind(
    object_type=ATTACHMENT,
    description="Zephyr attachments uploaded through blob-handles on their qTest test case, test step, test "
    "log or step log; files over qTest's 50 MB cap are listed with the reason, not uploaded.",
    marts=("qtest_attachments",),
    upstream=(TEST_CASE, TEST_LOG),
    id_types=(*OWNER_TYPES, ATTACHMENT),
    publish=publish_attachments,
    rows=attachment_rows,
    read_back=read_back_attachments,
    expect=lambda row, rb: expected_attachment(row),
    held=held_attachment,
)
