"""qTest test cases with their steps in the create call (call-to-test callees first), properties set by
field label, approved as configured; each carries its Zephyr key. Steps get their ids from the answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zephyr_qtest.lib.inline_images import without_sources
from zephyr_qtest.lib.qtest.client import quote_search_value
from zephyr_qtest.lib.qtest.comparison import (
    Mismatch,
    compare,
    expected_properties,
    held_properties,
    text,
)
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind, PublishSummary
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
    STEP_ORDER,
    ZEPHYR_KEY_LABEL,
    Ids,
    Kind,
    Marts,
    PublishContext,
    ReadBack,
    Row,
    encoded_properties,
    load_level,
    payload_hash_on,
    source_key,
)
from zephyr_qtest.lib.qtest.kinds.case_history import (
    Replayed,
    case_histories,
    cleared,
    find_current,
    latest_older_versions,
    test_case_version_rows,
    write_current,
)
from zephyr_qtest.lib.qtest.kinds.inline_image import keep_failed_pictures_due, rewritten
from zephyr_qtest.lib.qtest.kinds.vocabulary import MODULE, TEST_CASE, TEST_STEP


def called_test_case_id(step: Row, case_ids: Mapping[str, int]) -> int | None:
    """The qTest id of the case a call-to-test step links (callees are a level earlier); None for a plain
    step, a callee outside the project or a call left unlinked to break a call cycle (the mart's
    ``linked_test_case_source_key``). KeyError when the callee is not in qTest."""
    callee = step.get("linked_test_case_source_key")
    return case_ids[callee] if callee else None


def steps_body(steps: list[Row], case_ids: Mapping[str, int]) -> list[dict[str, Any]]:
    """A case's steps as its create call takes them, numbered from 1."""
    body = []
    for order, step in enumerate(steps, start=1):
        item: dict[str, Any] = {
            "description": step.get("description") or "",
            "expected": step.get("expected") or "",
            "order": order,
        }
        callee_id = called_test_case_id(step, case_ids)
        if callee_id is not None:
            item["called_test_case_id"] = callee_id
        body.append(item)
    return body


def test_case_body(row: Row, steps: list[Row], ids: Ids, properties: list[dict]) -> dict[str, Any]:
    """The create (and update) body of a test case: `properties` already encoded for the project."""
    parent = row.get("parent_source_key")
    payload: dict[str, Any] = {
        "name": row["name"],
        "description": row.get("description") or "",
        "precondition": row.get("precondition") or "",
        "properties": properties,
        "test_steps": steps_body(steps, ids[TEST_CASE.name]),
    }
    if parent:
        payload["parent_id"] = ids[MODULE.name][parent]
    return payload


def body_texts(body: Mapping[str, Any]) -> list[Any]:
    """The rich texts of a test case's body, its steps' included: where its inline images are."""
    steps = body.get("test_steps") or []
    return [
        body.get("description"),
        body.get("precondition"),
        *(step.get(name) for step in steps for name in ("description", "expected")),
    ]


def with_addresses(body: Mapping[str, Any], addresses: dict[str, str]) -> dict[str, Any]:
    """The body with each inline image pointed at its qTest attachment (``inline_image.py``)."""
    return {
        **body,
        "description": rewritten(body.get("description"), addresses),
        "precondition": rewritten(body.get("precondition"), addresses),
        "test_steps": [
            {**step, **{name: rewritten(step.get(name), addresses) for name in ("description", "expected")}}
            for step in body.get("test_steps") or []
        ],
    }


def rich(value: Any) -> str:
    """A rich text as the loader's check compares it: its pictures' addresses left out (they point at the
    case's attachments in qTest; the proof compares each picture with its source)."""
    return without_sources(text(value))


def expected_test_case(row: Row, ids: Ids, catalog: FieldCatalog) -> dict[str, Any]:
    """What qTest must hold for a test case: texts, module, and the properties qTest has a field for."""
    return {
        "name": row["name"],
        "description": rich(row.get("description")),
        "precondition": rich(row.get("precondition")),
        "module": ids[MODULE.name].get(text(row.get("parent_source_key"))),
        "properties": expected_properties(encoded_properties(catalog, row.get("properties"))),
    }


