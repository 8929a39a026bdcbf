"""The definitions load, validate with Dagster's own CLI, and have the shape the design promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

from zephyr_qtest.definitions import defs
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
