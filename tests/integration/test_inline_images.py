"""Inline images of test cases, their steps and step results, through Dagster, against both sandboxes.

A small tenant of its own (generated, then given pictures: CDN addresses with either quote, and a data: URI)
is extracted, built and published four times: without ``ZEPHYR_CDN_TOKEN`` (each CDN picture of a case, step
or step result is one ledger line naming the object, the field, the address and the setting; the data:
pictures arrive), with a wrong token (the same lines, the CDN's 403 named), with the sandbox's session token
(every picture is an attachment of its qTest case or test log, the text points at it, its bytes are the
CDN's, and no line of a case, step or step result is left), and again (nothing uploaded or sent twice). The
token never shows in the run's logs, the database or the reports.

Automated executions lose their step results' pictures here: those the bulk endpoint takes keep theirs as
lines (``manual_test_log.py``), which this tenant would make depend on the generator's draw.
"""

from __future__ import annotations

import copy
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
CASE_WORDS = ("test case", "test step", "execution step")


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[ZephyrSandboxHandle, str, list[str]]]:
    """A tiny generated tenant whose first project's first two cases (and a step) hold pictures."""
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
            for result in results:
                result["inline"]["actualResult"] = "As expected"
        elif results:
            manual.append(results)
    # Two manual executions' first step results hold pictures: one from the CDN, the same one twice on
    # another (one upload), and a data: URI.
    manual[0][0]["inline"]["actualResult"] = f"Broken {PICTURE_A} and {DATA_IMAGE}"
    manual[1][0]["inline"]["actualResult"] = f"Again {PICTURE_B}<br>{PICTURE_B}"
    with start_in_thread(fixture=doc) as zephyr:
        yield zephyr, project, [case["key"] for case in cases]


def image_lines(ledger: Ledger) -> list[Any]:
    return [
        line
        for line in ledger.lines
        if line.field.endswith("(inline image)") and line.object_type in CASE_WORDS
    ]


def cdn_pictures(database_url: str, project: str) -> Counter[tuple[str, str]]:
    """(object key, field) -> its distinct CDN pictures, counted from the raw payloads."""
    found: Counter[tuple[str, str]] = Counter()
    with connect(database_url) as conn:
        for key, payload in conn.execute(
            "select key, payload from zephyr_raw.test_cases where project_key = %s", (project,)
        ):
            for field in ("objective", "precondition"):
                sources = {s for s in image_sources(payload.get(field)) if not is_data_uri(s)}
                found[(key, f"{field} (inline image)")] += len(sources)
        for parent, position, payload in conn.execute(
            "select parent_key, position, payload from zephyr_raw.test_steps where project_key = %s",
            (project,),
        ):
            for field in ("description", "testData", "expectedResult"):
                text = (payload.get("inline") or {}).get(field)
                sources = {s for s in image_sources(text) if not is_data_uri(s)}
                found[(f"{parent}#{position}", f"inline.{field} (inline image)")] += len(sources)
        for execution, position, payload in conn.execute(
            "select e.key, s.position, s.payload from zephyr_raw.test_execution_steps as s join "
            "zephyr_raw.test_executions as e on e.id::text = s.parent_key and e.project_key = s.project_key "
            "where s.project_key = %s",
            (project,),
        ):
            text = (payload.get("inline") or {}).get("actualResult")
            sources = {s for s in image_sources(text) if not is_data_uri(s)}
            found[(f"{execution}#{position}", "inline.actualResult (inline image)")] += len(sources)
    return +found


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
    with connect(database_url) as conn:
        row = conn.execute(
            "select qtest_id from migration.id_map where project_key = %s and object_type = 'test_case' "
            "and source_key = %s and state = 'done'",
            (project, key),
        ).fetchone()
    assert row, key
    return int(row[0])


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
        # 1. No token: every CDN picture of a case or step is a line naming the setting; data: ones arrive.
        run = materialize_partition(
            ALL_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, instance=instance
        )
        assert run.success
        expected = cdn_pictures(database_url, project)
        assert (
            expected[(first, "objective (inline image)")] == 2
            and expected[(second, "objective (inline image)")]
        )
        pictured_results = [key for (key, field) in expected if field == "inline.actualResult (inline image)"]
        assert len(pictured_results) >= 2, expected
        lines = image_lines(ledger_of(database_url, qtest, project))
        assert Counter((line.object_key, line.field) for line in lines) == expected
        assert all(CDN_TOKEN_SETTING in line.remedy and "/cdn/tenant/" in line.value for line in lines), lines
        assert not any(line.field.startswith("precondition") and line.object_key == first for line in lines)
        pid = qtest_project_id(database_url, project)
        held = get(qtest, f"projects/{pid}/test-cases/{case_id(database_url, project, first)}").json()
        assert "data:image" not in held["precondition"] and "/attachments/" in held["precondition"]
        # (a step result's data: picture arrived too: no line names one, and lines name only CDN pictures)
        assert not any(is_data_uri(line.value) or line.value.startswith("data:") for line in lines)

        # 2. A wrong token: the same lines, naming the CDN's refusal and the setting.
        run = materialize_partition(
            PUBLISH_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, instance=instance,
            qtest_options={"cdn_token": WRONG},
        )  # fmt: skip
        assert run.success
        lines = image_lines(ledger_of(database_url, qtest, project, cdn_token=WRONG))
        assert Counter((line.object_key, line.field) for line in lines) == expected
        assert all("403" in line.detail and CDN_TOKEN_SETTING in line.remedy for line in lines), lines

        # 3. The session token: every picture is an attachment of its case, the text points at it.
        run = materialize_partition(
            PUBLISH_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, instance=instance,
            qtest_options={"cdn_token": token},
        )  # fmt: skip
        assert run.success
        assert image_lines(ledger_of(database_url, qtest, project, cdn_token=token)) == []
        attachments_before = qtest.counts(pid)["attachments"]
        for key in (first, second):
            qid = case_id(database_url, project, key)
            held = get(qtest, f"projects/{pid}/test-cases/{qid}?expand=teststep").json()
            texts = [held["description"], held["precondition"]]
            texts += [step.get("description") for step in held.get("test_steps") or []]
            sources = [source for text in texts for source in image_sources(text)]
            assert sources and not any("/cdn/" in s or is_data_uri(s) for s in sources), sources
            on_case = {
                a["web_url"]: a for a in get(qtest, f"projects/{pid}/test-cases/{qid}/attachments").json()
            }
            assert set(sources) <= set(on_case), (sources, list(on_case))
        # A step result's pictures are attachments of its test log, which its step log points at.
        logs_pointing = 0
        for key in {key.rsplit("#", 1)[0] for key in pictured_results}:
            qid, run_id = log_id(database_url, project, key)
            held = get(qtest, f"projects/{pid}/test-runs/{run_id}/test-logs/{qid}").json()
            texts = [held.get("note")] + [s.get("actual_result") for s in held.get("test_step_logs") or []]
            sources = [source for text in texts for source in image_sources(text)]
            on_log = {a["web_url"] for a in get(qtest, f"projects/{pid}/test-logs/{qid}/attachments").json()}
            assert not any("/cdn/" in s or is_data_uri(s) for s in sources), sources
            logs_pointing += bool(sources) and set(sources) <= on_log
        assert logs_pointing >= 2
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

        # 4. Again: nothing uploaded twice, no case sent again.
        run = materialize_partition(
            PUBLISH_ASSETS, project, database_url=database_url, zephyr=zephyr, qtest=qtest, instance=instance,
            qtest_options={"cdn_token": token},
        )  # fmt: skip
        assert run.success
        for kind in ("test_cases", "test_logs"):
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
