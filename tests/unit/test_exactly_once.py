"""The exactly-once protocol's rule for creates whose answer was lost, without a server or a database: a
lookup that fails never leads to a create (the object stays pending), and the summary tells what is
pending (a re-run looks for it first) apart from what was refused (a re-run sends it again)."""

from __future__ import annotations

import asyncio

from tests.unit.test_store import IdMapInMemory
from zephyr_qtest.lib.http import AmbiguousWriteError, ApiError
from zephyr_qtest.lib.qtest.exactly_once import Created, Failure, ObjectKind, PublishSummary, publish
from zephyr_qtest.lib.qtest.id_map import Entry

Item = dict[str, str]


class Flaky:
    """A kind whose creates lose their answer (`lose_answer`) and whose lookups fail (`lookup_fails`)."""

    def __init__(self) -> None:
        self.creates: list[str] = []
        self.lose_answer = True
        self.lookup_fails = True

    def kind(self) -> ObjectKind[Item]:
        async def create(item: Item) -> Created:
            self.creates.append(item["key"])
            if self.lose_answer:
                raise AmbiguousWriteError("POST", "modules", None, "connection closed")
            return Created(500 + len(self.creates))

        async def update(item: Item, entry: Entry) -> Created:
            raise AssertionError("nothing changes here")

        async def lookup(item: Item) -> Created | None:
            if self.lookup_fails:
                raise ApiError("GET", "modules", 503, "service unavailable")
            return Created(501) if self.creates else None

        return ObjectKind("module", lambda i: i["key"], lambda i: "h", lambda i: 0, create, update, lookup)


def test_a_lost_create_whose_lookup_fails_stays_pending_and_is_not_created_again() -> None:
    flaky, id_map = Flaky(), IdMapInMemory()
    summary = asyncio.run(publish(flaky.kind(), [{"key": "M1"}], id_map))  # type: ignore[arg-type]
    assert flaky.creates == ["M1"]  # sent once, never a second time on a guess
    assert id_map.entries[("module", "M1")].state == "pending"
    assert [(f.source_key, f.pending) for f in summary.failures] == [("M1", True)]
    assert "looking for it failed" in summary.failures[0].reason

    # The next run: the lookup fails again -> still pending, still not created.
    summary = asyncio.run(publish(flaky.kind(), [{"key": "M1"}], id_map))  # type: ignore[arg-type]
    assert flaky.creates == ["M1"] and summary.pending

    # Once the lookup works, the object the lost create made is adopted.
    flaky.lookup_fails = False
    summary = asyncio.run(publish(flaky.kind(), [{"key": "M1"}], id_map))  # type: ignore[arg-type]
    assert flaky.creates == ["M1"] and summary.adopted == 1
    assert id_map.entries[("module", "M1")] == Entry(501, "h", "done", {})


def test_the_failure_text_tells_pending_from_refused_and_names_each_reason_once() -> None:
    summary = PublishSummary("test_log")
    lost = "the answer to bulk submission abc was lost; qTest's queue may still make them until 12:00 UTC"
    summary.failures = [Failure(f"E{n}", lost, pending=True) for n in range(7)]
    summary.failures.append(Failure("E9", "400 status 'X' is not mapped"))
    text = summary.failure_text("test_logs of SHOP")
    assert text.startswith("8 test_logs of SHOP were not published: 1 failed (a re-run sends them again)")
    assert "7 pending" in text and "looks for them in qTest first" in text
    assert text.count(lost) == 1 and "(7: E0, E1, E2, E3, E4, ...)" in text
    assert summary.as_metadata()["pending"] == 7 and summary.as_metadata()["failed"] == 8


def test_siblings_in_sequence_are_created_one_after_the_other_in_rank_order() -> None:
    """Items of one `sequence` group are created in rank order, each after the previous one's answer (qTest
    numbers siblings' display order by creation); another group and free items still go side by side."""
    events: list[str] = []
    running: set[str] = set()
    overlaps: set[frozenset[str]] = set()

    async def create(item: Item) -> Created:
        events.append(item["key"])
        overlaps.update(frozenset({item["key"], other}) for other in running)
        running.add(item["key"])
        for _ in range(3):  # give every other coroutine its turn while this create is in flight
            await asyncio.sleep(0)
        running.discard(item["key"])
        return Created(600 + len(events))

    async def update(item: Item, entry: Entry) -> Created:
        raise AssertionError("nothing changes here")

    async def lookup(item: Item) -> Created | None:
        return None

    def sequence(item: Item) -> tuple[str, tuple[int, ...]] | None:
        return (item["parent"], (int(item["index"]),)) if item["index"] else None

    kind = ObjectKind(
        "module", lambda i: i["key"], lambda i: "h", lambda i: 0, create, update, lookup, sequence=sequence
    )
    items = [
        {"key": "A3", "parent": "A", "index": "3"},
        {"key": "A1", "parent": "A", "index": "1"},
        {"key": "B2", "parent": "B", "index": "2"},
        {"key": "A2", "parent": "A", "index": "2"},
        {"key": "B1", "parent": "B", "index": "1"},
        {"key": "F", "parent": "A", "index": ""},
    ]
    summary = asyncio.run(publish(kind, items, IdMapInMemory()))  # type: ignore[arg-type]
    assert summary.created == 6
    for group in (["A1", "A2", "A3"], ["B1", "B2"]):
        assert [key for key in events if key in group] == group
        # No two siblings of a group were ever in flight together.
        assert not any(pair <= set(group) for pair in overlaps)
    # The groups and the free item did go side by side.
    assert frozenset({"A1", "B1"}) in overlaps and any("F" in pair for pair in overlaps)
