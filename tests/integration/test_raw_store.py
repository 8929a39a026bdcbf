"""The raw store: a partition is replaced whole, in one transaction, and only its own project's rows."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.raw_store import RawPartitionWriter, RawRow
from zephyr_qtest.lib.store import Store


async def _write(url: str, entity: str, project: str, rows: list[RawRow], *, fail: bool = False) -> None:
    async with RawPartitionWriter(Store(url), entity, project, run_id="run-1") as writer:
        for row in rows:
            await writer.add(row)
        if fail:
            raise RuntimeError("extraction broke half-way")
        await writer.finish(stats={"requests": 3})


def _rows(url: str, entity: str) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(
            f"select project_key, id, key, payload from zephyr_raw.{entity} order by project_key, id"
        ).fetchall()


def test_replacing_a_partition_leaves_other_projects_alone(clean_database: str) -> None:
    url = clean_database
    asyncio.run(
        _write(url, "test_cases", "ALPHA", [RawRow({"id": 1, "key": "ALPHA-T1"}, id=1, key="ALPHA-T1")])
    )
    asyncio.run(_write(url, "test_cases", "BETA", [RawRow({"id": 2, "key": "BETA-T1"}, id=2, key="BETA-T1")]))
    asyncio.run(
        _write(
            url,
            "test_cases",
            "ALPHA",
            [RawRow({"id": 3, "key": "ALPHA-T2", "name": "ünïcödé <br> ✓"}, id=3, key="ALPHA-T2")],
        )
    )
    assert _rows(url, "test_cases") == [
        ("ALPHA", 3, "ALPHA-T2", {"id": 3, "key": "ALPHA-T2", "name": "ünïcödé <br> ✓"}),
        ("BETA", 2, "BETA-T1", {"id": 2, "key": "BETA-T1"}),
    ]
    with connect(url) as conn:
        log = conn.execute(
            "select project_key, rows_written, requests from zephyr_raw.extraction_log where entity = 'test_cases' order by 1"
        ).fetchall()
    assert log == [("ALPHA", 1, 3), ("BETA", 1, 3)]


def test_a_failed_extraction_keeps_the_previous_partition(clean_database: str) -> None:
    url = clean_database
    asyncio.run(_write(url, "folders", "ALPHA", [RawRow({"id": 1}, id=1)]))
    with pytest.raises(RuntimeError):
        asyncio.run(_write(url, "folders", "ALPHA", [RawRow({"id": 9}, id=9)], fail=True))
    assert _rows(url, "folders") == [("ALPHA", 1, None, {"id": 1})]


def test_nul_characters_are_replaced_and_recorded(clean_database: str) -> None:
    url = clean_database

    async def write() -> list:
        async with RawPartitionWriter(Store(url), "test_cases", "ALPHA", run_id="r") as writer:
            await writer.add(RawRow({"id": 1, "key": "ALPHA-T1", "name": "a\x00b"}, id=1, key="ALPHA-T1"))
            summary = await writer.finish(stats={})
        return summary.issues

    issues = asyncio.run(write())
    assert [issue.object_ref for issue in issues] == ["test_cases ALPHA-T1"]
    assert _rows(url, "test_cases")[0][3]["name"] == "a\ufffdb"
    with connect(url) as conn:
        assert conn.execute("select object_ref, lost from zephyr_raw.extraction_issues").fetchall() == [
            ("test_cases ALPHA-T1", False)
        ]


def test_attachments_keep_bytes_size_and_sha256(clean_database: str) -> None:
    url = clean_database
    blob = bytes(range(256)) * 3
    asyncio.run(
        _write(
            url,
            "attachments",
            "ALPHA",
            [
                RawRow(
                    {"id": 5, "name": "dump (1).bin"},
                    id=5,
                    key="testcases/ALPHA-T1/attachments/5",
                    content=blob,
                ),
                RawRow(
                    {"id": 6, "name": "empty.txt"}, id=6, key="testcases/ALPHA-T1/attachments/6", content=b""
                ),
            ],
        )
    )
    with connect(url) as conn:
        stored = conn.execute(
            "select id, size_bytes, sha256, content from zephyr_raw.attachments order by id"
        ).fetchall()
    assert stored == [
        (5, len(blob), hashlib.sha256(blob).hexdigest(), blob),
        (6, 0, hashlib.sha256(b"").hexdigest(), b""),
    ]
