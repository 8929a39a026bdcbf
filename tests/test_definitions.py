"""The definitions load, validate with Dagster's own CLI, and have the shape the design promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg

from zephyr_qtest.definitions import defs
from zephyr_qtest.defs.tenant import EXTRACTION_BACKFILL_POLICY, PUBLISHING_BACKFILL_POLICY
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
    assert raw_keys == {dg.AssetKey(["zephyr_raw", entity.name]) for entity in ENTITIES}
    for key in raw_keys:
        node = graph.get(key)
        assert node.partitions_def is not None and node.partitions_def.name == "zephyr_project", key
        assert node.group_name == "zephyr_raw"
        assert node.description and len(node.description) > 20, key
        assert definitions.resolve_assets_def(key).op.pool == "zephyr_api"


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


def test_a_backfill_cuts_each_project_into_an_extraction_run_and_a_publishing_run() -> None:
    """Every asset is one project a run; the qTest assets' backfill policy differs from their parents', so an
    asset backfill publishes a project in a run of its own once the project is transformed, and the run
    queue of docs/dagster-tenant.yaml overlaps it with the next project's extraction (defs/tenant.py)."""
    graph = defs().resolve_asset_graph()
    policies: dict[str, set[dg.BackfillPolicy | None]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assert node.partitions_def is not None and node.partitions_def.name == "zephyr_project", key
        policies.setdefault(node.group_name or "", set()).add(node.backfill_policy)
    assert policies.pop("qtest") == {PUBLISHING_BACKFILL_POLICY}
    assert set().union(*policies.values()) == {EXTRACTION_BACKFILL_POLICY}
    assert PUBLISHING_BACKFILL_POLICY != EXTRACTION_BACKFILL_POLICY
    # Both mean one project a run (Dagster takes no policy for max_partitions_per_run=1).
    assert EXTRACTION_BACKFILL_POLICY.max_partitions_per_run == 1


def test_the_tenant_configuration_enforces_one_run_per_vendor_pool() -> None:
    """docs/dagster-tenant.yaml is a valid instance configuration whose pools are enforced per run, one slot
    each, and every run of a backfill executes in one process (the stages share their limiter)."""
    import yaml

    config = yaml.safe_load((REPO / "docs" / "dagster-tenant.yaml").read_text())
    assert config["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    definitions = defs()
    pools = {
        definitions.resolve_assets_def(key).op.pool
        for key in definitions.resolve_asset_graph().get_all_asset_keys()
        if definitions.resolve_asset_graph().get(key).is_materializable
    }
    assert {"zephyr_api", "qtest_api", "postgres"} <= pools
    assert definitions.resolve_implicit_global_asset_job_def().executor_def is dg.in_process_executor
    with tempfile.TemporaryDirectory() as home:
        shutil.copyfile(REPO / "docs" / "dagster-tenant.yaml", Path(home) / "dagster.yaml")
        with dg.DagsterInstance.from_config(home) as instance:
            assert instance.get_concurrency_config().pool_config.pool_granularity.value == "run"


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