def held_test_case(found: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": found.get("name"),
        "description": rich(found.get("description")),
        "precondition": rich(found.get("precondition")),
        "module": found.get("parent_id") if expected["module"] is not None else None,
        "properties": held_properties(found, expected["properties"]),
    }


def expected_test_step(step: Row, order: int, case_ids: Mapping[str, int]) -> dict[str, Any]:
    """What qTest must hold for the `order`-th step (from 1) of a case."""
    callee = step.get("linked_test_case_source_key")
    return {
        "description": rich(step.get("description")),
        "expected": rich(step.get("expected")),
        "order": order,
        "called test case": case_ids.get(callee) if callee else None,
    }


def held_test_step(found: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "description": rich(found.get("description")),
        "expected": rich(found.get("expected")),
        "order": int(found.get("order") or 0),
        "called test case": found.get("called_test_case_id"),
    }


def answered_steps(case: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A case's steps as qTest answers them, in their order."""
    return sorted(case.get("test_steps") or [], key=lambda step: int(step.get("order") or 0))


def step_children(sources: list[Row], case: Mapping[str, Any]) -> list[tuple[str, str, int, str | None]]:
    """The id-map rows of a case's steps: the mart's steps paired by order with qTest's answer."""
    return [
        (TEST_STEP.name, str(source["source_key"]), int(step["id"]), str(source["payload_hash"]))
        for source, step in zip(sources, answered_steps(case), strict=False)
    ]


def test_case_protocol(
    ctx: PublishContext,
    steps_by_case: Mapping[str, list[Row]],
    histories: Mapping[str, Replayed] | None = None,
    older: Mapping[str, Row] | None = None,
) -> ObjectKind[Row]:
    """Create, update and look up test cases (a lost create is found by its Zephyr Key property). A case
    with older versions (`histories`, ``test_case_version.py``) is written as an update after them,
    clearing what its newest older version (`older`: case key -> its row) set and it does not."""
    histories = histories or {}
    older = older or {}

    def body(row: Row) -> dict[str, Any]:
        properties = ctx.encode(ctx.test_case_fields, TEST_CASE.api_segment, row.get("properties"))
        if source_key(row) in histories:
            properties = cleared(ctx.test_case_fields, properties, older.get(source_key(row)))
        return test_case_body(row, steps_by_case.get(source_key(row), []), ctx.ids, properties)

    def row_texts(row: Row) -> list[Any]:
        steps = steps_by_case.get(source_key(row), [])
        return [
            row.get("description"),
            row.get("precondition"),
            *(step.get(name) for step in steps for name in ("description", "expected")),
        ]

    async def with_pictures(row: Row, case_id: int, sent: dict[str, Any]) -> dict[str, Any] | None:
        """The body with its pictures uploaded on the case and pointed at, or None when nothing changes."""
        if ctx.images is None:
            return None
        addresses = await ctx.images.settle(TEST_CASE.api_segment, source_key(row), case_id, body_texts(sent))
        pictured = with_addresses(sent, addresses)
        return pictured if pictured != sent else None

    async def written(row: Row, case: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
        """A case just written (`sent`), written again with its pictures' qTest addresses, before it is
        approved: its pictures need the case to exist, and the approved version must hold them."""
        pictured = await with_pictures(row, int(case["id"]), sent)
        if pictured is None:
            return case
        return await ctx.client.update_test_case(ctx.project_id, int(case["id"]), pictured)

    async def finish(row: Row, case: Mapping[str, Any]) -> Created:
        """Approval as configured, then the steps' ids (by order) of the version runs will use: approving
        makes a new version, whose steps are the ones step logs must name."""
        case_id = int(case["id"])
        if ctx.approve_test_cases and not str(case.get("version") or "").endswith(".0"):
            approved = await ctx.client.approve_test_case(ctx.project_id, case_id)
            case = (
                approved
                if "test_steps" in approved
                else await ctx.client.get_test_case(ctx.project_id, case_id)
            )
        detail = {"version": case.get("version"), "test_case_version_id": case.get("test_case_version_id")}
        children = step_children(steps_by_case.get(source_key(row), []), case)
        created = Created(case_id, detail, children)
        ctx.remember(TEST_CASE.name, source_key(row), created)
        return created

    async def create(row: Row) -> Created:
        sent = body(row)
        if (history := histories.get(source_key(row))) is not None:
            case = await write_current(ctx, source_key(row), history, sent)
        else:
            case = await ctx.client.create_test_case(ctx.project_id, sent)
        return await finish(row, await written(row, case, sent))

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        sent = body(row)
        sent = await with_pictures(row, entry.qtest_id, sent) or sent
        return await finish(row, await ctx.client.update_test_case(ctx.project_id, entry.qtest_id, sent))

    async def lookup(row: Row) -> Created | None:
        if (history := histories.get(source_key(row))) is not None:
            current = await find_current(ctx, source_key(row), history)
            return None if current is None else await finish(row, await written(row, current, body(row)))
        if ctx.test_case_fields.get(ZEPHYR_KEY_LABEL) is None:
            return None  # without the key property a lost create cannot be told from a namesake
        query = f"'{ZEPHYR_KEY_LABEL}' = '{quote_search_value(source_key(row))}'"
        found = await ctx.client.search(ctx.project_id, TEST_CASE.api_segment, query)
        claimed = ctx.claimed(TEST_CASE.name)
        for case in found:
            if int(case["id"]) not in claimed:
                full = await ctx.client.get_test_case(ctx.project_id, int(case["id"]))
                return await finish(row, await written(row, full, body(row)))
        return None

    by_fields = payload_hash_on(lambda: ctx.test_case_fields)

    def hashed(row: Row) -> str:
        pictures = (
            ""
            if ctx.images is None
            else ctx.images.mark(TEST_CASE.api_segment, source_key(row), row_texts(row))
        )
        return by_fields(row) + pictures

    return ObjectKind(TEST_CASE.name, source_key, hashed, load_level, create, update, lookup)


def test_case_rows(marts: Marts) -> list[Row]:
    assert TEST_CASE.mart is not None
    return marts.rows(TEST_CASE.mart)


def steps_by_case(marts: Marts) -> dict[str, list[Row]]:
    """The mart's steps of each test case, in order."""
    assert TEST_STEP.mart is not None
    return marts.by_parent(TEST_STEP.mart, STEP_ORDER)


async def publish_test_cases(ctx: PublishContext) -> PublishSummary:
    protocol = test_case_protocol(
        ctx,
        steps_by_case(ctx.marts),
        await case_histories(ctx),
        latest_older_versions(test_case_version_rows(ctx.marts)),
    )
    rows = test_case_rows(ctx.marts)
    summary = await ctx.run(protocol, rows, also_reload=(TEST_STEP.name,))
    await keep_failed_pictures_due(ctx.images, TEST_CASE.name, rows, protocol.payload_hash)
    return summary


async def read_back_test_cases(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    return {int(case["id"]): case async for case in rb.client.iter_test_cases(rb.project_id, with_steps=True)}


def reconcile_steps(rb: ReadBack, row: Row, case: Mapping[str, Any]) -> None:
    """A case's steps against the mart's: their count, then each step field for field, by order."""
    result = rb.outcome.results[TEST_STEP.name]
    expected_steps = steps_by_case(rb.marts).get(str(row["source_key"]), [])
    actual_steps = answered_steps(case)
    result.expected += len(expected_steps)
    result.found += len(actual_steps)
    if len(expected_steps) != len(actual_steps):
        result.mismatches.append(
            Mismatch(row["source_key"], "step count", len(expected_steps), len(actual_steps))
        )
    for order, (step, actual) in enumerate(zip(expected_steps, actual_steps, strict=False), start=1):
        expected = expected_test_step(step, order, rb.ids[TEST_CASE.name])
        held = held_test_step(actual)
        compare(
            result, str(step["source_key"]), [(name, value, held[name]) for name, value in expected.items()]
        )


KIND = Kind(
    object_type=TEST_CASE,
    description="qTest test cases with their steps in the create call (call-to-test callees first), "
    "properties set by field label, approved as configured; each carries its Zephyr key.",
    marts=("qtest_test_cases", "qtest_test_steps"),
    upstream=(MODULE,),
    id_types=(MODULE, TEST_CASE, TEST_STEP),
    needs_fields=True,
    publish=publish_test_cases,
    rows=test_case_rows,
    read_back=read_back_test_cases,
    expect=lambda row, rb: expected_test_case(row, rb.ids, rb.test_case_fields),
    held=held_test_case,
    children=(TEST_STEP,),
    reconcile_children=reconcile_steps,
)
