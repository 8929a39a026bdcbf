"""The store's repositories as the domain code sees them: small interfaces a unit test fills with fakes
(no server, no database)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from zephyr_qtest.lib.qtest import reconcile
from zephyr_qtest.lib.qtest.comparison import Mismatch, Reconciliation, TypeResult
from zephyr_qtest.lib.qtest.id_map import Entry, site_of
from zephyr_qtest.lib.qtest.kinds import attachment
from zephyr_qtest.lib.qtest.kinds.base import Marts, PublishContext
from zephyr_qtest.lib.qtest.kinds.vocabulary import ATTACHMENT, TEST_CASE
from zephyr_qtest.lib.store import Store
from zephyr_qtest.lib.zephyr import raw_checks
from zephyr_qtest.lib.zephyr.report import print_extraction_report

SITE = "https://acme.qtestnet.com"


class SavedReconciliation:
    """A ``ReconciliationRows`` in memory, per target site."""

    def __init__(self) -> None:
        self.replaced: dict[tuple[str, str], tuple[list[tuple], list[tuple]]] = {}

    def replace(
        self, project_key: str, counts: list[tuple], mismatches: list[tuple], target_site: str
    ) -> None:
        self.replaced[(target_site, project_key)] = (counts, mismatches)

    def read(self, projects: list[str], target_site: str) -> list[tuple]:
        return sorted(
            row
            for key in projects
            if (target_site, key) in self.replaced
            for row in self.replaced[(target_site, key)][0]
        )


def test_saving_a_reconciliation_replaces_the_projects_counts_and_mismatches() -> None:
    outcome = Reconciliation("ALPHA", 7, target_site=SITE)
    outcome.results["test_case"] = TypeResult(
        "test_case", expected=3, found=3, matched=2, mismatches=[Mismatch("ALPHA-T1", "name", "a", {"b": 1})]
    )
    outcome.results["module"] = TypeResult("module", expected=2, found=1, matched=1, missing=["F2"])
    saved = SavedReconciliation()

    reconcile.save(saved, outcome)

    counts, mismatches = saved.replaced[(SITE, "ALPHA")]
    assert counts == [("ALPHA", "test_case", 3, 3, 2, 0, 0, 1), ("ALPHA", "module", 2, 1, 1, 1, 0, 0)]
    assert mismatches == [("ALPHA", "test_case", "ALPHA-T1", "name", '"a"', '{"b": 1}')]


def test_the_saved_reconciliation_prints_equal_only_when_every_project_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    saved = SavedReconciliation()
    saved.replace("ALPHA", [("ALPHA", "module", 2, 2, 2, 0, 0, 0)], [], SITE)
    assert reconcile.print_reconciliation(saved, ["ALPHA"], SITE + "/api/v3/", {"ALPHA": (7, "Alpha")})  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert out.rstrip().endswith("loader check: equal")
    assert f"target: qTest site {SITE}" in out and "ALPHA -> qTest project 'Alpha' (id 7)" in out
    assert not reconcile.print_reconciliation(saved, ["ALPHA", "BETA"], SITE)  # type: ignore[arg-type]
    assert "BETA: not reconciled" in capsys.readouterr().out
    # Another site's results are not this one's: a run against it has not reconciled anything yet.
    assert not reconcile.print_reconciliation(saved, ["ALPHA"], "https://live.qtestnet.com")  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "ALPHA -> no qTest project there yet" in out and "ALPHA: not reconciled" in out


def test_a_site_is_its_base_url_without_api_path_or_trailing_slash() -> None:
    assert site_of("https://Acme.qtestnet.com/api/v3/") == "https://acme.qtestnet.com"
    assert site_of(" https://acme.qtestnet.com// ") == "https://acme.qtestnet.com"
    assert site_of("http://127.0.0.1:8123") == "http://127.0.0.1:8123"
    assert site_of("https://qtest.example.com/manager/api/v3") == "https://qtest.example.com/manager"


class RawAnswers:
    """A ``RawQueries`` answering each query with the next canned rows, and keeping what it was asked."""

    def __init__(self, *answers: list[tuple]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[Any, Any]] = []

    def query(self, statement: Any, params: Any) -> list[tuple]:
        self.asked.append((statement, params))
        return self.answers.pop(0)


def test_the_row_count_check_compares_the_log_the_table_and_the_api() -> None:
    assert raw_checks.row_count_matches_api(RawAnswers([(5, 5)], [(5,)]), "folders", "ALPHA").passed
    short = raw_checks.row_count_matches_api(RawAnswers([(5, 6)], [(5,)]), "folders", "ALPHA")
    assert not short.passed and short.description == "5 rows in the table, 5 written, but the API reported 6"
    never = raw_checks.row_count_matches_api(RawAnswers([], [(0,)]), "folders", "ALPHA")
    assert not never.passed and never.description == "folders of ALPHA has not been extracted"


def test_call_to_test_targets_in_other_projects_are_reported_not_failed() -> None:
    rows = [("ALPHA-T1#1", "ALPHA-T2", "ALPHA", True), ("ALPHA-T1#2", "BETA-T9", "BETA", False)]
    outcome = raw_checks.call_to_test_targets_exist(RawAnswers(rows), "ALPHA")
    assert outcome.passed and outcome.metadata["other_project_targets"] == "BETA-T9"
    missing = raw_checks.call_to_test_targets_exist(
        RawAnswers([("ALPHA-T1#1", "ALPHA-T3", "ALPHA", False)]), "ALPHA"
    )
    assert not missing.passed and "ALPHA-T1#1 calls ALPHA-T3" in missing.description


def test_an_entity_name_reaches_the_query_quoted() -> None:
    raw = RawAnswers([], [])
    raw_checks.ids_unique(raw, 'odd"name', "ALPHA")
    statement, params = raw.asked[0]
    assert '"zephyr_raw"."odd""name"' in statement.as_string(None)
    assert params == ("ALPHA", "ALPHA")


def test_the_extraction_report_reads_the_log_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    class Log:
        def extraction_counts(
            self, projects: list[str]
        ) -> dict[tuple[str, str], tuple[int, int | None, int, int]]:
            return {("ALPHA", "folders"): (4, 4, 0, 0)}

        def deletions(self, projects: list[str]) -> list[tuple[str, str, str, str]]:
            return [("ALPHA", "test_cases", "ALPHA-T3", "run-1")]

    print_extraction_report(Log(), ["ALPHA"])
    out = capsys.readouterr().out
    assert "4 = api 4" in out and "not extracted" in out
    # A case deleted in Zephyr after it was extracted is named (qTest keeps it).
    assert "deleted in Zephyr since they were extracted (1;" in out and "ALPHA test_cases: ALPHA-T3" in out


class MartsInMemory:
    """A ``MartSource`` over rows per table; counts the connections a stage would take for bytes."""

    def __init__(self, tables: Mapping[str, list[dict[str, Any]]], contents: Mapping[int, bytes]) -> None:
        self.tables = tables
        self.contents = contents
        self.reads: list[str] = []
        self.bytes_connections = 0

    def rows(self, table: str, project_key: str, order_by: Sequence[str]) -> list[dict[str, Any]]:
        self.reads.append(table)
        return [dict(row) for row in self.tables.get(table, []) if row["project_key"] == project_key]

    @contextmanager
    def attachment_contents(self) -> Iterator[Any]:
        self.bytes_connections += 1
        contents = self.contents

        class Contents:
            def read(self, attachment_id: int) -> bytes:
                return contents[attachment_id]

        yield Contents()


class IdMapInMemory:
    """The id map's operations the exactly-once protocol uses, in a dict."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Entry] = {}

    async def load(self, object_type: str) -> dict[str, Entry]:
        return {key: entry for (kind, key), entry in self.entries.items() if kind == object_type}

    async def pending(self, object_type: str, source_key: str, payload_hash: str) -> None:
        old = self.entries.get((object_type, source_key))
        self.entries[(object_type, source_key)] = Entry(
            old.qtest_id if old else None, payload_hash, "pending"
        )

    async def pending_many(self, object_type: str, rows: Iterable[tuple[str, str]]) -> None:
        for key, payload_hash in rows:
            await self.pending(object_type, key, payload_hash)

    async def done(
        self, object_type: str, source_key: str, qtest_id: int, payload_hash: str | None, detail: Any = None
    ) -> None:
        self.entries[(object_type, source_key)] = Entry(qtest_id, payload_hash, "done", dict(detail or {}))

    async def done_many(self, object_type: str, rows: Iterable[tuple[str, int, str | None]]) -> None:
        for key, qtest_id, payload_hash in rows:
            await self.done(object_type, key, qtest_id, payload_hash)

    async def failed(self, object_type: str, source_key: str, payload_hash: str | None, error: str) -> None:
        self.entries[(object_type, source_key)] = Entry(None, payload_hash, "failed")


