"""qTest releases: the Zephyr test plans when ``plans_as`` is ``release``, the default (published within the
test-cycle stage, before the cycles that go under them, with their own id-map type).

A release holds the plan's name, its objective and the "Zephyr details" block of the values qTest has no
release field for (status, owner, labels, folder path, custom fields, links), and the dates its cycles are
planned for (Zephyr plans have none of their own). The pictures of its objective are attachments of the
release (swagger: blob-handles take ``releases``), and its description points at them (``inline_image.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zephyr_qtest.lib.inline_images import without_sources
from zephyr_qtest.lib.qtest.comparison import iso, same_instant, text
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
from zephyr_qtest.lib.qtest.kinds.inline_image import keep_failed_pictures_due, rewritten
from zephyr_qtest.lib.qtest.kinds.vocabulary import RELEASE, TEST_CYCLE


def is_release(row: Row) -> bool:
    """A ``qtest_test_cycles`` row that becomes a release (the mart's qtest_object_type)."""
    return row.get("qtest_object_type") == RELEASE.name


def release_body(row: Row, properties: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A release as qTest creates it: ``properties`` is required, even empty (the swagger's
    ReleaseWithCustomFieldResource marks it so; REAL_SHAPES qTest 6); ``start_date`` / ``end_date`` (the
    same resource) span the planned dates of the plan's cycles, when they have any."""
    body: dict[str, Any] = {
        "name": row["name"],
        "description": row.get("description") or "",
        "properties": properties or [],
    }
    for key, column in (("start_date", "planned_start_date"), ("end_date", "planned_end_date")):
        if row.get(column) is not None:
            body[key] = iso(row[column])
    return body


def release_properties(catalog: FieldCatalog, row: Row) -> list[dict[str, Any]]:
    """The Zephyr key of the plan, where the project's releases have that field (for tracing; the
    description carries it too)."""
    if catalog.get(ZEPHYR_KEY_LABEL) is None or not row.get("zephyr_key"):
        return []
    encoded, _ = catalog.encode([{"field_label": ZEPHYR_KEY_LABEL, "value": row["zephyr_key"]}])
    return encoded


def expected_release(row: Row) -> dict[str, Any]:
    """What qTest must hold for a release (or a test cycle): its name and description (its pictures'
    addresses left out: a release's point at its attachments; the proof compares each with its source)."""
    return {"name": row["name"], "description": without_sources(text(row.get("description")))}


def held_release(found: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": found.get("name"), "description": without_sources(text(found.get("description")))}


def expected_release_with_dates(row: Row) -> dict[str, Any]:
    """What qTest must hold for a release: its name, description and dates."""
    return {
        **expected_release(row),
        "start_date": iso(row.get("planned_start_date")),
        "end_date": iso(row.get("planned_end_date")),
    }


def held_release_with_dates(found: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    held = held_release(found, expected)
    for key in ("start_date", "end_date"):
        # qTest may answer the same instant in another offset or precision.
        value = found.get(key)
        held[key] = expected.get(key) if same_instant(value, expected.get(key)) else value
    return held


def release_protocol(ctx: PublishContext, catalog: FieldCatalog) -> ObjectKind[Row]:
    """Create, update (PUT, the whole release: a re-run brings a changed plan's details and dates) and look
    up releases (by name). A release whose objective holds pictures is written, its pictures uploaded on
    it, and written again pointing at them (they need the release to exist)."""

    def body(row: Row, addresses: dict[str, str] | None = None) -> dict[str, Any]:
        sent = release_body(row, release_properties(catalog, row))
        return {**sent, "description": rewritten(sent["description"], addresses or {})}

    async def pictures(row: Row, release_id: int) -> dict[str, str]:
        if ctx.images is None:
            return {}
        return await ctx.images.settle(
            RELEASE.api_segment, source_key(row), release_id, [row.get("description")]
        )

    async def with_pictures(row: Row, release_id: int) -> None:
        """The release written again with its pictures' qTest addresses, when any could be carried."""
        if addresses := await pictures(row, release_id):
            await ctx.client.update_release(ctx.project_id, release_id, body(row, addresses))

    async def create(row: Row) -> Created:
        release = await ctx.client.create_release(ctx.project_id, body(row))
        created = Created(int(release["id"]), {"qtest_type": RELEASE.parent_type})
        await with_pictures(row, created.qtest_id)
        ctx.remember(RELEASE.name, source_key(row), created)
        return created

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        addresses = await pictures(row, entry.qtest_id)
        await ctx.client.update_release(ctx.project_id, entry.qtest_id, body(row, addresses))
        return Created(entry.qtest_id, entry.detail)

    async def lookup(row: Row) -> Created | None:
        found = ctx.adopt_by_name(
            RELEASE.name, source_key(row), row["name"], await ctx.client.list_releases(ctx.project_id)
        )
        if found is not None:
            await with_pictures(row, found.qtest_id)
        return found

    def hashed(row: Row) -> str:
        mark = (
            ""
            if ctx.images is None
            else ctx.images.mark(RELEASE.api_segment, source_key(row), [row.get("description")])
        )
        return payload_hash(row) + mark

    return ObjectKind(RELEASE.name, source_key, hashed, load_level, create, update, lookup)


def release_rows(marts: Marts) -> list[Row]:
    assert RELEASE.mart is not None
    return [row for row in marts.rows(RELEASE.mart) if is_release(row)]


async def carry_over_legacy_entries(ctx: PublishContext, rows: list[Row]) -> None:
    """Id maps written before releases had their own id-map type kept them as ``test_cycle``: such a done
    entry becomes the release's (once), so that the release is not created again. Only an entry made by
    creating a release (its detail says so): a plan published as a test cycle (``plans_as`` test_cycle, an
    earlier run's setting) is a cycle, not a release."""
    releases = await ctx.id_map.load(RELEASE.name)
    legacy = await ctx.id_map.load(TEST_CYCLE.name)
    for row in rows:
        key = source_key(row)
        entry = legacy.get(key)
        if (
            key not in releases
            and entry is not None
            and entry.state == "done"
            and entry.qtest_id
            and (entry.detail or {}).get("qtest_type") == RELEASE.parent_type
        ):
            await ctx.id_map.done(RELEASE.name, key, entry.qtest_id, entry.payload_hash, entry.detail)
            ctx.ids[RELEASE.name][key] = entry.qtest_id


async def publish_releases(ctx: PublishContext) -> PublishSummary:
    rows = release_rows(ctx.marts)
    if not rows:
        return await ctx.run(release_protocol(ctx, FieldCatalog([])), rows)
    await carry_over_legacy_entries(ctx, rows)
    catalog = FieldCatalog(await ctx.client.get_fields(ctx.project_id, RELEASE.api_segment))
    protocol = release_protocol(ctx, catalog)
    summary = await ctx.run(protocol, rows)
    await keep_failed_pictures_due(ctx.images, RELEASE.name, rows, protocol.payload_hash)
    return summary


async def read_back_releases(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    """Every release, each with the cycles qTest lists under it (``parentType=release``, with their
    descendants) as ``test-cycles``, as qTest nests cycles in a cycle: where a cycle sits is read there."""
    releases = {int(release["id"]): release for release in await rb.client.list_releases(rb.project_id)}
    assert RELEASE.parent_type is not None
    for release_id, release in releases.items():
        release[TEST_CYCLE.api_segment] = await rb.client.list_test_cycles(
            rb.project_id, parent_id=release_id, parent_type=RELEASE.parent_type, descendants=True
        )
    return releases


KIND = Kind(
    object_type=RELEASE,
    description="qTest releases for the Zephyr test plans (plans_as release, the default), with their dates.",
    marts=("qtest_test_cycles",),
    upstream=(),
    id_types=(RELEASE,),
    publish=publish_releases,
    rows=release_rows,
    read_back=read_back_releases,
    expect=lambda row, rb: expected_release_with_dates(row),
    held=held_release_with_dates,
    # Counted with the test cycles, as qTest's test-plan tree holds both.
    reconciled_as=TEST_CYCLE,
)
