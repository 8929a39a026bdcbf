"""qTest modules: Zephyr's test-case folder tree, parents first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zephyr_qtest.lib.qtest.comparison import flatten, text
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind, PublishSummary
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
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
from zephyr_qtest.lib.qtest.kinds.vocabulary import MODULE

# The module qTest makes for objects created without one: not ours to account for unless we use it.
DEFAULT_MODULE_NAME = "Created via API"


def module_body(row: Row) -> dict[str, Any]:
    return {"name": row["name"], "description": row.get("description") or ""}


def module_parent_id(row: Row, module_ids: Mapping[str, int]) -> int | None:
    """The qTest id of the parent module, None at the root; KeyError when the parent is not in qTest."""
    parent = row.get("parent_source_key")
    if not parent:
        return None
    return module_ids[parent]  # KeyError: the parent failed; recorded on this module


def expected_module(row: Row, module_ids: Mapping[str, int]) -> dict[str, Any]:
    """What qTest must hold for a module: its name, under its parent."""
    parent = module_ids.get(text(row.get("parent_source_key"))) if row.get("parent_source_key") else None
    return {"name": row["name"], "parent": parent}


def held_module(found: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": found.get("name"), "parent": found.get("parent_id") or None}


def module_protocol(ctx: PublishContext) -> ObjectKind[Row]:
    """Create, update and look up modules (a lost create is found by name under its parent)."""

    def parent_id(row: Row) -> int | None:
        return module_parent_id(row, ctx.ids[MODULE.name])

    async def create(row: Row) -> Created:
        module = await ctx.client.create_module(ctx.project_id, module_body(row), parent_id(row))
        created = Created(int(module["id"]))
        ctx.remember(MODULE.name, source_key(row), created)
        return created

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        await ctx.client.update_module(
            ctx.project_id, entry.qtest_id, {**module_body(row), "parent_id": parent_id(row)}
        )
        return Created(entry.qtest_id)

    async def lookup(row: Row) -> Created | None:
        parent = parent_id(row)
        siblings = await ctx.client.list_modules(ctx.project_id, parent_id=parent)
        claimed = ctx.claimed(MODULE.name)
        for module in siblings:
            same_parent = (module.get("parent_id") or None) == parent or parent is None
            if module.get("name") == row["name"] and same_parent and int(module["id"]) not in claimed:
                created = Created(int(module["id"]))
                ctx.remember(MODULE.name, source_key(row), created)
                return created
        return None

    return ObjectKind(
        MODULE.name,
        source_key,
        payload_hash,
        load_level,
        create,
        update,
        lookup,
        sequence=lambda row: sibling_order(row, "module_order", "folder_id"),
    )


def module_rows(marts: Marts) -> list[Row]:
    assert MODULE.mart is not None
    return marts.rows(MODULE.mart)


async def publish_modules(ctx: PublishContext) -> PublishSummary:
    return await ctx.run(module_protocol(ctx), module_rows(ctx.marts))


async def read_back_modules(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    """The whole module tree."""
    ours = set(rb.ids[MODULE.name].values())
    return {
        int(module["id"]): module
        for module in flatten(await rb.client.list_modules(rb.project_id, descendants=True), ("children",))
        if module.get("name") != DEFAULT_MODULE_NAME or int(module["id"]) in ours
    }


KIND = Kind(
    object_type=MODULE,
    description="qTest modules from Zephyr's test-case folder tree, parents first.",
    marts=("qtest_modules",),
    upstream=(),
    id_types=(MODULE,),
    publish=publish_modules,
    rows=module_rows,
    read_back=read_back_modules,
    expect=lambda row, rb: expected_module(row, rb.ids[MODULE.name]),
    held=held_module,
)
