"""Odd input that once stopped or fooled the extraction: a test case edited between two offset pages of its
listing (served twice with different content), and values PostgreSQL cannot store (a lone surrogate, NUL).
Each is a named extraction issue, the raw check says so, and every other object is extracted."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pytest

from tests.integration.test_raw_extraction import SANDBOX_COUNTS, materialize
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.raw_store import Issue, RawPartitionWriter, RawRow
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.serve import start_in_thread

EDITED_NAME = "Renamed in Zephyr between two pages"


@dataclass
class Extracted:
    database_url: str
    result: dg.ExecuteInProcessResult
    project: str
    edited: dict[str, Any]  # the case edited between pages, as the fixture held it
    bad_case: dict[str, Any]  # a case with a lone surrogate and a NUL
    bad_execution: dict[str, Any]  # an execution with both in one field
    counts: dict[str, int]  # the sandbox's own counts of the project

    def issues(self, entity: str) -> list[tuple[str, str | None, str, bool]]:
        with connect(self.database_url) as conn:
            return conn.execute(
                "select object_ref, field, reason, lost from zephyr_raw.extraction_issues "
                "where project_key = %s and entity = %s order by 1, 2",
                (self.project, entity),
            ).fetchall()

    def payload(self, entity: str, ident: int) -> list[dict[str, Any]]:
        with connect(self.database_url) as conn:
            return [
                payload
                for (payload,) in conn.execute(
                    f"select payload from zephyr_raw.{entity} where project_key = %s and id = %s",
                    (self.project, ident),
                ).fetchall()
            ]


@pytest.fixture(scope="module")
def extracted(new_embedded_database: Any) -> Iterator[Extracted]:
    """Every raw asset of one project, once, from a tenant without cursor endpoints (so test cases come
    through offset pages, 10 a page) where a case is edited while its listing is read."""
    document = copy.deepcopy(generate(5, "tiny"))
    project = document["projects"][0]
    cases = sorted(
        (case for case in document["testcases"] if case["project"]["id"] == project["id"]),
        key=lambda case: case["id"],
    )
    bad_case, edited = cases[0], cases[3]
    bad_case["name"] = "Pay with \ud83d"  # half an emoji: a truncation cut the pair
    bad_case["customFields"]["Notes"] = "nul \x00 inside"
    bad_execution = next(e for e in document["testexecutions"] if e["project"]["id"] == project["id"])
    bad_execution["comment"] = "both \udc00 and \x00"
    database_url = new_embedded_database("zq_odd_input")
    with start_in_thread(fixture=document, page_cap=10) as sandbox:
        sandbox.set_faults(
            nextgen_missing=True,
            edited_between_pages=[{"key": edited["key"], "set": {"name": EDITED_NAME}}],
        )
        result = materialize(database_url, sandbox, project["key"])
        counts = sandbox.info()["counts"]["per_project"][project["key"]]
    yield Extracted(database_url, result, project["key"], edited, bad_case, bad_execution, counts)


def _check(extracted: Extracted, entity: str, check: str) -> dg.AssetCheckEvaluation:
    return next(
        evaluation
        for evaluation in extracted.result.get_asset_check_evaluations()
        if evaluation.asset_key.path == ["zephyr_raw", entity] and evaluation.check_name == check
    )


def test_a_case_edited_between_pages_is_kept_as_edited_recorded_and_fails_the_raw_check(
    extracted: Extracted,
) -> None:
    assert extracted.result.success  # nothing was lost
    edited = extracted.edited
    assert [payload["name"] for payload in extracted.payload("test_cases", edited["id"])] == [EDITED_NAME]
    ref = f"test_cases {edited['key']} (id {edited['id']})"
    served_twice = [issue for issue in extracted.issues("test_cases") if issue[0] == ref]
    assert len(served_twice) == 1
    _, field, reason, lost = served_twice[0]
    assert (field, lost) == ("name", False)
    assert reason.startswith("served twice with different content (name)") and "later copy" in reason
    check = _check(extracted, "test_cases", "ids_unique")
    assert not check.passed
    assert f"{ref} (name)" in (check.description or "")


def test_a_lone_surrogate_and_a_nul_are_replaced_recorded_by_field_and_the_objects_kept(
    extracted: Extracted,
) -> None:
    case, execution = extracted.bad_case, extracted.bad_execution
    (stored_case,) = extracted.payload("test_cases", case["id"])
    assert stored_case["name"] == "Pay with \ufffd"
    assert stored_case["customFields"]["Notes"] == "nul \ufffd inside"
    case_issues = {
        field: (reason, lost)
        for ref, field, reason, lost in extracted.issues("test_cases")
        if ref == f"test_cases {case['key']}"
    }
    assert case_issues == {
        "name": (
            "held a lone UTF-16 surrogate, which PostgreSQL cannot store; stored with U+FFFD in its place",
            False,
        ),
        "customFields.Notes": (
            "held a NUL character, which PostgreSQL cannot store; stored with U+FFFD in its place",
            False,
        ),
    }
    (stored_execution,) = extracted.payload("test_executions", execution["id"])
    assert stored_execution["comment"] == "both \ufffd and \ufffd"
    execution_issues = [
        (field, reason, lost)
        for ref, field, reason, lost in extracted.issues("test_executions")
        if ref == f"test_executions {execution['key']}"
    ]
    assert execution_issues == [
        (
            "comment",
            "held a NUL character and a lone UTF-16 surrogate, which PostgreSQL cannot store; "
            "stored with U+FFFD in its place",
            False,
        )
    ]


def test_every_other_object_is_extracted(extracted: Extracted) -> None:
    with connect(extracted.database_url) as conn:
        for entity, sandbox_name in SANDBOX_COUNTS.items():
            (rows,) = conn.execute(
                f"select count(*) from zephyr_raw.{entity} where project_key = %s", (extracted.project,)
            ).fetchone()
            assert rows == extracted.counts[sandbox_name], entity
        (lost,) = conn.execute(
            "select count(*) from zephyr_raw.extraction_issues where project_key = %s and lost",
            (extracted.project,),
        ).fetchone()
    assert lost == 0
    failed = {
        (evaluation.asset_key.path[-1], evaluation.check_name)
        for evaluation in extracted.result.get_asset_check_evaluations()
        if not evaluation.passed
    }
    # The listing's own count included the second copy, so the count check cannot pass either.
    assert failed == {("test_cases", "ids_unique"), ("test_cases", "row_count_matches_api")}


def test_the_writer_drops_a_plain_repeat_and_replaces_an_edited_copy(extracted: Extracted) -> None:
    """The writer's judgement on its own, in the same database (another project): an identical copy is
    no issue; of an edited one, the last copy is kept and each change named once."""
    first = {"id": 7, "key": "ODD-T7", "name": "first", "labels": ["a"]}

    async def write() -> list[Issue]:
        async with RawPartitionWriter(Store(extracted.database_url), "test_cases", "ODD", "run") as writer:
            await writer.add(RawRow(first, id=7, key="ODD-T7"))
            await writer.add(RawRow({"id": 8, "key": "ODD-T8"}, id=8, key="ODD-T8"))
            writer.add_again(RawRow(dict(first), id=7, key="ODD-T7"))
            writer.add_again(RawRow({**first, "name": "second", "labels": []}, id=7, key="ODD-T7"))
            writer.add_again(RawRow({**first, "name": "second", "labels": []}, id=7, key="ODD-T7"))
            return (await writer.finish(stats={})).issues

    issues = asyncio.run(write())
    assert [(issue.object_ref, issue.field) for issue in issues] == [
        ("test_cases ODD-T7 (id 7)", "labels, name")
    ]
    with connect(extracted.database_url) as conn:
        rows = conn.execute(
            "select id, payload ->> 'name' from zephyr_raw.test_cases where project_key = 'ODD' order by id"
        ).fetchall()
    assert rows == [(7, "second"), (8, None)]