class AttachmentClient:
    def __init__(self) -> None:
        self.uploaded: list[tuple[str, int, str, bytes]] = []

    async def upload_attachment(
        self, project_id: int, object_type: str, owner_id: int, name: str, content_type: str, content: bytes
    ) -> dict[str, Any]:
        self.uploaded.append((object_type, owner_id, name, content))
        return {"id": 100 + len(self.uploaded)}

    async def list_attachments(
        self, project_id: int, object_type: str, owner_id: int
    ) -> list[dict[str, Any]]:
        return []


def _attachment(key: str, attachment_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "project_key": "ALPHA", "source_key": key, "payload_hash": f"h-{key}", "load_order": 0,
        "attachment_id": attachment_id, "name": f"{key}.txt", "content_type": "text/plain", "size_bytes": 3,
        "qtest_object_type": TEST_CASE.api_segment, "parent_source_key": "ALPHA-T1", "skip_reason": None,
        **extra,
    }  # fmt: skip


def test_an_attachment_stage_reads_every_files_bytes_through_one_connection() -> None:
    assert ATTACHMENT.mart is not None
    rows = [
        _attachment("A1", 1),
        _attachment("A2", 2),
        _attachment("A3", 3, skip_reason="over qTest's 50 MB cap"),
    ]
    source = MartsInMemory({ATTACHMENT.mart: rows}, {1: b"one", 2: b"two"})
    client = AttachmentClient()
    id_map = IdMapInMemory()
    ctx = PublishContext(client, 1, id_map, Marts(source, "ALPHA"))  # type: ignore[arg-type]
    ctx.ids[TEST_CASE.name]["ALPHA-T1"] = 10

    summary = asyncio.run(attachment.KIND.publish(ctx))

    assert source.bytes_connections == 1
    assert sorted(client.uploaded) == [
        (TEST_CASE.api_segment, 10, "A1.txt", b"one"),
        (TEST_CASE.api_segment, 10, "A2.txt", b"two"),
    ]
    assert {key: entry.state for (_, key), entry in id_map.entries.items()} == {"A1": "done", "A2": "done"}
    assert [item["name"] for item in summary.not_uploaded] == ["A3.txt"]
    # The mart is read once for the stage, however many times the kind asks for its rows.
    assert source.reads == [ATTACHMENT.mart]


def test_a_store_opens_no_connection_until_one_is_asked_for() -> None:
    with Store("postgresql://nobody@127.0.0.1:1/none") as store:
        assert store.raw_rows() is not None and store.marts() is not None
    store.close()  # closing twice is harmless
