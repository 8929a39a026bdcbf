"""qTest test runs: one per (Zephyr cycle, test case) pair, in its cycle (or the cycle's automation
sub-cycle once the pair has automated executions). A pair whose test case is not in the project has a
skip_reason in the mart: no run, and no logs on it (the mart and the report name them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from zephyr_qtest.lib.qtest.comparison import expected_properties, held_properties
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind, PublishSummary
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
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
from zephyr_qtest.lib.qtest.kinds.vocabulary import TEST_CASE, TEST_CYCLE, TEST_RUN


def test_run_body(row: Row, case_ids: Mapping[str, int], properties: list[dict]) -> dict[str, Any]:
    """The create (and update) body of a run: its case; `properties` already encoded for the project."""
    return {
        "name": row["name"],
        "test_case": {"id": case_ids[row["test_case_source_key"]]},
        "properties": properties,
    }


def run_parent_id(row: Row, cycle_ids: Mapping[str, int]) -> int:
    """The qTest id of the cycle a run goes in; KeyError when that cycle is not in qTest."""
    return cycle_ids[row["parent_source_key"]]


def run_case_id(run: Mapping[str, Any]) -> Any:
    """The test case of a run as qTest answers it (``testCaseId``, or ``test_case.id``)."""
    return run.get("testCaseId") or (run.get("test_case") or {}).get("id")


def expected_test_run(row: Row, ids: Ids, catalog: FieldCatalog) -> dict[str, Any]:
    """What qTest must hold for a run: in its cycle, of its case, the only run of that pair."""
    return {
        "cycle": ids[TEST_CYCLE.name].get(row["parent_source_key"]),
        "test case": ids[TEST_CASE.name].get(row["test_case_source_key"]),
        "runs of this (cycle, case)": 1,
        "properties": expected_properties(encoded_properties(catalog, row.get("properties"))),
    }


# Set on each run read back: how many runs qTest holds for the same (cycle, case) pair.
RUNS_OF_PAIR = "_runs_of_pair"


def held_test_run(found: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cycle": found.get("parentId"),
        "test case": run_case_id(found),
        "runs of this (cycle, case)": found.get(RUNS_OF_PAIR),
        "properties": held_properties(found, expected["properties"]),
    }


def test_run_protocol(ctx: PublishContext) -> ObjectKind[Row]:
    """Create, update (moving it when its cycle changed) and look up runs (by case, in their cycle)."""
    assert TEST_CYCLE.parent_type is not None
    parent_type = TEST_CYCLE.parent_type

    def body(row: Row) -> dict[str, Any]:
        properties = ctx.encode(ctx.test_run_fields, TEST_RUN.api_segment, row.get("properties"))
        return test_run_body(row, ctx.ids[TEST_CASE.name], properties)

    def parent_id(row: Row) -> int:
        return run_parent_id(row, ctx.ids[TEST_CYCLE.name])

    async def create(row: Row) -> Created:
        run = await ctx.client.create_test_run(
            ctx.project_id, body(row), parent_id=parent_id(row), parent_type=parent_type
        )
        created = Created(int(run["id"]), {"parent_id": parent_id(row)})
        ctx.remember(TEST_RUN.name, source_key(row), created)
        return created

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        # A run changes cycle when its pair gains automated executions (the automation sub-cycle).
        if entry.detail.get("parent_id") != parent_id(row):
            await ctx.client.move_test_run(ctx.project_id, entry.qtest_id, parent_id(row), parent_type)
        await ctx.client.update_test_run(ctx.project_id, entry.qtest_id, body(row))
        return Created(entry.qtest_id, {"parent_id": parent_id(row)})

    async def lookup(row: Row) -> Created | None:
        case_id = ctx.ids[TEST_CASE.name][row["test_case_source_key"]]
        claimed = ctx.claimed(TEST_RUN.name)
        async for run in ctx.client.iter_test_runs(
            ctx.project_id, parent_id=parent_id(row), parent_type=parent_type
        ):
            run_case = run_case_id(run)
            if run_case is not None and int(run_case) == case_id and int(run["id"]) not in claimed:
                created = Created(int(run["id"]), {"parent_id": parent_id(row)})
                ctx.remember(TEST_RUN.name, source_key(row), created)
                return created
        return None

    hashed = payload_hash_on(lambda: ctx.test_run_fields)
    return ObjectKind(TEST_RUN.name, source_key, hashed, load_level, create, update, lookup)


def test_run_rows(marts: Marts) -> list[Row]:
    """The runs to create: not those the mart skips (a run of a test case that is not in the project)."""
    assert TEST_RUN.mart is not None
    return [row for row in marts.rows(TEST_RUN.mart) if not row.get("skip_reason")]


async def publish_test_runs(ctx: PublishContext) -> PublishSummary:
    return await ctx.run(test_run_protocol(ctx), test_run_rows(ctx.marts))


async def read_back_test_runs(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    """Every run of the project, each with the number of runs of its (cycle, case) pair."""
    runs = {int(run["id"]): run async for run in rb.client.iter_test_runs(rb.project_id, descendants=True)}
    per_pair = Counter((run.get("parentId"), run_case_id(run)) for run in runs.values())
    return {
        run_id: {**run, RUNS_OF_PAIR: per_pair[(run.get("parentId"), run_case_id(run))]}
        for run_id, run in runs.items()
    }


KIND = Kind(
    object_type=TEST_RUN,
    description="One qTest test run per (Zephyr cycle, test case) pair, in its cycle.",
    marts=("qtest_test_runs",),
    upstream=(TEST_CASE, TEST_CYCLE),
    id_types=(TEST_CASE, TEST_CYCLE, TEST_RUN),
    needs_fields=True,
    publish=publish_test_runs,
    rows=test_run_rows,
    read_back=read_back_test_runs,
    expect=lambda row, rb: expected_test_run(row, rb.ids, rb.test_run_fields),
    held=held_test_run,
)
