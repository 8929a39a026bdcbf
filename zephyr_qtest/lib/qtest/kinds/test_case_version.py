"""The older versions of the test cases, replayed as qTest versions of the case, oldest first: the first
creates the case, each later one updates it (qTest makes a new minor version of an approved case), and
each is approved at once, whatever the approval setting of the current version, so that it is a major
version qTest's version list keeps (the swagger's getVersions: approved major versions plus the last
unapproved one; an unapproved older version would be hidden by the next). The test-case kind then writes the
current version last (``test_case.py``), so the case as qTest shows it is the current one.

An older version carries its name, description, precondition and properties (by the current version's
rules: the mart's ``test_case_properties`` macro), and no steps: Zephyr's v2 API gives no steps of an older
version, and the current ones would pass for them (the proof names the steps of each older version as not
carried). A field an earlier version set and a later one does not is cleared in the later one.

Exactly once: a replayed version is recorded under its qTest version id (``test_case_version_id``),
with the case's id in its detail. A version whose write may have happened (``pending``) is looked for in
the case's version list before anything is sent: a version after the one replayed before it is this one
(one run writes the project at a time), approved there if its approval was lost. qTest keeps a version
as it was approved: one whose mapping changed afterwards is not rewritten (a new version would falsify the
history; the reconciliation shows the difference).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zephyr_qtest.lib.qtest.client import quote_search_value
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind, PublishSummary
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
    ZEPHYR_KEY_LABEL,
    Kind,
    PublishContext,
    ReadBack,
    Row,
    load_level,
    payload_hash,
    source_key,
)
from zephyr_qtest.lib.qtest.kinds.case_history import (
    CASE_ID,
    approved,
    cleared,
    replayed_cases,
    test_case_version_rows,
    versions_after,
)
from zephyr_qtest.lib.qtest.kinds.test_case import expected_test_case, held_test_case, test_case_body
from zephyr_qtest.lib.qtest.kinds.vocabulary import MODULE, TEST_CASE, TEST_CASE_VERSION


def test_case_version_protocol(
    ctx: PublishContext,
    case_rows: Mapping[str, Row],
    case_ids: dict[str, int],
    version_rows: Mapping[str, Row] | None = None,
) -> ObjectKind[Row]:
    """Create (POST the first version, PUT each later one; approve), keep, and look up older versions.
    `case_ids`: case key -> the qTest case its first version made (from the id map; filled as it goes).
    `version_rows`: the older versions' rows by source key (a later version clears what an earlier one
    set and it does not)."""
    version_rows = version_rows or {}
    # Version source key -> its qTest version id (done rows).
    version_ids = ctx.ids[TEST_CASE_VERSION.name]

    def body(row: Row) -> dict[str, Any]:
        case = case_rows[str(row["parent_source_key"])]
        properties = cleared(
            ctx.test_case_fields,
            ctx.encode(ctx.test_case_fields, TEST_CASE.api_segment, row.get("properties")),
            version_rows.get(previous(row)),
        )
        # The module is the case's (qTest keeps one per case, not per version).
        placed = {**row, "parent_source_key": case.get("parent_source_key")}
        return test_case_body(placed, [], ctx.ids, properties)

    def previous(row: Row) -> str:
        return f"{row['parent_source_key']}@{int(row['version_number']) - 1}"

    def created(row: Row, case_id: int, version: Mapping[str, Any]) -> Created:
        case_ids[str(row["parent_source_key"])] = case_id
        result = Created(
            int(version["test_case_version_id"]), {CASE_ID: case_id, "version": version.get("version")}
        )
        # The next level's versions follow it in this run.
        ctx.remember(TEST_CASE_VERSION.name, source_key(row), result)
        return result

    async def create(row: Row) -> Created:
        case_key = str(row["parent_source_key"])
        if case_key in ctx.ids[TEST_CASE.name]:
            # Its current version is there (written by a run before its older versions were known, or after
            # this one was refused): an older version cannot go before it now.
            raise ValueError(
                f"the current version of test case {case_key} is in qTest already (test case "
                f"{ctx.ids[TEST_CASE.name][case_key]}): an older version cannot be replayed before it"
            )
        if int(row["version_number"]) == 1:
            case = await ctx.client.create_test_case(ctx.project_id, body(row))
        else:
            # KeyError: the version before it is not in qTest (it has its own failure), so nothing is sent.
            version_ids[previous(row)]
            case_id = case_ids[str(row["parent_source_key"])]
            case = await ctx.client.update_test_case(ctx.project_id, case_id, body(row))
        case_id = int(case["id"])
        return created(row, case_id, await approved(ctx.client, ctx.project_id, case_id, case))

    async def keep(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        return Created(entry.qtest_id, entry.detail)

    async def lookup(row: Row) -> Created | None:
        case_key = str(row["parent_source_key"])
        if int(row["version_number"]) == 1:
            case_id = await find_case(row)
            if case_id is None:
                return None
            versions = await ctx.client.list_test_case_versions(ctx.project_id, case_id)
            later: list[Mapping[str, Any]] | None = versions[:1]
        else:
            case_id = case_ids[case_key]
            versions = await ctx.client.list_test_case_versions(ctx.project_id, case_id)
            later = versions_after(versions, version_ids[previous(row)])
            if later is None:
                raise ValueError(
                    f"qTest's version list of test case {case_id} no longer holds the version "
                    f"{previous(row)} became: {source_key(row)} cannot be placed after it"
                )
        if not later:
            return None
        # The first version after the one before it is this one: the project has one writer at a time.
        return created(row, case_id, await approved(ctx.client, ctx.project_id, case_id, later[0]))

    async def find_case(row: Row) -> int | None:
        if ctx.test_case_fields.get(ZEPHYR_KEY_LABEL) is None:
            return None  # without the key property a lost create cannot be told from a namesake
        query = f"'{ZEPHYR_KEY_LABEL}' = '{quote_search_value(str(row['parent_source_key']))}'"
        claimed = set(case_ids.values()) | ctx.claimed(TEST_CASE.name)
        for case in await ctx.client.search(ctx.project_id, TEST_CASE.api_segment, query):
            if int(case["id"]) not in claimed:
                return int(case["id"])
        return None

    return ObjectKind(TEST_CASE_VERSION.name, source_key, payload_hash, load_level, create, keep, lookup)


async def publish_test_case_versions(ctx: PublishContext) -> PublishSummary:
    rows = test_case_version_rows(ctx.marts)
    assert TEST_CASE.mart is not None
    cases = {source_key(row): row for row in ctx.marts.rows(TEST_CASE.mart)}
    # The cases earlier runs replayed versions of, for the versions after them.
    entries = await ctx.id_map.load(TEST_CASE_VERSION.name)
    case_ids = {
        key: replayed.case_id
        for key, replayed in replayed_cases(rows, entries).items()
        if replayed.case_id is not None
    }
    by_key = {source_key(row): row for row in rows}
    return await ctx.run(test_case_version_protocol(ctx, cases, case_ids, by_key), rows)


async def read_back_test_case_versions(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    """The older versions qTest lists for each case that has some, by version id: every version of the
    case's list up to the last one the id map names (a version replayed twice among them shows as
    unaccounted); those after it are the current version's (and its later updates)."""
    replayed = set(rb.ids[TEST_CASE_VERSION.name].values())
    found: dict[int, Any] = {}
    for case_key in dict.fromkeys(str(row["parent_source_key"]) for row in rows):
        case_id = rb.ids[TEST_CASE.name].get(case_key)
        if case_id is None:
            continue
        versions = await rb.client.list_test_case_versions(rb.project_id, case_id)
        ids = [int(version.get("test_case_version_id") or 0) for version in versions]
        last = max((index for index, version_id in enumerate(ids) if version_id in replayed), default=-1)
        for version_id, version in zip(ids[: last + 1], versions, strict=False):
            found[version_id] = version
    return found


KIND = Kind(
    object_type=TEST_CASE_VERSION,
    description="The older versions of the test cases, replayed oldest first as approved qTest versions of "
    "the case (name, description, precondition, properties by the current version's rules; no steps: "
    "Zephyr's API gives none), before the current version.",
    marts=("qtest_test_case_versions",),
    upstream=(MODULE,),
    id_types=(MODULE, TEST_CASE, TEST_CASE_VERSION),
    needs_fields=True,
    publish=publish_test_case_versions,
    rows=test_case_version_rows,
    read_back=read_back_test_case_versions,
    expect=lambda row, rb: expected_test_case(row, rb.ids, rb.test_case_fields),
    held=held_test_case,
)
