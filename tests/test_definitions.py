"""The definitions load, validate with Dagster's own CLI, and have the shape the design promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import pytest

from zephyr_qtest.definitions import defs
from zephyr_qtest.defs.tenant import (
    AFTER_RUN_TAG,
    TENANT_BACKFILL_TAG,
    THEN_PUBLISH,
    THEN_TAG,
    publish_after_transform,
    wait_for_transform,
)
from zephyr_qtest.lib.zephyr.extract import ENTITIES

REPO = Path(__file__).resolve().parent.parent


def test_definitions_validate_with_the_dagster_cli() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_every_zephyr_entity_has_a_partitioned_raw_asset_with_a_description() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    raw_keys = {key for key in graph.get_all_asset_keys() if key.path[0] == "zephyr_raw"}
    # Beside Zephyr's entities, Jira's answers for the issues they link to (asked of Jira, its own pool).
    jira_issues = dg.AssetKey(["zephyr_raw", "jira_issues"])
    assert raw_keys == {dg.AssetKey(["zephyr_raw", entity.name]) for entity in ENTITIES} | {jira_issues}
    for key in raw_keys:
        node = graph.get(key)
        assert node.partitions_def is not None and node.partitions_def.name == "zephyr_project", key
        assert node.group_name == "zephyr_raw"
        assert node.description and len(node.description) > 20, key
        pool = "jira_api" if key == jira_issues else "zephyr_api"
        assert definitions.resolve_assets_def(key).op.pool == pool


def test_child_entities_depend_on_their_owners() -> None:
    graph = defs().resolve_asset_graph()
    parents = {
        key.path[1] for key in graph.get(dg.AssetKey(["zephyr_raw", "test_execution_steps"])).parent_keys
    }
    assert parents == {"test_executions"}
    attachment_parents = {
        key.path[1] for key in graph.get(dg.AssetKey(["zephyr_raw", "attachments"])).parent_keys
    }
    assert {"test_cases", "test_steps", "test_executions", "test_execution_steps"} <= attachment_parents


def test_raw_assets_carry_their_checks_and_the_job_and_sensor_exist() -> None:
    definitions = defs()
    check_keys = {
        (key.asset_key.path[1], key.name) for key in definitions.resolve_asset_graph().asset_check_keys
    }
    for entity in ENTITIES:
        assert (entity.name, "row_count_matches_api") in check_keys
        assert (entity.name, "ids_unique") in check_keys
    assert ("test_executions", "executions_reference_existing_cases_and_cycles") in check_keys
    assert ("test_steps", "call_to_test_targets_exist") in check_keys
    assert definitions.resolve_job_def("migration_job").partitions_def.name == "zephyr_project"
    assert definitions.resolve_sensor_def("zephyr_project_discovery") is not None
    # Runs launched from the UI whose process died are closed by it (tests/e2e/test_dead_ui_run.py).
    closer = definitions.resolve_sensor_def("dead_run_closer")
    assert closer.default_status == dg.DefaultSensorStatus.RUNNING


def test_the_dbt_models_are_assets_keyed_by_schema_with_their_tests_as_checks() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    for key in (
        dg.AssetKey(["staging", "stg_zephyr__test_cases"]),
        dg.AssetKey(["canonical", "test_case"]),
        dg.AssetKey(["canonical", "test_execution_step"]),
        dg.AssetKey(["qtest_mapping", "qtest_test_logs"]),
        dg.AssetKey(["qtest_mapping", "unmapped"]),
        dg.AssetKey(["qtest_mapping", "status_map"]),
    ):
        assert key in keys, key
        node = graph.get(key)
        assert node.group_name == key.path[0]
        assert node.partitions_def is not None and node.partitions_def.name == "zephyr_project"
        assert node.description, key
    # Staging reads the raw assets through the dbt sources' meta.dagster.asset_key.
    assert (
        dg.AssetKey(["zephyr_raw", "test_cases"])
        in graph.get(dg.AssetKey(["staging", "stg_zephyr__test_cases"])).parent_keys
    )
    dbt_checks = [
        key for key in graph.asset_check_keys if key.asset_key.path[0] in ("canonical", "qtest_mapping")
    ]
    assert len(dbt_checks) > 100
    assert definitions.resolve_assets_def(dg.AssetKey(["canonical", "test_case"])).op.pool == "postgres"


def test_every_asset_has_the_same_partitions_and_backfill_policy() -> None:
    graph = defs().resolve_asset_graph()
    policies = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assert node.partitions_def is not None and node.partitions_def.name == "zephyr_project", key
        policies.add(node.backfill_policy)
    assert policies == {dg.BackfillPolicy.multi_run(1)}


def test_the_qtest_stages_follow_the_load_order() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {key.to_user_string() for key in graph.get(dg.AssetKey(["qtest", name])).parent_keys}

    assert "qtest/modules" in parents("test_cases")
    assert {"qtest/test_cases", "qtest/test_cycles"} <= parents("test_runs")
    assert "qtest/test_runs" in parents("test_logs")
    assert "qtest_mapping/qtest_test_logs" in parents("test_logs")
    for name in ("modules", "test_cases", "test_cycles", "test_runs", "test_logs", "reconciliation"):
        assert definitions.resolve_assets_def(dg.AssetKey(["qtest", name])).op.pool == "qtest_api"


def test_the_tenant_configuration_enforces_the_pools_per_run_and_runs_in_one_process() -> None:
    """docs/dagster-tenant.yaml is a valid instance configuration whose pools are enforced per run (one slot
    by default); the extraction and the publishing use different vendor pools; every asset job runs in one
    process (its stages share their limiter); the publishing job and its sensor exist."""
    import yaml

    config = yaml.safe_load((REPO / "docs" / "dagster-tenant.yaml").read_text())
    assert config["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    with tempfile.TemporaryDirectory() as home:
        shutil.copyfile(REPO / "docs" / "dagster-tenant.yaml", Path(home) / "dagster.yaml")
        with dg.DagsterInstance.from_config(home) as instance:
            assert instance.get_concurrency_config().pool_config.pool_granularity.value == "run"
    # One run per project, whether it names it as its partition or (a backfill's run) as its range.
    assert {limit["key"] for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]} == {
        "dagster/partition",
        "dagster/asset_partition_range_start",
    }
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    pools_by_group: dict[str, set[str | None]] = {}
    for key in graph.get_all_asset_keys():
        if graph.get(key).is_materializable:
            pools_by_group.setdefault(key.path[0], set()).add(definitions.resolve_assets_def(key).op.pool)
    assert pools_by_group["zephyr_raw"] == {"zephyr_api", "jira_api"}
    assert pools_by_group["qtest"] == {"qtest_api"}
    assert definitions.resolve_implicit_global_asset_job_def().executor_def is dg.in_process_executor
    publish = definitions.resolve_job_def("publish_job")
    assert publish.executor_def is dg.in_process_executor
    assert {key.path[0] for key in publish.asset_layer.executable_asset_keys} == {"qtest"}
    assert definitions.resolve_sensor_def("publish_after_transform").default_status == (
        dg.DefaultSensorStatus.RUNNING
    )


def test_publishing_starts_after_a_tagged_transform_and_only_then() -> None:
    """The sensor asks for one publishing run per project a run tagged `zephyr_qtest/then: publish`
    transformed, once; an untagged run, a failed one, or one that published itself starts nothing."""
    from dagster._core.test_utils import create_run_for_test

    transform = [
        dg.AssetKey(["zephyr_raw", "test_cases"]),
        dg.AssetKey(["qtest_mapping", "qtest_test_cases"]),
    ]
    then = {THEN_TAG: THEN_PUBLISH, "dagster/backfill": "abc"}
    success = dg.DagsterRunStatus.SUCCESS
    with dg.DagsterInstance.ephemeral() as instance:
        ranged = {"dagster/asset_partition_range_start": "SHOP", "dagster/asset_partition_range_end": "SHOP"}
        wanted = create_run_for_test(
            instance, status=success, tags={**then, **ranged}, asset_selection=set(transform)
        )
        create_run_for_test(
            instance, status=success, tags={"dagster/partition": "PAY"}, asset_selection=set(transform)
        )
        create_run_for_test(
            instance,
            status=dg.DagsterRunStatus.FAILURE,
            tags={**then, "dagster/partition": "CRM"},
            asset_selection=set(transform),
        )
        create_run_for_test(
            instance,
            status=success,
            tags={**then, "dagster/partition": "OPS"},
            asset_selection={*transform, dg.AssetKey(["qtest", "modules"])},
        )
        # A run still transforming: its publishing run starts now and waits for it (wait_for_transform).
        running = create_run_for_test(
            instance,
            status=dg.DagsterRunStatus.STARTED,
            tags={**then, "dagster/partition": "QA"},
            asset_selection=set(transform),
        )
        result = publish_after_transform(dg.build_sensor_context(instance=instance))
        assert [(r.partition_key, r.run_key) for r in result.run_requests] == [
            ("SHOP", wanted.run_id),
            ("QA", running.run_id),
        ]
        assert result.run_requests[0].tags[TENANT_BACKFILL_TAG] == "abc"
        # The next evaluation, from the cursor, asks again only under the same run key (never run twice).
        again = publish_after_transform(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert {r.run_key for r in again.run_requests} <= {wanted.run_id, running.run_id}


def test_a_publishing_run_waits_for_its_transform_and_stops_when_that_failed() -> None:
    """A publishing run the sensor started goes on once the run it follows succeeded, and publishes
    nothing, naming that run, when it failed; a run without the tag does not wait."""
    from dagster._core.test_utils import create_run_for_test

    log = dg.get_dagster_logger()
    with dg.DagsterInstance.ephemeral() as instance:
        wait_for_transform(instance, {}, log)
        done = create_run_for_test(
            instance, status=dg.DagsterRunStatus.SUCCESS, tags={"dagster/partition": "A"}
        )
        wait_for_transform(instance, {AFTER_RUN_TAG: done.run_id}, log)
        failed = create_run_for_test(
            instance, status=dg.DagsterRunStatus.FAILURE, tags={"dagster/partition": "B"}
        )
        with pytest.raises(
            dg.Failure, match=f"B was not published: the run that transforms it \\({failed.run_id}\\)"
        ):
            wait_for_transform(instance, {AFTER_RUN_TAG: failed.run_id}, log)
