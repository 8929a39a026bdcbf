"""The transform end to end through Dagster: raw assets extract two projects from the sandbox, the dbt
assets build staging, canonical and the qTest mapping for each; then everything again.

Proves: every dbt test passes as an asset check of the run, and every dbt unit test passes (run here once:
the builds leave them out); a second round gives identical tables; a
project's run never touches another project's rows; every key of every raw payload lands in a canonical
column or is declared dropped with a reason; bad raw objects are kept or reported, never crash the build.

The four runs are the session's shared build (``transformed_database`` in conftest.py), which other
modules copy; this module gets their results and snapshots, and a copy of the database for its own writes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from tests.graph_helpers import TransformedDatabase, materialize_partition
from zephyr_qtest.defs.transform.dbt_models import zephyr_dbt_models
from zephyr_qtest.lib.dbt import (
    DBT_PROJECT_DIR,
    dbt_connection_env,
    dbt_executable,
    manifest_path,
    unit_test_dbt_args,
)
from zephyr_qtest.lib.jira_issues import RAW_ENTITY as JIRA_ISSUES
from zephyr_qtest.lib.zephyr.extract import ENTITIES

pytestmark = pytest.mark.e2e


def _run(database_url: str, project_key: str, assets: list[Any]) -> dg.ExecuteInProcessResult:
    return materialize_partition(assets, project_key, database_url=database_url)


def _error_text(error: Any) -> str:
    """The error and its causes, innermost last (a step failure's message alone names only the op)."""
    parts = []
    while error is not None:
        parts.append(error.message.strip())
        error = error.cause
    return " <- ".join(parts)


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    failed = [
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} {evaluation.description or ''}"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    ]
    failed += [
        f"{event.step_key}: {_error_text(event.step_failure_data.error)}"
        for event in result.all_events
        if event.is_step_failure
    ]
    return failed


@pytest.fixture(scope="module")
def transform_database(transformed_database: TransformedDatabase) -> str:
    """A copy of the session's transformed database, of this module's own (the bad rows go in here)."""
    return transformed_database.copy("zq_transform")


@pytest.fixture(scope="module")
def built(transformed_database: TransformedDatabase) -> dict[str, Any]:
    """Raw + dbt for each project, twice (A, B, A, B), with a snapshot of every mart after each run: the
    session's shared build, which made exactly these runs."""
    projects = transformed_database.projects
    assert len(projects) == 2
    runs: list[dict[str, Any]] = []
    for run in transformed_database.runs:
        runs.append(
            {
                "project": run.project,
                "success": run.result.success,
                "failures": _failures(run.result),
                "checks": run.result.get_asset_check_evaluations(),
                "materializations": run.result.get_asset_materialization_events(),
                "snapshot": run.snapshot,
            }
        )
    assert [run["project"] for run in runs] == [*projects, *projects]
    return {"projects": projects, "runs": runs}


def test_every_run_succeeds_with_every_dbt_test_passing_as_an_asset_check(built: dict[str, Any]) -> None:
    manifest = json.loads(manifest_path().read_text())
    dbt_tests = [node for node in manifest["nodes"].values() if node["resource_type"] == "test"]
    for run in built["runs"]:
        assert run["success"] and run["failures"] == [], (run["project"], run["failures"])
        dbt_checks = [
            evaluation
            for evaluation in run["checks"]
            if evaluation.asset_key.path[0] in ("staging", "canonical", "qtest_mapping")
        ]
        # Every data test attached to one model is a check of that model (the rest are observations).
        attached = [node for node in dbt_tests if node.get("attached_node")]
        assert len(dbt_checks) >= len(attached) > 100, (len(dbt_checks), len(attached))
        assert all(evaluation.passed for evaluation in dbt_checks)


def test_every_dbt_unit_test_passes(transformed_database: TransformedDatabase, tmp_path: Path) -> None:
    """dbt's unit tests, which the builds leave out (static inputs: a project's data cannot change their
    outcome), each run once and pass. On a copy of the built database: dbt reads the tested models' parents
    there."""
    database_url = transformed_database.copy("zq_unit_tests")
    target = tmp_path / "target"
    paths = [
        "--target-path",
        str(target),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    done = subprocess.run(
        [dbt_executable(), *unit_test_dbt_args(transformed_database.projects[0]), *paths],
        env={**os.environ, **dbt_connection_env(database_url), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    declared = set(json.loads(manifest_path().read_text())["unit_tests"])
    results = json.loads((target / "run_results.json").read_text())["results"]
    assert {result["unique_id"] for result in results} == declared and len(declared) > 30
    assert all(result["status"] == "pass" for result in results), [
        (result["unique_id"], result["status"]) for result in results if result["status"] != "pass"
    ]


def test_every_dbt_asset_reports_its_row_count_and_columns(built: dict[str, Any]) -> None:
    run = built["runs"][0]
    by_key = {
        event.materialization.asset_key: event.materialization.metadata for event in run["materializations"]
    }
    for key in (
        dg.AssetKey(["staging", "stg_zephyr__test_cases"]),
        dg.AssetKey(["canonical", "test_case"]),
        dg.AssetKey(["qtest_mapping", "qtest_test_runs"]),
    ):
        metadata = by_key[key]
        assert metadata["dagster/partition_row_count"].value > 0, key
        assert "dagster/column_schema" in metadata, key
    unmapped = by_key[dg.AssetKey(["qtest_mapping", "unmapped"])]
    # The generated custom fields have no row in custom_field_map: they are listed, not lost.
    assert unmapped["unmapped_values"].value > 0 and "custom_field" in unmapped["unmapped"].value


def test_every_project_lands_in_every_main_table(built: dict[str, Any]) -> None:
    final = built["runs"][-1]["snapshot"]
    projects = set(built["projects"])
    for table in ("project", "folder", "test_case", "test_step", "test_cycle", "test_execution",
                  "custom_field", "attachment", "test_execution_step", "test_script"):  # fmt: skip
        assert set(final[("canonical", table)]) == projects, table
    for table in ("qtest_modules", "qtest_test_cases", "qtest_test_steps", "qtest_test_cycles",
                  "qtest_test_runs", "qtest_test_logs", "qtest_test_step_logs", "qtest_attachments"):  # fmt: skip
        assert set(final[("qtest_mapping", table)]) == projects, table


def test_a_project_run_leaves_the_other_project_alone(built: dict[str, Any]) -> None:
    first, second = built["projects"]
    only_first, both, first_again, second_again = (run["snapshot"] for run in built["runs"])
    for table, digests in only_first.items():
        assert second not in digests, f"{table} has {second} rows after building {first} only"
        assert both[table].get(first) == digests.get(first), f"{table}: {second}'s run changed {first}'s rows"
    for table, digests in both.items():
        assert first_again[table].get(second) == digests.get(second), (
            f"{table}: {first}'s re-run changed {second}"
        )
        assert second_again[table].get(first) == first_again[table].get(first), (
            f"{table}: {second} changed {first}"
        )


def test_a_second_round_gives_identical_tables(built: dict[str, Any]) -> None:
    runs = built["runs"]
    assert runs[1]["snapshot"] == runs[3]["snapshot"]


def _payload_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """`a.b`, arrays as `name[]`, a leaf, null or empty container as its own path."""
    if isinstance(value, dict):
        if not value and prefix:
            yield prefix
        for key, item in value.items():
            yield from _payload_paths(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        yield f"{prefix}[]"
        for item in value:
            yield from _payload_paths(item, f"{prefix}[]")
    else:
        yield prefix


def _covered(path: str, declared: list[str]) -> bool:
    """Declared, below a declared path, or the start of one; `*` matches any one key."""
    found = path.split(".")
    for entry in declared:
        pattern = entry.split(".")
        length = min(len(found), len(pattern))
        pairs = zip(pattern[:length], found[:length], strict=True)
        if all(p in ("*", f) or (p == "*[]" and f.endswith("[]")) for p, f in pairs):
            return True
    return False


def test_every_status_has_the_type_it_was_listed_under(
    built: dict[str, Any], transform_database: str
) -> None:
    """The statuses' payloads carry no `statusType` (REAL_SHAPES.md, Zephyr Scale Cloud 1); the type comes
    from the filter each was listed under, so canonical.status.status_type is set for every row."""
    with psycopg.connect(transform_database) as conn:
        by_type = dict(
            conn.execute(
                "select coalesce(status_type, '(null)'), count(*) from canonical.status "
                "where project_key = any(%s) group by 1",
                (list(built["projects"]),),
            ).fetchall()
        )
        in_payload = conn.execute(
            "select count(*) from zephyr_raw.statuses where payload ? 'statusType'"
        ).fetchone()
    assert set(by_type) == {"TEST_CASE", "TEST_PLAN", "TEST_CYCLE", "TEST_EXECUTION"}, by_type
    assert in_payload == (0,)


def test_every_raw_payload_key_is_mapped_or_dropped(built: dict[str, Any], transform_database: str) -> None:
    """Walks every jsonb key the extraction wrote (the generator makes every kind of object the API has)."""
    manifest = json.loads(manifest_path().read_text())
    canonical_columns = {
        node["name"]: set(node["columns"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "canonical"
    }
    problems: list[str] = []
    declared_tables: list[str] = []
    with psycopg.connect(transform_database) as conn:
        for node in manifest["nodes"].values():
            if node["resource_type"] != "model" or not node["name"].startswith("stg_zephyr__"):
                continue
            meta = node["config"]["meta"]
            if "raw_table" not in meta:
                continue  # reads raw tables that another staging model declares (custom fields)
            declared_tables.append(meta["raw_table"])
            mapped, dropped = meta["payload_key_columns"], meta["dropped_payload_keys"]
            for path, target in mapped.items():
                match = re.fullmatch(r"canonical\.(\w+)\.(\w+)", target)
                if not match or match[2] not in canonical_columns.get(match[1], set()):
                    problems.append(f"{node['name']}: {path} -> {target} is not a canonical column")
            found: set[str] = set()
            for (payload,) in conn.execute(f"select payload from {meta['raw_table']}"):
                found.update(_payload_paths(payload))
            problems += [
                f"{meta['raw_table']}: payload key {path!r} is neither mapped nor dropped"
                for path in sorted(found)
                if not _covered(path, [*mapped, *dropped])
            ]
    assert not problems, "\n".join(problems)
    # Every raw table is walked, by exactly one staging model (Jira's answers too: empty here, without Jira).
    assert sorted(declared_tables) == sorted(
        [*(f"zephyr_raw.{entity.name}" for entity in ENTITIES), f"zephyr_raw.{JIRA_ISSUES}"]
    )


# ----------------------------------------------------------------------------------------------- bad input

_BAD_ROWS = """
insert into zephyr_raw.projects values ('BAD', 99001, 'BAD', null, null, '{"id": 99001, "key": "BAD", "enabled": "yes"}', now(), 'bad');
insert into zephyr_raw.statuses values
 ('BAD', 99101, null, null, null, '{"id": 99101, "name": "Pass"}', now(), 'bad', '{"statusType": "TEST_EXECUTION"}'),
 ('BAD', 99102, null, null, null, '{"id": 99102, "index": "z", "archived": 1}', now(), 'bad', '{"statusType": "WEIRD"}'),
 ('BAD', 99103, null, null, null, '{"id": 99103, "name": "Listed without a type"}', now(), 'bad', null);
insert into zephyr_raw.folders values
 ('BAD', 99202, null, null, null, '{"id": 99202, "folderType": "WEIRD", "parentId": "abc"}', now(), 'bad'),
 ('BAD', 99203, null, null, null, '{"id": 99203, "name": "A", "folderType": "TEST_CASE", "parentId": 99204}', now(), 'bad'),
 ('BAD', 99204, null, null, null, '{"id": 99204, "name": "B", "folderType": "TEST_CASE", "parentId": 99203}', now(), 'bad'),
 ('BAD', null, null, null, null, '{"name": "no id", "folderType": "TEST_CASE"}', now(), 'bad');
insert into zephyr_raw.test_cases values
 ('BAD', 99301, 'BAD-T1', null, null, '{"id": 99301, "key": "BAD-T1", "estimatedTime": "abc", "createdOn": "2024-13-45T99:00:00Z",
   "labels": "x", "customFields": "x", "links": null, "folder": {"id": 99203}}', now(), 'bad'),
 ('BAD', 99302, 'BAD-T2', null, null, '{"id": 99302, "key": "BAD-T2", "createdOn": "2024-02-30T10:00:00Z", "estimatedTime": 1.5,
   "customFields": {"a": {"x": 1}, "b": null}, "links": {"issues": [{"type": "WEIRD", "issueId": "q"}], "webLinks": [{"url": null}]},
   "testScript": {"self": "https://x/v2/testcases/BAD-T2/testscript"}}', now(), 'bad'),
 ('BAD', 99303, null, null, null, '{"id": 99303, "name": "no key"}', now(), 'bad');
insert into zephyr_raw.test_steps values
 ('BAD', null, 'BAD-T1#1', 'BAD-T1', 1, '{"inline": "string"}', now(), 'bad'),
 ('BAD', 99401, 'BAD-T1#2', 'BAD-T1', 2, '{"id": 99401, "testCase": {"testCaseKey": "BAD-T1", "parameters": "x"}}', now(), 'bad'),
 ('BAD', 99402, 'BAD-T2#1', 'BAD-T2', 1, '{"id": 99402, "testCase": {"testCaseKey": "BAD-T1", "parameters": [{"type": "ODD"}]}}', now(), 'bad');
insert into zephyr_raw.test_scripts values ('BAD', null, 'BAD-T2', 'BAD-T2', null, '{"type": "markdown", "text": null}', now(), 'bad');
insert into zephyr_raw.test_executions values
 ('BAD', 99501, 'BAD-E1', null, null, '{"id": 99501, "testCase": {"self": "weird"}, "actualEndDate": "yesterday",
   "testCycle": {"id": "x"}, "automated": "yes", "testExecutionStatus": {"id": 99101}, "executionTime": -5}', now(), 'bad'),
 ('BAD', 99502, null, null, null, '{"id": 99502, "testCase": {"self": "https://x/v2/testcases/BAD-T1/versions/abc"},
   "actualEndDate": "2024-01-01T10:00:00+02:00", "testExecutionStatus": {"id": 424242}}', now(), 'bad'),
 ('BAD', null, null, null, null, '{"testCase": {"self": "https://x/v2/testcases/BAD-T2/versions/1"}}', now(), 'bad');
insert into zephyr_raw.test_execution_steps values
 ('BAD', 99601, '99501#1', '99501', 1, '{"id": 99601, "inline": {"status": {"id": "x"}, "testDataRowNumber": "one"}}', now(), 'bad'),
 ('BAD', null, 'abc#1', 'abc', 1, '{}', now(), 'bad');
insert into zephyr_raw.attachments values
 ('BAD', 99701, 'unknown/1/attachments/99701', 'unknown/1', null, '{"id": 99701, "name": "x.txt"}', now(), 'bad',
  'text/plain', 1, '559aead08264d5795d3909718cdd05abd49572e84fe55590eef31a88a08fdffd', '\\x41');
"""


def test_bad_objects_are_kept_or_reported_never_crash(built: dict[str, Any], transform_database: str) -> None:
    """Missing fields, wrong JSON types, impossible dates, unknown enums, parent loops, objects without id:
    the build succeeds (data tests may warn), what can be kept is kept, the rest is listed in unmapped."""
    with psycopg.connect(transform_database) as conn:
        conn.execute(_BAD_ROWS)
    result = _run(transform_database, "BAD", [zephyr_dbt_models])
    assert result.success, _failures(result)
    failed_checks = {
        evaluation.check_name for evaluation in result.get_asset_check_evaluations() if not evaluation.passed
    }
    assert failed_checks, "the bad rows must show as failed (warning) checks"
    assert all(
        evaluation.severity == dg.AssetCheckSeverity.WARN
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    )
    with psycopg.connect(transform_database) as conn:
        unmapped = {
            (what, value)
            for what, value in conn.execute(
                "select what, value from qtest_mapping.unmapped where project_key = 'BAD'"
            )
        }
        cases = conn.execute(
            "select key, created_on, estimated_time_ms from canonical.test_case where project_key = 'BAD' order by key"
        ).fetchall()
        modules = conn.execute(
            "select count(*) from qtest_mapping.qtest_modules where project_key = 'BAD' and mapping_issue is not null"
        ).fetchone()
        statuses = conn.execute(
            "select status_id, status_type from canonical.status where project_key = 'BAD' order by 1"
        ).fetchall()
    assert statuses == [(99101, "TEST_EXECUTION"), (99102, None), (99103, None)]
    # A status of no known type warns (canonical.status.status_type not_null, severity warn).
    assert any("status_type" in name and "not_null" in name for name in failed_checks), failed_checks
    assert cases == [("BAD-T1", None, None), ("BAD-T2", None, None)]
    assert modules == (2,)  # the two folders of the parent loop, placed at the root
    assert {
        ("not_in_canonical", "folders"),
        ("not_in_canonical", "test cases"),
        ("not_in_canonical", "test executions"),
        ("not_in_canonical", "attachments"),
        ("unknown_value", "folder.folderType = WEIRD"),
        ("unknown_value", "status.statusType = WEIRD"),
        ("unknown_value", "testscript.type = markdown"),
        ("execution_status", "status id 424242"),
        ("test_run_without_test_case", "? (executions BAD-E1)"),
    } <= unmapped


def test_a_mart_built_by_an_earlier_version_gains_the_new_column_on_the_next_run(
    transformed_database: TransformedDatabase,
) -> None:
    """A staging database from an earlier version, whose mart lacks a column added since, is upgraded in
    place by the next run (dbt appends the column: on_schema_change append_new_columns) instead of every
    run failing until the table is dropped by hand; the other project's rows stay."""
    url = transformed_database.copy("zq_upgrade")
    project, other = transformed_database.projects
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter table qtest_mapping.qtest_test_runs drop column skip_reason")
        (others,) = conn.execute(
            "select count(*) from qtest_mapping.qtest_test_runs where project_key = %s", (other,)
        ).fetchone()

    result = materialize_partition(
        [zephyr_dbt_models], project, database_url=url, selection=["qtest_mapping/qtest_test_runs"]
    )

    assert result.success, _failures(result)
    with psycopg.connect(url) as conn:
        counts = dict(
            conn.execute(
                "select project_key, count(*) from qtest_mapping.qtest_test_runs group by 1"
            ).fetchall()
        )
        columns = [
            name
            for (name,) in conn.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'qtest_mapping' and table_name = 'qtest_test_runs'"
            )
        ]
    assert "skip_reason" in columns
    assert counts[other] == others
    assert counts[project] > 0
