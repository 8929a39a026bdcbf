"""The raw layer end to end: Dagster materializes every raw asset from a real sandbox server into a real
PostgreSQL, for two projects; a re-run changes nothing; a faulty, rate-limited API gives the same rows;
no token reaches a log."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import pytest

from tests.graph_helpers import materialize_partition
from zephyr_qtest.defs.ingest.assets import extraction_tags, raw_assets
from zephyr_qtest.defs.resources import ZephyrResource
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.zephyr.extract import ENTITIES
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

SEED = 11
# entity → the sandbox's own count name (the ground truth is the server's data, not its answers)
SANDBOX_COUNTS = {
    "folders": "folders",
    "statuses": "statuses",
    "priorities": "priorities",
    "environments": "environments",
    "test_cases": "testcases",
    "test_cycles": "testcycles",
    "test_plans": "testplans",
    "test_executions": "testexecutions",
    "test_steps": "teststeps",
    "test_scripts": "testscripts",
    "test_case_versions": "testcase_versions",
    "test_execution_steps": "testexecution_steps",
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ZephyrSandboxHandle]:
    with start_in_thread(seed=SEED, size="tiny") as handle:
        yield handle


def materialize(
    database_url: str,
    sandbox: ZephyrSandboxHandle,
    project_key: str,
    *,
    token: str | None = None,
    max_retries: int = 8,
    full: bool = True,
    **kwargs: Any,
) -> dg.ExecuteInProcessResult:
    """The raw assets for one project. `full`: read everything, as the first run does (the tests of these
    modules are about what a read meets); a run after a complete one is otherwise a delta, which reads only
    what changed (tests/integration/test_delta_extraction.py)."""
    zephyr = ZephyrResource(
        base_url=sandbox.base_url, api_token=token or sandbox.token, max_retries=max_retries
    )
    if full:
        kwargs["tags"] = {**kwargs.get("tags", {}), **extraction_tags(True)}
    return materialize_partition(raw_assets, project_key, database_url=database_url, zephyr=zephyr, **kwargs)


def snapshot(
    database_url: str, project_key: str | None = None, *, served_from: str | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """Every raw row without the columns that say when and by which run it was extracted.

    ``served_from``: the sandbox's base URL, whose origin is replaced in payloads (its ``self`` links and
    its pictures' addresses name its own port).
    """
    tables: dict[str, list[tuple[Any, ...]]] = {}
    where = "where project_key = %s" if project_key else ""
    with connect(database_url) as conn:
        for entity in ENTITIES:
            extra = ", sha256, size_bytes" if entity.name == "attachments" else ""
            tables[entity.name] = conn.execute(
                f"select project_key, id, key, parent_key, position, payload::text, listing_filter::text{extra} "
                f"from zephyr_raw.{entity.name} {where} order by project_key, key, id",
                (project_key,) if project_key else (),
            ).fetchall()
    if served_from:
        # The whole origin: the sandbox's CDN of inline images is on its host too, outside the API's base.
        parts = urlsplit(served_from)
        origin = f"{parts.scheme}://{parts.netloc}"
        tables = {
            name: [(*row[:5], row[5].replace(origin, "<zephyr>"), *row[6:]) for row in rows]
            for name, rows in tables.items()
        }
    return tables


def projects_of(sandbox: ZephyrSandboxHandle) -> list[str]:
    return sorted(sandbox.info()["counts"]["per_project"])


def materialized_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """asset name → the metadata its materialization reported."""
    return {
        event.materialization.asset_key.path[-1]: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} {evaluation.description}"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    ]


def test_two_projects_are_extracted_completely_and_a_rerun_changes_nothing(
    clean_database: str, sandbox: ZephyrSandboxHandle
) -> None:
    projects = projects_of(sandbox)
    assert len(projects) == 2
    for project_key in projects:
        result = materialize(clean_database, sandbox, project_key)
        assert result.success, project_key
        assert _failed_checks(result) == []
        assert len(result.get_asset_check_evaluations()) >= 2 * len(ENTITIES)

    counts = sandbox.info()["counts"]["per_project"]
    with connect(clean_database) as conn:
        for project_key in projects:
            for entity, sandbox_name in SANDBOX_COUNTS.items():
                (rows,) = conn.execute(
                    f"select count(*) from zephyr_raw.{entity} where project_key = %s", (project_key,)
                ).fetchone()
                assert rows == counts[project_key][sandbox_name], (project_key, entity)
        (attachments,) = conn.execute("select count(*) from zephyr_raw.attachments").fetchone()
        statuses = conn.execute(
            "select id, listing_filter ->> 'statusType', payload ? 'statusType' from zephyr_raw.statuses"
        ).fetchall()
    assert attachments == sandbox.info()["counts"]["attachments"]
    # Each status keeps the statusType it was listed under beside the API's payload, which has none
    # (REAL_SHAPES.md, Zephyr Scale Cloud 1).
    served_types = generate(SEED, "tiny")["status_types"]
    assert sorted((ident, status_type) for ident, status_type, _ in statuses) == sorted(
        (ident, status_type) for status_type, ids in served_types.items() for ident in ids
    )
    assert not any(in_payload for *_, in_payload in statuses)

    first, second = projects
    before = snapshot(clean_database)
    with connect(clean_database) as conn:
        untouched_before = conn.execute(
            "select min(extracted_at), max(extracted_at) from zephyr_raw.test_cases where project_key = %s",
            (second,),
        ).fetchone()
    assert materialize(clean_database, sandbox, first).success
    assert snapshot(clean_database) == before
    with connect(clean_database) as conn:
        untouched_after = conn.execute(
            "select min(extracted_at), max(extracted_at) from zephyr_raw.test_cases where project_key = %s",
            (second,),
        ).fetchone()
    assert untouched_after == untouched_before


@pytest.mark.e2e
def test_a_throttled_faulty_api_gives_exactly_the_rows_of_a_clean_run(
    embedded_databases: Callable[[], str],
) -> None:
    clean_database, fresh_database = embedded_databases(), embedded_databases()
    with start_in_thread(seed=SEED, size="tiny") as clean, start_in_thread(seed=SEED, size="tiny") as faulty:
        project_key = projects_of(clean)[0]
        assert materialize(clean_database, clean, project_key).success
        faulty.set_faults(rate_limited_rate=0.20, fault_rate=0.05, retry_after_mode="zero", seed=3)
        result = materialize(fresh_database, faulty, project_key)
        assert result.success
        stats = faulty.stats()
    assert stats["rate_limited"] > 0.1 * stats["requests"]
    assert stats["injected_faults"] > 0.02 * stats["requests"]
    assert snapshot(fresh_database, project_key, served_from=faulty.base_url) == snapshot(
        clean_database, project_key, served_from=clean.base_url
    )
    assert sum(metadata["retries"].value for metadata in materialized_metadata(result).values()) > 0


def test_no_token_reaches_logs_metadata_or_the_database(
    clean_database: str,
    sandbox: ZephyrSandboxHandle,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    project_key = projects_of(sandbox)[0]
    wrong_token = sandbox.token[:-6] + "AAAAAA"
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "zephyr_qtest", "dagster"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    instance = dg.DagsterInstance.ephemeral()
    good = materialize(clean_database, sandbox, project_key, instance=instance)
    bad = materialize(clean_database, sandbox, project_key, token=wrong_token, instance=instance)
    assert good.success and not bad.success

    texts = [caplog.text, *capfd.readouterr()]
    for record in instance.all_logs(good.run_id) + instance.all_logs(bad.run_id):
        texts.append(record.user_message or "")
        if record.dagster_event is not None:
            texts.append(repr(record.dagster_event))
    for token in (sandbox.token, wrong_token):
        for secret in (token, token.split(".")[-1]):
            assert not any(secret in text for text in texts), "a token reached the logs or events"
    failure_text = "\n".join(texts)
    assert "401" in failure_text  # the bad run did report why it failed
    with connect(clean_database) as conn:
        for entity in ENTITIES:
            (hits,) = conn.execute(
                f"select count(*) from zephyr_raw.{entity.name} where payload::text like %s",
                (f"%{sandbox.token[-20:]}%",),
            ).fetchone()
            assert hits == 0
        (issue_hits,) = conn.execute(
            "select count(*) from zephyr_raw.extraction_issues where reason like %s",
            (f"%{wrong_token[-20:]}%",),
        ).fetchone()
        assert issue_hits == 0
