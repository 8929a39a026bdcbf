"""What qTest holds of a test case's older versions (``test_case_version.py`` replays them), and how the
test-case kind writes a case's current version after them (an update of the case they made), exactly once:
a write that may have happened is looked for in the case's version list first (the swagger's
getVersions: approved major versions plus the last unapproved one, oldest first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
    Marts,
    PublishContext,
    Row,
    encoded_properties,
    load_level,
    source_key,
)
from zephyr_qtest.lib.qtest.kinds.vocabulary import TEST_CASE_VERSION

# The id-map detail of an older version that names its qTest case.
CASE_ID = "case_id"


@dataclass(frozen=True)
class Replayed:
    """What qTest holds of a case's older versions: the case and the last version replayed (None: none
    is there yet), and whether the write of one may have happened (``pending``): the current version waits
    for it, since it must come after every older version qTest holds."""

    case_id: int | None
    last_version_id: int | None
    waiting: bool


def is_approved(version: Mapping[str, Any]) -> bool:
    return str(version.get("version") or "").endswith(".0")


def versions_after(versions: Sequence[Mapping[str, Any]], version_id: int) -> list[Mapping[str, Any]] | None:
    """The versions qTest lists after `version_id` (oldest first); None when the list does not hold it."""
    ids = [int(version.get("test_case_version_id") or 0) for version in versions]
    if version_id not in ids:
        return None
    return list(versions[ids.index(version_id) + 1 :])


async def approved(client: QtestClient, project_id: int, case_id: int, version: Mapping[str, Any]) -> dict:
    """`version` (the case's latest) approved: approving makes the major version the list keeps."""
    if is_approved(version):
        return dict(version)
    return await client.approve_test_case(project_id, case_id)


def replayed_cases(rows: Sequence[Row], entries: Mapping[str, Entry]) -> dict[str, Replayed]:
    """Case key -> what qTest holds of its older versions, for the cases one of whose older versions is
    done or pending. The done ones are the first ones (a version is sent only after the one before it)."""
    by_case: dict[str, list[Row]] = {}
    for row in rows:
        by_case.setdefault(str(row["parent_source_key"]), []).append(row)
    found: dict[str, Replayed] = {}
    for case_key, versions in by_case.items():
        states = [entries.get(source_key(row)) for row in sorted(versions, key=load_level)]
        done = [entry for entry in states if entry is not None and entry.state == "done" and entry.qtest_id]
        waiting = any(entry is not None and entry.state == "pending" for entry in states)
        if done and done[0].detail.get(CASE_ID):
            found[case_key] = Replayed(int(done[0].detail[CASE_ID]), done[-1].qtest_id, waiting)
        elif waiting:
            found[case_key] = Replayed(None, None, waiting)
    return found


def test_case_version_rows(marts: Marts) -> list[Row]:
    assert TEST_CASE_VERSION.mart is not None
    return marts.rows(TEST_CASE_VERSION.mart)


def latest_older_versions(rows: Sequence[Row]) -> dict[str, Row]:
    """Case key -> the row of its newest older version (the one its current version is written after)."""
    latest: dict[str, Row] = {}
    for row in sorted(rows, key=load_level):
        latest[str(row["parent_source_key"])] = row
    return latest


def cleared(catalog: FieldCatalog, encoded: list[dict], before: Row | None) -> list[dict]:
    """`encoded` (a version's properties, as qTest takes them) with an empty value for every field the
    version written before it (`before`, a mart row) set and it does not: an update keeps the value of a
    field it does not name (the sandbox does; nothing public says qTest clears it), so a value Zephyr
    dropped in a later version must be cleared, or the later version would show the older value."""
    if before is None:
        return encoded
    named = {int(item["field_id"]) for item in encoded}
    dropped = {
        int(item["field_id"])
        for item in encoded_properties(catalog, before.get("properties"))
        if int(item["field_id"]) not in named
    }
    return sorted(
        [*encoded, *({"field_id": field_id, "field_value": ""} for field_id in dropped)],
        key=lambda item: int(item["field_id"]),
    )


# ------------------------------------------------------------------ the current version, written last


async def case_histories(ctx: PublishContext) -> dict[str, Replayed]:
    """Case key -> what qTest holds of its older versions, for the cases whose older versions are in qTest
    or may be (pending). The test-case kind writes such a case's current version as an update of the case
    they made, after them; a case none of whose older versions is there (each refused) is created as any
    other, and its older versions are then not replayed (they cannot go after it)."""
    return replayed_cases(test_case_version_rows(ctx.marts), await ctx.id_map.load(TEST_CASE_VERSION.name))


async def write_current(
    ctx: PublishContext, case_key: str, history: Replayed, body: Mapping[str, Any]
) -> dict:
    """The current version of a case with older versions: an update of the case they made, after them."""
    if history.waiting or history.case_id is None:
        # A KeyError: the run asks qTest nothing; a re-run looks for the pending version first.
        raise KeyError(
            f"an older version of test case {case_key} may be in qTest (its answer was lost): its current "
            "version goes after it, once a re-run has found it"
        )
    return await ctx.client.update_test_case(ctx.project_id, history.case_id, body)


async def find_current(ctx: PublishContext, case_key: str, history: Replayed) -> dict | None:
    """The current version whose write may have happened: a version qTest lists after the last older one
    (the case, as qTest shows it now), else None."""
    if history.waiting or history.case_id is None or history.last_version_id is None:
        return None  # never written while an older version may be missing
    versions = await ctx.client.list_test_case_versions(ctx.project_id, history.case_id)
    later = versions_after(versions, history.last_version_id)
    if later is None:
        raise ValueError(
            f"qTest's version list of test case {history.case_id} ({case_key}) no longer holds its last "
            "older version: its current version cannot be placed after it"
        )
    return await ctx.client.get_test_case(ctx.project_id, history.case_id) if later else None
