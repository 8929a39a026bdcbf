"""Inline images of every rich text, through Dagster, against both sandboxes.

A small tenant of its own (generated, then given pictures: CDN addresses with either quote, and data: URIs)
is extracted, built and published four times: without ``ZEPHYR_CDN_TOKEN`` (each CDN picture is one ledger
line naming the object, the field, the address and the setting; the data: pictures arrive), with a wrong
token (the same lines, the CDN's 403 named), with the sandbox's session token (every picture qTest can hold
is an attachment of its object: a case's, its steps' and its script's of the qTest case, a plan's of its
release, an execution's comment's and its step results' of its test log, bulk-made logs included; the text
points at it and its bytes are the CDN's), and again (nothing uploaded or sent twice). A cycle's description
and an unrun execution's comment stay lines whose detail says qTest cannot hold them. The token never shows
in the run's logs, the database or the reports.
"""

from __future__ import annotations

import copy
import html
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from tests.graph_helpers import materialize_partition
from tests.integration.test_publish import ALL_ASSETS, PUBLISH_ASSETS, published, qtest_project_id
from tests.proof_helpers import ledger_of
from zephyr_qtest.lib.inline_images import CDN_TOKEN_SETTING, image_sources, is_data_uri
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.proof.ledger import Ledger
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.generator.words import DATA_IMAGE
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

pytestmark = pytest.mark.e2e

CDN = "https://cloudfront.tm4j.smartbear.com/tenant/0a1b2c3d/project/10001/"
PICTURE_A = f'<img src="{CDN}embedded-aaaa1111-1566319668503-login.png" width="40">'
PICTURE_B = f"<IMG alt='b' SRC='{CDN}embedded-bbbb2222-1566319668504-cart.png'>"
WRONG = "qz-wrong-9d41c7aa53e0b2f6"


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[ZephyrSandboxHandle, str, list[str]]]:
    """A tiny generated tenant whose first project's first two cases (and a step), a script, a plan, a
    cycle, some executions' comments and step results hold pictures."""
    doc = copy.deepcopy(generate(11, "tiny"))
    project = sorted(p["key"] for p in doc["projects"])[0]
    cases = sorted(
        (case for case in doc["testcases"] if case["key"].startswith(f"{project}-")),
        key=lambda case: int(case["key"].rsplit("-T", 1)[1]),
    )[:2]
    cases[0]["objective"] = f"<p>Sign in &amp; look</p>{PICTURE_A} then {PICTURE_B}"
    cases[0]["precondition"] = f"Loaded {DATA_IMAGE}"
    cases[1]["objective"] = f"Same picture again {PICTURE_A}"
    steps = doc["teststeps"].setdefault(cases[1]["key"], [])
    steps.insert(0, {"id": 990001, "inline": {"description": f"Open {PICTURE_B}", "testData": "",
                                                "expectedResult": "Shown", "customFields": {}, "reflectRef": None}})  # fmt: skip
    executions = {str(e["id"]): e for e in doc["testexecutions"]}
    manual = []
    for execution_id, results in doc["testexecution_steps"].items():
        execution = executions[execution_id]
        if not str(execution.get("key", "")).startswith(f"{project}-"):
            continue
        if execution.get("automated"):
            # Automated executions' results (those of automation runs go through the bulk endpoint).
            for result in results:
                result["inline"]["actualResult"] = (
                    f"Auto {PICTURE_A}" if result is results[0] else "As expected"
                )
        elif results and execution.get("actualEndDate"):
            manual.append((execution, results))
    # Two manual executions' first step results hold pictures: one from the CDN, the same one twice on
    # another (one upload), and a data: URI; the first one's comment holds a CDN and a data: picture.
    manual[0][1][0]["inline"]["actualResult"] = f"Broken {PICTURE_A} and {DATA_IMAGE}"
    manual[1][1][0]["inline"]["actualResult"] = f"Again {PICTURE_B}<br>{PICTURE_B}"
    manual[0][0]["comment"] = f"Looked {PICTURE_B} and {DATA_IMAGE}"
    # An execution not run yet: its comment is its run's, and qTest's runs take no attachments.
    unrun = next(
        e for e in doc["testexecutions"] if e["key"].startswith(f"{project}-") and not e["actualEndDate"]
    )
    unrun["comment"] = f"Later {PICTURE_A}"
    # A plan (a release), a script (a step of its case) and a cycle (no attachments in qTest).
    plan = next(p for p in doc["testplans"] if p["key"].startswith(f"{project}-"))
    plan["objective"] = f"Plan {PICTURE_A} {DATA_IMAGE}"
    script_key = sorted(key for key in doc["testscripts"] if key.startswith(f"{project}-"))[0]
    doc["testscripts"][script_key]["text"] = f"Given {PICTURE_B}\nThen {DATA_IMAGE}"
    cycle = next(c for c in doc["testcycles"] if c["key"].startswith(f"{project}-"))
    cycle["description"] = f"Cycle {PICTURE_B}"
    with start_in_thread(fixture=doc) as zephyr:
        yield zephyr, project, [case["key"] for case in cases]


