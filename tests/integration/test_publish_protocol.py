"""The exactly-once protocol for objects created many to a call (qTest's bulk auto-test-logs), against a
real id map: what a batch call creates is done, what it refused is failed, what it may or may not have
created stays pending and is looked up (never created again blindly) by the next run. Also the pure
helpers of the bulk path: the load order that groups a run's consecutive automated logs, and what a
finished queue job says of a log that is not in qTest."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence

import pytest

from zephyr_qtest.lib.http import AmbiguousWriteError, ApiError
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind, publish
from zephyr_qtest.lib.qtest.id_map import IdMap
from zephyr_qtest.lib.qtest.kinds.automated_test_log import automation_waves, queue_failure
from zephyr_qtest.lib.store import Store

Item = dict[str, str]


class FakeQueue:
    """A stand-in for the qTest side only: which keys a batch call made, refused or left unknown."""

    def __init__(self) -> None:
        self.made: dict[str, int] = {}
        self.batch_calls: list[list[str]] = []
        self.single_calls: list[str] = []
        self.lookups: list[str] = []
        self.refuse: set[str] = set()
        self.lose: set[str] = set()

    def kind(self) -> ObjectKind[Item]:
        async def create(item: Item) -> Created:
            self.single_calls.append(item["key"])
            self.made[item["key"]] = 1000 + len(self.made)
            return Created(self.made[item["key"]])

        async def update(item: Item, entry: object) -> Created:
            raise AssertionError("nothing changes in these tests")

        async def lookup(item: Item) -> Created | None:
            self.lookups.append(item["key"])
            qtest_id = self.made.get(item["key"])
            return Created(qtest_id) if qtest_id else None

        async def create_many(items: Sequence[Item]) -> list[Created | Exception]:
            self.batch_calls.append([item["key"] for item in items])
            results: list[Created | Exception] = []
            for item in items:
                key = item["key"]
                if key in self.refuse:
                    results.append(ApiError("POST", "auto-test-logs", 400, f"{key} refused"))
                    continue
                self.made[key] = 1000 + len(self.made)
                if key in self.lose:  # made, but the caller cannot know
                    results.append(AmbiguousWriteError("POST", "auto-test-logs", None, "answer lost"))
                else:
                    results.append(Created(self.made[key]))
            return results

        return ObjectKind(
            "test_log",
            lambda item: item["key"],
            lambda item: item["hash"],
            lambda item: int(item["level"]),
            create,
            update,
            lookup,
            batched=lambda item: item["automated"] == "yes",
            create_many=create_many,
        )


def items() -> list[Item]:
    return [
        {"key": "E1", "hash": "h1", "level": "1", "automated": "yes"},
        {"key": "E2", "hash": "h2", "level": "1", "automated": "yes"},
        {"key": "E3", "hash": "h3", "level": "1", "automated": "no"},
        {"key": "E4", "hash": "h4", "level": "2", "automated": "yes"},
        {"key": "E5", "hash": "h5", "level": "2", "automated": "yes"},
    ]


async def _publish(database_url: str, queue: FakeQueue) -> tuple[dict[str, tuple[str, int | None]], object]:
    id_map = await IdMap.open(Store(database_url), "PROTO", "http://qtest.invalid")
    try:
        summary = await publish(queue.kind(), items(), id_map)
        entries = await id_map.load("test_log")
    finally:
        await id_map.close()
    return {key: (entry.state, entry.qtest_id) for key, entry in entries.items()}, summary


@pytest.fixture
def database_url(new_embedded_database: Callable[[str], str]) -> str:
    return new_embedded_database("zq_protocol")


def test_a_batch_records_each_outcome_and_a_rerun_looks_before_creating(database_url: str) -> None:
    queue = FakeQueue()
    queue.refuse = {"E2"}
    queue.lose = {"E4"}
    states, summary = asyncio.run(_publish(database_url, queue))
    # One batch call per level for the automated items, single calls for the others.
    assert queue.batch_calls == [["E1", "E2"], ["E4", "E5"]]
    assert queue.single_calls == ["E3"]
    assert states["E1"] == ("done", queue.made["E1"])
    assert states["E2"] == ("failed", None)
    assert states["E4"] == ("pending", None)  # made, unknown to us
    assert states["E5"][0] == "done"
    assert summary.created == 3 and summary.failed == 2  # type: ignore[attr-defined]

    # The next run: the refused one is sent again, the unknown one is looked up and adopted.
    queue.refuse = set()
    queue.lose = set()
    queue.batch_calls.clear()
    made_before = dict(queue.made)
    states, summary = asyncio.run(_publish(database_url, queue))
    assert queue.batch_calls == [["E2"]]
    assert "E4" in queue.lookups
    assert states["E4"] == ("done", made_before["E4"])
    assert all(state == "done" for state, _ in states.values())
    assert (summary.created, summary.adopted, summary.skipped) == (1, 1, 3)  # type: ignore[attr-defined]
    assert len(queue.made) == 5  # nothing twice


def row(run: str, order: int, automated: bool, key: str) -> dict[str, object]:
    return {"source_key": key, "parent_source_key": run, "log_order": order, "automated": automated}


def test_consecutive_automated_logs_of_a_run_share_a_level_and_order_is_kept() -> None:
    rows = [
        row("R1", 1, True, "a1"),
        row("R1", 2, True, "a2"),
        row("R1", 3, False, "m3"),
        row("R1", 4, True, "a4"),
        row("R1", 5, True, "a5"),
        row("R2", 1, False, "m1"),
        row("R2", 2, True, "b2"),
    ]
    waves = automation_waves(rows, lambda r: r["automated"])
    assert waves == {"a1": 1, "a2": 1, "m3": 3, "a4": 4, "a5": 4, "m1": 1, "b2": 2}


def test_a_finished_job_says_why_it_made_no_log_from_its_error_text() -> None:
    # A job's answer holds counts only (REAL_SHAPES.md qTest item 1): which log landed where is read back
    # from qTest, so the answer only explains a log that is not there; FAILED content is the error text.
    counts = {
        "testSuiteId": 7,
        "testSuiteName": "S",
        "totalTestCases": 1,
        "totalTestRuns": 1,
        "totalTestLogs": 1,
    }
    assert "neither on its run nor found" in queue_failure(
        {"state": "SUCCESS", "content": json.dumps(counts)}
    )
    failed = queue_failure({"state": "FAILED", "content": "test_logs[0].status 'X' is not mapped"})
    assert failed == "failed: test_logs[0].status 'X' is not mapped"
    assert queue_failure({"state": "FAILED", "content": ""}) == "failed: no reason given"
