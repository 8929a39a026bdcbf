"""The qTest test-cycle tree: Zephyr's cycle folders and cycles (a cycle linked to test plans under the
release of its first plan), the test plans as top-level cycles when they do not go as releases, the
ad-hoc cycle, and the automation sub-cycles."""

from __future__ import annotations

from typing import Any

from zephyr_qtest.lib.qtest.comparison import flatten
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind, PublishSummary
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
    Ids,
    Kind,
    Marts,
    PublishContext,
    ReadBack,
    Row,
    load_level,
    payload_hash,
    sibling_order,
    source_key,
)
from zephyr_qtest.lib.qtest.kinds.release import (
    expected_release,
    held_release,
    is_release,
    read_back_releases,
)
from zephyr_qtest.lib.qtest.kinds.vocabulary import RELEASE, ROOT_PARENT_TYPE, TEST_CYCLE


def cycle_body(row: Row) -> dict[str, Any]:
    return {"name": row["name"], "description": row.get("description") or ""}


def cycle_parent(row: Row, ids: Ids) -> tuple[int, str]:
    """(id, parentType) of the container a cycle goes in: the root, a release or another cycle; KeyError
    when the parent is not in qTest."""
    parent_key = row.get("parent_source_key")
    if not parent_key:
        return 0, ROOT_PARENT_TYPE
    release_id = ids.get(RELEASE.name, {}).get(parent_key)
    if release_id is not None:
        assert RELEASE.parent_type is not None
        return release_id, RELEASE.parent_type
    assert TEST_CYCLE.parent_type is not None
    return ids[TEST_CYCLE.name][parent_key], TEST_CYCLE.parent_type


def test_cycle_protocol(ctx: PublishContext) -> ObjectKind[Row]:
    """Create, update and look up test cycles (a lost create is found by name in its container)."""

    async def create(row: Row) -> Created:
        parent_id, parent_type = cycle_parent(row, ctx.ids)
        cycle = await ctx.client.create_test_cycle(
            ctx.project_id, cycle_body(row), parent_id=parent_id, parent_type=parent_type
        )
        created = Created(int(cycle["id"]), {"qtest_type": TEST_CYCLE.parent_type, "pid": cycle.get("pid")})
        ctx.remember(TEST_CYCLE.name, source_key(row), created)
        return created

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        await ctx.client.update_test_cycle(ctx.project_id, entry.qtest_id, cycle_body(row))
        # Then moved where the mart now puts it (a plan it was linked to since, or another plans_as): the
        # swagger's PUT moves a cycle with parentId / parentType, a call of its own as the sandbox's move
        # takes no other change.
        parent_id, parent_type = cycle_parent(row, ctx.ids)
        await ctx.client.update_test_cycle(
            ctx.project_id, entry.qtest_id, cycle_body(row), parent_id=parent_id, parent_type=parent_type
        )
        return Created(entry.qtest_id, entry.detail)

    async def lookup(row: Row) -> Created | None:
        parent_id, parent_type = cycle_parent(row, ctx.ids)
        candidates = await ctx.client.list_test_cycles(
            ctx.project_id, parent_id=parent_id, parent_type=parent_type
        )
        return ctx.adopt_by_name(TEST_CYCLE.name, source_key(row), row["name"], candidates)

    return ObjectKind(
        TEST_CYCLE.name,
        source_key,
        payload_hash,
        load_level,
        create,
        update,
        lookup,
        # Cycle folders in Zephyr's order among their siblings (``sibling_order``); the cycles themselves
        # have no position in Zephyr (their rows have no cycle_order).
        sequence=lambda row: sibling_order(row, "cycle_order", "zephyr_id"),
    )


def test_cycle_rows(marts: Marts) -> list[Row]:
    assert TEST_CYCLE.mart is not None
    return [row for row in marts.rows(TEST_CYCLE.mart) if not is_release(row)]


async def publish_test_cycles(ctx: PublishContext) -> PublishSummary:
    return await ctx.run(test_cycle_protocol(ctx), test_cycle_rows(ctx.marts))


async def read_back_test_cycles(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    """Every cycle of the project: the root's tree and the tree under each release qTest holds (read with
    the releases, ``read_back_releases``)."""
    cycles = await rb.client.list_test_cycles(rb.project_id, descendants=True)
    releases = rb.found.get(RELEASE.name)
    if releases is None:
        releases = await read_back_releases(rb, [])
    for release in releases.values():
        cycles += release.get(TEST_CYCLE.api_segment) or []
    return {int(cycle["id"]): cycle for cycle in flatten(cycles, (TEST_CYCLE.api_segment,))}


KIND = Kind(
    object_type=TEST_CYCLE,
    description="qTest test-cycle tree (and releases or top-level cycles for test plans, and the ad-hoc "
    "cycle).",
    marts=("qtest_test_cycles",),
    upstream=(RELEASE,),
    id_types=(RELEASE, TEST_CYCLE),
    publish=publish_test_cycles,
    rows=test_cycle_rows,
    read_back=read_back_test_cycles,
    expect=lambda row, rb: expected_release(row),
    held=held_release,
)
