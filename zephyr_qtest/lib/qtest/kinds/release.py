"""qTest releases: the Zephyr test plans when ``plans_as`` is ``release`` (published within the test-cycle
stage, before the cycles, with their own id-map type)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zephyr_qtest.lib.qtest.comparison import text
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind, PublishSummary
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
    ZEPHYR_KEY_LABEL,
    Kind,
    Marts,
    PublishContext,
    ReadBack,
    Row,
    load_level,
    payload_hash,
    source_key,
)
from zephyr_qtest.lib.qtest.kinds.vocabulary import RELEASE, TEST_CYCLE


def is_release(row: Row) -> bool:
    """A ``qtest_test_cycles`` row that becomes a release (the mart's qtest_object_type)."""
    return row.get("qtest_object_type") == RELEASE.name


def release_body(row: Row, properties: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A release as qTest creates it: ``properties`` is required, even empty (the swagger's
    ReleaseWithCustomFieldResource marks it so; REAL_SHAPES qTest 6)."""
    return {"name": row["name"], "description": row.get("description") or "", "properties": properties or []}


def release_properties(catalog: FieldCatalog, row: Row) -> list[dict[str, Any]]:
    """The Zephyr key of the plan, where the project's releases have that field (for tracing; the
    description carries it too)."""
    if catalog.get(ZEPHYR_KEY_LABEL) is None or not row.get("zephyr_key"):
        return []
    encoded, _ = catalog.encode([{"field_label": ZEPHYR_KEY_LABEL, "value": row["zephyr_key"]}])
    return encoded


def expected_release(row: Row) -> dict[str, Any]:
    """What qTest must hold for a release (or a test cycle): its name and description."""
    return {"name": row["name"], "description": text(row.get("description"))}


def held_release(found: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": found.get("name"), "description": text(found.get("description"))}


def release_protocol(ctx: PublishContext, catalog: FieldCatalog) -> ObjectKind[Row]:
    """Create and look up releases (by name); a release's changes are not sent (as before)."""

    async def create(row: Row) -> Created:
        body = release_body(row, release_properties(catalog, row))
        release = await ctx.client.create_release(ctx.project_id, body)
        created = Created(int(release["id"]), {"qtest_type": RELEASE.parent_type})
        ctx.remember(RELEASE.name, source_key(row), created)
        return created

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        return Created(entry.qtest_id, entry.detail)

    async def lookup(row: Row) -> Created | None:
        claimed = ctx.claimed(RELEASE.name)
        for candidate in await ctx.client.list_releases(ctx.project_id):
            if candidate.get("name") == row["name"] and int(candidate["id"]) not in claimed:
                created = Created(int(candidate["id"]), {"pid": candidate.get("pid")})
                ctx.remember(RELEASE.name, source_key(row), created)
                return created
        return None

    return ObjectKind(RELEASE.name, source_key, payload_hash, load_level, create, update, lookup)


def release_rows(marts: Marts) -> list[Row]:
    assert RELEASE.mart is not None
    return [row for row in marts.rows(RELEASE.mart) if is_release(row)]


async def carry_over_legacy_entries(ctx: PublishContext, rows: list[Row]) -> None:
    """Id maps written before releases had their own id-map type kept them as ``test_cycle``: such a done
    entry becomes the release's (once), so that the release is not created again."""
    releases = await ctx.id_map.load(RELEASE.name)
    legacy = await ctx.id_map.load(TEST_CYCLE.name)
    for row in rows:
        key = source_key(row)
        entry = legacy.get(key)
        if key not in releases and entry is not None and entry.state == "done" and entry.qtest_id:
            await ctx.id_map.done(RELEASE.name, key, entry.qtest_id, entry.payload_hash, entry.detail)
            ctx.ids[RELEASE.name][key] = entry.qtest_id


async def publish_releases(ctx: PublishContext) -> PublishSummary:
    rows = release_rows(ctx.marts)
    if not rows:
        return await ctx.run(release_protocol(ctx, FieldCatalog([])), rows)
    await carry_over_legacy_entries(ctx, rows)
    catalog = FieldCatalog(await ctx.client.get_fields(ctx.project_id, RELEASE.api_segment))
    return await ctx.run(release_protocol(ctx, catalog), rows)


async def read_back_releases(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    return {int(release["id"]): release for release in await rb.client.list_releases(rb.project_id)}


KIND = Kind(
    object_type=RELEASE,
    description="qTest releases for the Zephyr test plans when plans_as is release.",
    marts=("qtest_test_cycles",),
    upstream=(),
    id_types=(RELEASE,),
    publish=publish_releases,
    rows=release_rows,
    read_back=read_back_releases,
    expect=lambda row, rb: expected_release(row),
    held=held_release,
    # Counted with the test cycles, as qTest's test-plan tree holds both.
    reconciled_as=TEST_CYCLE,
)