# The lines of pictures qTest cannot hold: a cycle's description, an unrun execution's comment.
CANNOT = "qTest cannot hold it"


def image_lines(ledger: Ledger) -> list[Any]:
    return [line for line in ledger.lines if line.field.endswith("(inline image)")]


def cdn_pictures(database_url: str, project: str) -> Counter[tuple[str, str]]:
    """(object key, field) -> its distinct CDN pictures, counted from the raw payloads (keys as the ledger
    names them)."""
    found: Counter[tuple[str, str]] = Counter()

    def count(key: str, field: str, text: Any) -> None:
        found[(key, f"{field} (inline image)")] += len({s for s in image_sources(text) if not is_data_uri(s)})

    with connect(database_url) as conn:
        for table, fields in (
            ("test_cases", ("objective", "precondition")),
            ("test_cycles", ("description",)),
            ("test_plans", ("objective",)),
            ("test_executions", ("comment",)),
        ):
            for key, payload in conn.execute(
                f"select key, payload from zephyr_raw.{table} where project_key = %s", (project,)
            ):
                for field in fields:
                    count(key, field, payload.get(field))
        for parent, position, payload in conn.execute(
            "select parent_key, position, payload from zephyr_raw.test_steps where project_key = %s",
            (project,),
        ):
            for field in ("description", "testData", "expectedResult"):
                count(f"{parent}#{position}", f"inline.{field}", (payload.get("inline") or {}).get(field))
        for parent, payload in conn.execute(
            "select parent_key, payload from zephyr_raw.test_scripts where project_key = %s", (project,)
        ):
            count(f"{parent}#script", "text", payload.get("text"))
        for execution, position, payload in conn.execute(
            "select e.key, s.position, s.payload from zephyr_raw.test_execution_steps as s join "
            "zephyr_raw.test_executions as e on e.id::text = s.parent_key and e.project_key = s.project_key "
            "where s.project_key = %s",
            (project,),
        ):
            count(
                f"{execution}#{position}",
                "inline.actualResult",
                (payload.get("inline") or {}).get("actualResult"),
            )
    return +found


def qtest_id(database_url: str, project: str, object_type: str, key: str) -> int:
    with connect(database_url) as conn:
        row = conn.execute(
            "select qtest_id from migration.id_map where project_key = %s and object_type = %s "
            "and source_key = %s and state = 'done'",
            (project, object_type, key),
        ).fetchone()
    assert row, key
    return int(row[0])


def log_id(database_url: str, project: str, key: str) -> tuple[int, int]:
    """The qTest test log of an execution and its run."""
    with connect(database_url) as conn:
        row = conn.execute(
            "select qtest_id, detail->>'test_run_id' from migration.id_map where project_key = %s and "
            "object_type = 'test_log' and source_key = %s and state = 'done'",
            (project, key),
        ).fetchone()
    assert row, key
    return int(row[0]), int(row[1])


def get(qtest: QTestSandboxHandle, path: str) -> httpx.Response:
    response = httpx.get(
        f"{qtest.base_url}/api/v3/{path}", headers={"Authorization": f"Bearer {qtest.token}"}, timeout=30
    )
    response.raise_for_status()
    return response


def case_id(database_url: str, project: str, key: str) -> int:
    return qtest_id(database_url, project, "test_case", key)


