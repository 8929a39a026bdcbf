"""Same-named attachments on one object stay two files: a Zephyr test case and an execution each carry two
files called ``screenshot.png`` with different bytes; every upload's answer is lost (qTest applied it), so
each is found again by looking, and a re-run changes nothing. Each file arrives byte for byte exactly once.

Real qTest sandbox over HTTP (its lost-answer switch), real PostgreSQL (the id map, the attachments' mart
and their bytes as the transform leaves them), the attachment kind's own publishing path.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.exactly_once import PublishSummary
from zephyr_qtest.lib.qtest.kinds import id_types_of_stage
from zephyr_qtest.lib.qtest.kinds.attachment import publish_attachments
from zephyr_qtest.lib.qtest.kinds.base import Marts, PublishContext
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread

PROJECT = "ATT"
NAME = "screenshot.png"
# source key -> (owner's object type, owner's source key, load order, bytes): same name, different bytes.
FILES: dict[str, tuple[str, str, int, bytes]] = {
    "ATT-T1/a": ("test-cases", "ATT-T1", 1, b"\x89PNG first screenshot"),
    "ATT-T1/b": ("test-cases", "ATT-T1", 2, b"\x89PNG second screenshot, a longer one"),
    "ATT-E1/a": ("test-logs", "ATT-E1", 1, b"\x89PNG run, first"),
    "ATT-E1/b": ("test-logs", "ATT-E1", 2, b"\x89PNG run, second"),
}

# Only what the attachment stage reads of dbt's mart and of the canonical bytes.
MART_DDL = """
create schema if not exists canonical;
create schema if not exists qtest_mapping;
create table canonical.attachment (attachment_id bigint primary key, attachment_blob bytea);
create table qtest_mapping.qtest_attachments (
    project_key text, source_key text, payload_hash text, load_order int, attachment_id bigint, name text,
    content_type text, size_bytes bigint, sha256 text, qtest_object_type text, parent_source_key text,
    skip_reason text
);
"""


@pytest.fixture
def qtest(tmp_path: Path) -> Iterator[QTestSandboxHandle]:
    with start_qtest_in_thread(tmp_path / "qtest", seed=5, projects=["Attachments"]) as handle:
        yield handle


def owners(qtest: QTestSandboxHandle) -> tuple[int, int, int]:
    """A project with one test case and one test log of its run: (project, test case, test log)."""
    api = httpx.Client(base_url=qtest.api_url, headers=qtest.headers)
    pid = next(p["id"] for p in api.get("/projects").json() if p["name"] == "Attachments")
    case = api.post(f"/projects/{pid}/test-cases", json={"name": "Logged in", "properties": []})
    assert case.status_code == 200, case.text
    cycle = api.post(
        f"/projects/{pid}/test-cycles", params={"parentId": 0, "parentType": "root"}, json={"name": "C"}
    )
    assert cycle.status_code == 201, cycle.text
    run = api.post(
        f"/projects/{pid}/test-runs",
        params={"parentId": cycle.json()["id"], "parentType": "test-cycle"},
        json={"name": "Run", "test_case": {"id": case.json()["id"]}, "properties": []},
    )
    assert run.status_code == 201, run.text
    statuses = {s["name"]: s["id"] for s in api.get(f"/projects/{pid}/test-runs/execution-statuses").json()}
    log = api.post(
        f"/projects/{pid}/test-runs/{run.json()['id']}/test-logs",
        json={
            "status": {"id": statuses["Passed"]},
            "exe_start_date": "2026-05-29T10:00:00Z",
            "exe_end_date": "2026-05-29T10:05:00Z",
        },
    )
    assert log.status_code == 201, log.text
    return pid, int(case.json()["id"]), int(log.json()["id"])


def fill_mart(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(MART_DDL)
        for number, (key, (object_type, owner_key, order, content)) in enumerate(FILES.items(), start=1):
            sha = hashlib.sha256(content).hexdigest()
            conn.execute("insert into canonical.attachment values (%s, %s)", (number, content))
            conn.execute(
                "insert into qtest_mapping.qtest_attachments values "
                "(%s, %s, %s, %s, %s, %s, 'image/png', %s, %s, %s, %s, null)",
                (PROJECT, key, sha, order, number, NAME, len(content), sha, object_type, owner_key),
            )


async def publish(
    database_url: str,
    qtest: QTestSandboxHandle,
    pid: int,
    case_id: int,
    log_id: int,
    pending: tuple[str, ...] = (),
) -> PublishSummary:
    """The attachment stage as `publish_stage` runs it (its owners already done in the id map); the keys
    `pending` are left as a run that died between its uploads and their answers leaves them."""
    with Store(database_url) as store:
        id_map = await store.open_id_map(PROJECT, qtest.base_url)
        try:
            await id_map.done("test_case", "ATT-T1", case_id, "h", {})
            await id_map.done("test_log", "ATT-E1", log_id, "h", {})
            for key in pending:
                await id_map.pending("attachment", key, hashlib.sha256(FILES[key][3]).hexdigest())
            async with QtestClient(qtest.base_url, qtest.token) as client:
                ctx = PublishContext(client, pid, id_map, Marts(store.marts(), PROJECT))
                await ctx.load_ids(*id_types_of_stage("attachments"))
                return await publish_attachments(ctx)
        finally:
            await id_map.close()


def recorded(database_url: str) -> dict[str, tuple[str, int]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select source_key, state, qtest_id from migration.id_map where project_key = %s "
            "and object_type = 'attachment'",
            (PROJECT,),
        ).fetchall()
    return {key: (state, qtest_id) for key, state, qtest_id in rows}


def held(
    qtest: QTestSandboxHandle, pid: int, object_type: str, owner_id: int
) -> dict[int, tuple[str, bytes]]:
    """Every file qTest holds on the owner, downloaded: id -> (name, bytes)."""
    api = httpx.Client(base_url=qtest.api_url, headers=qtest.headers)
    listed = api.get(f"/projects/{pid}/{object_type}/{owner_id}/attachments").json()
    return {
        a["id"]: (
            a["name"],
            api.get(f"/projects/{pid}/{object_type}/{owner_id}/attachments/{a['id']}").content,
        )
        for a in listed
    }


def test_same_named_files_with_lost_answers_each_arrive_once_byte_for_byte(
    qtest: QTestSandboxHandle, new_embedded_database: Callable[[str], str]
) -> None:
    database_url = new_embedded_database("zq_same_named")
    fill_mart(database_url)
    pid, case_id, log_id = owners(qtest)
    # Every upload is applied and its answer lost: the second file of each owner is looked up while the
    # first, made moments before in this run, bears the same name on the same object.
    qtest.set_faults(lose_next=len(FILES), lost_answer_match="blob-handles")
    summary: Any = asyncio.run(publish(database_url, qtest, pid, case_id, log_id))
    assert not summary.failures, summary.failures
    assert (summary.adopted, summary.created) == (len(FILES), 0)
    assert qtest.set_faults()["lose_next"] == 0, "every upload lost its answer"

    rerun: Any = asyncio.run(publish(database_url, qtest, pid, case_id, log_id))
    assert (rerun.created, rerun.updated, rerun.adopted, rerun.skipped) == (0, 0, 0, len(FILES))

    assert_each_once(database_url, qtest, pid, {"test-cases": case_id, "test-logs": log_id})


def assert_each_once(
    database_url: str, qtest: QTestSandboxHandle, pid: int, owner_ids: dict[str, int]
) -> None:
    """Every source key done with its own qTest file, whose bytes are its own; no other file on the owners."""
    ids = recorded(database_url)
    assert {state for state, _ in ids.values()} == {"done"}
    assert len({qtest_id for _, qtest_id in ids.values()}) == len(FILES), ids
    files = {
        object_type: held(qtest, pid, object_type, owner_id) for object_type, owner_id in owner_ids.items()
    }
    for key, (object_type, _owner_key, _order, content) in FILES.items():
        assert files[object_type][ids[key][1]] == (NAME, content), key
    for object_type, owner_files in files.items():
        # Two files of the same name, each once: nothing lost, nothing uploaded twice.
        assert sorted(content for _, content in owner_files.values()) == sorted(
            c for t, _, _, c in FILES.values() if t == object_type
        ), object_type


def test_a_rerun_after_a_crash_between_same_named_uploads_sends_the_missing_one(
    qtest: QTestSandboxHandle, new_embedded_database: Callable[[str], str]
) -> None:
    """A run died with all four uploads pending, after only the first file of each owner reached qTest:
    the re-run adopts those and uploads the others (a lookup by name would adopt the first file twice, and
    the second would never arrive)."""
    database_url = new_embedded_database("zq_same_named_crash")
    fill_mart(database_url)
    pid, case_id, log_id = owners(qtest)
    owner_ids = {"test-cases": case_id, "test-logs": log_id}
    api = httpx.Client(base_url=qtest.api_url, headers=qtest.headers)
    for key in ("ATT-T1/a", "ATT-E1/a"):
        object_type, _owner_key, _order, content = FILES[key]
        answer = api.post(
            f"/projects/{pid}/{object_type}/{owner_ids[object_type]}/blob-handles",
            content=content,
            headers={"File-Name": NAME, "Content-Type": "image/png"},
        )
        assert answer.status_code == 201, answer.text
    summary: Any = asyncio.run(publish(database_url, qtest, pid, case_id, log_id, pending=tuple(FILES)))
    assert not summary.failures, summary.failures
    assert (summary.adopted, summary.created) == (2, 2)
    assert_each_once(database_url, qtest, pid, owner_ids)