def automated_keys(database_url: str, project: str) -> set[str]:
    """The automated executions that ran, with step results."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "select e.key from zephyr_raw.test_executions as e where e.project_key = %s and "
            "(e.payload->>'automated')::boolean and e.payload->>'actualEndDate' is not null and exists ("
            "select from zephyr_raw.test_execution_steps as s where s.project_key = e.project_key and "
            "s.parent_key = e.id::text)",
            (project,),
        ).fetchall()
    return {str(key) for (key,) in rows}


def script_case(database_url: str, project: str) -> str:
    """The case whose script holds a picture."""
    with connect(database_url) as conn:
        row = conn.execute(
            "select parent_key from zephyr_raw.test_scripts where project_key = %s and payload->>'text' like "
            "'%%<img%%'",
            (project,),
        ).fetchone()
    assert row
    return str(row[0])


def pointing(qtest: QTestSandboxHandle, pid: int, owner: str, texts: list[Any]) -> bool:
    """Whether the texts hold pictures, none of them at its old address, all of them attachments of `owner`
    (``test-logs/12``). A log's note escapes the lines of its details block (a step result's picture there)."""
    sources = [source for text in texts for source in image_sources(html.unescape(text or ""))]
    on_owner = {a["web_url"] for a in get(qtest, f"projects/{pid}/{owner}/attachments").json()}
    return (
        bool(sources)
        and not any("/cdn/" in s or is_data_uri(s) for s in sources)
        and set(sources) <= on_owner
    )


def token_in_database(database_url: str, token: str) -> list[str]:
    """The tables of the staging database any of whose rows holds `token` in its text."""
    holding = []
    with connect(database_url) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in "
            "('migration', 'zephyr_raw', 'staging', 'canonical', 'qtest_mapping') and table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table in tables:
            (count,) = conn.execute(
                f'select count(*) from "{schema}"."{table}" as t where t::text like %s', (f"%{token}%",)
            ).fetchone()
            if count:
                holding.append(f"{schema}.{table}")
    return holding


def test_pictures_arrive_with_the_token_and_are_named_without_it(
    tenant: tuple[ZephyrSandboxHandle, str, list[str]],
    new_embedded_database: Any,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    zephyr, project, (first, second) = tenant
    token = zephyr.sandbox.cdn_token
    reports = tmp_path_factory.mktemp("inline_images_reports")
    monkeypatch.setenv("ZEPHYR_QTEST_REPORTS", str(reports))
    caplog.set_level(logging.DEBUG)
    database_url = new_embedded_database("zq_inline_images")
    instance = dg.DagsterInstance.ephemeral()
    with start_qtest_in_thread(tmp_path_factory.mktemp("qtest_inline_images"), seed=1) as qtest:
        # 1. No token: every CDN picture is a line (naming the setting, or that qTest cannot hold it); the
        # data: ones arrive.
        run = materialize_partition(
            ALL_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, instance=instance
        )
        assert run.success
        # Some logs went through qTest's bulk endpoint (their pictures are carried as the others').
        assert published(run)["test_logs"]["created_in_batches"] > 0
        expected = cdn_pictures(database_url, project)
        assert (
            expected[(first, "objective (inline image)")] == 2
            and expected[(second, "objective (inline image)")]
        )
        fields = {field for (_, field) in expected}
        assert {"text (inline image)", "objective (inline image)", "comment (inline image)"} <= fields
        pictured_results = [key for (key, field) in expected if field == "inline.actualResult (inline image)"]
        assert len(pictured_results) >= 2, expected
        lines = image_lines(ledger_of(database_url, qtest, project))
        assert Counter((line.object_key, line.field) for line in lines) == expected
        cannot = [line for line in lines if line.detail.startswith(CANNOT)]
        assert {(line.object_type, line.field) for line in cannot} == {
            ("test cycle", "description (inline image)"),
            ("test execution", "comment (inline image)"),
        }, cannot
        assert all(
            CDN_TOKEN_SETTING in line.remedy and "/cdn/tenant/" in line.value
            for line in lines
            if line not in cannot
        )
        assert not any(line.field.startswith("precondition") and line.object_key == first for line in lines)
        pid = qtest_project_id(database_url, project)
        held = get(qtest, f"projects/{pid}/test-cases/{case_id(database_url, project, first)}").json()
        assert "data:image" not in held["precondition"] and "/attachments/" in held["precondition"]
        # (a data: picture of a plan, a script, a comment or a step result arrived too: lines name only CDN
        # pictures)
        assert not any(is_data_uri(line.value) or line.value.startswith("data:") for line in lines)

        # 2. A wrong token: the same lines, naming the CDN's refusal and the setting.
        run = materialize_partition(
            PUBLISH_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, instance=instance,
            qtest_options={"cdn_token": WRONG},
        )  # fmt: skip
        assert run.success
        lines = image_lines(ledger_of(database_url, qtest, project, cdn_token=WRONG))
        assert Counter((line.object_key, line.field) for line in lines) == expected
        assert all(
            "403" in line.detail and CDN_TOKEN_SETTING in line.remedy
            for line in lines
            if not line.detail.startswith(CANNOT)
        ), lines

        # 3. The session token: every picture qTest can hold is an attachment of its object, the text
        # points at it; those of the cycle and of the unrun execution stay the lines qTest cannot hold.
        run = materialize_partition(
            PUBLISH_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, instance=instance,
            qtest_options={"cdn_token": token},
        )  # fmt: skip
        assert run.success
        lines = image_lines(ledger_of(database_url, qtest, project, cdn_token=token))
        assert sorted((line.object_type, line.field) for line in lines) == [
            ("test cycle", "description (inline image)"),
            ("test execution", "comment (inline image)"),
        ] and all(line.detail.startswith(CANNOT) and "blob-handles" in line.detail for line in lines), lines
        attachments_before = qtest.counts(pid)["attachments"]
        for key in (first, second, script_case(database_url, project)):
            qid = case_id(database_url, project, key)
            held = get(qtest, f"projects/{pid}/test-cases/{qid}?expand=teststep").json()
            texts = [held["description"], held["precondition"]]
            texts += [step.get("description") for step in held.get("test_steps") or []]
            assert pointing(qtest, pid, f"test-cases/{qid}", texts), (key, texts)
        # A plan's pictures are attachments of its release.
        plan_key = next(
            key for (key, field) in expected if field == "objective (inline image)" and "-P" in key
        )
        release = qtest_id(database_url, project, "release", plan_key)
        held = get(qtest, f"projects/{pid}/releases/{release}").json()
        assert pointing(qtest, pid, f"releases/{release}", [held["description"]]), held
        # An execution's comment's and its step results' pictures are attachments of its test log, which its
        # note and step logs point at; bulk-made logs (on automation runs) as much as the others.
        commented = {key for (key, field) in expected if field == "comment (inline image)"}
        pictured_logs = {key.rsplit("#", 1)[0] for key in pictured_results} | commented
        pictured_logs -= {line.object_key for line in lines}  # not run yet: no log
        for key in pictured_logs:
            qid, run_id = log_id(database_url, project, key)
            held = get(qtest, f"projects/{pid}/test-runs/{run_id}/test-logs/{qid}").json()
            texts = [held.get("note")] + [s.get("actual_result") for s in held.get("test_step_logs") or []]
            assert pointing(qtest, pid, f"test-logs/{qid}", texts), (key, texts)
        # Every automated execution's first result holds a picture: those made in bulk (step 1) too.
        assert automated_keys(database_url, project) <= pictured_logs and len(pictured_logs) > len(
            automated_keys(database_url, project)
        )
        # The bytes are the CDN's (read here with the token, apart from the loader and the proof).
        qid = case_id(database_url, project, first)
        held = get(qtest, f"projects/{pid}/test-cases/{qid}").json()
        address = image_sources(held["description"])[0]
        cdn_url = (
            f"{zephyr.root_url}/cdn/tenant/0a1b2c3d/project/10001/embedded-aaaa1111-1566319668503-login.png"
        )
        original = httpx.get(cdn_url, headers={"JWT": token}, timeout=30).content
        assert get(qtest, address.split("/api/v3/", 1)[1]).content == original
        assert httpx.get(cdn_url, timeout=30).status_code == 401
        assert (
            httpx.get(cdn_url, headers={"Authorization": f"Bearer {zephyr.token}"}, timeout=30).status_code
            == 403
        )

        # 4. Again: nothing uploaded twice, no case, release or log sent again.
        run = materialize_partition(
            PUBLISH_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, instance=instance,
            qtest_options={"cdn_token": token},
        )  # fmt: skip
        assert run.success
        for kind in ("test_cases", "test_cycles", "test_logs"):
            sent = published(run)[kind]
            assert sent["created"] + sent["updated"] + sent["adopted"] == 0, (kind, sent)
        assert qtest.counts(pid)["attachments"] == attachments_before

    # The token never shows: not in the runs' events, the logs, the database or the reports.
    for record in instance.get_run_records():
        for event in instance.all_logs(record.dagster_run.run_id):
            assert token not in str(event) and WRONG not in str(event)
    assert token not in caplog.text and WRONG not in caplog.text
    assert token_in_database(database_url, token) == [] and token_in_database(database_url, WRONG) == []
    written = [path for path in Path(reports).rglob("*") if path.is_file()]
    assert written and not any(token in path.read_text(errors="replace") for path in written)
