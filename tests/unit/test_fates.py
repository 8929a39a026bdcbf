"""Every payload key the staging models declare (kept or dropped) has a declared fate in qTest."""

import json

import pytest

from zephyr_qtest.lib.dbt import prepare_manifest
from zephyr_qtest.lib.proof.fates import FATES, Fate, fate_of


def declared_payload_paths() -> list[tuple[str, str]]:
    manifest = json.loads(prepare_manifest().read_text())
    paths = []
    for node in manifest["nodes"].values():
        meta = node["config"].get("meta") or {}
        if "raw_table" not in meta:
            continue
        entity = meta["raw_table"].removeprefix("zephyr_raw.")
        for path in {*meta.get("payload_key_columns", {}), *meta.get("dropped_payload_keys", {})}:
            paths.append((entity, path))
    return sorted(paths)


def test_the_staging_models_declare_payload_keys() -> None:
    # The fates are held against these declarations: an empty list would make the next test pass vacuously.
    entities = {entity for entity, _ in declared_payload_paths()}
    assert {"test_cases", "test_executions", "test_execution_steps", "test_cycles", "attachments"} <= entities


@pytest.mark.parametrize(("entity", "path"), declared_payload_paths())
def test_every_payload_key_has_a_fate(entity: str, path: str) -> None:
    assert fate_of(entity, path) is not None, (
        f"zephyr_raw.{entity} payload key {path!r} has no fate in fates.py"
    )


def test_a_field_that_is_not_carried_says_why_and_what_to_do() -> None:
    for fate in FATES:
        assert fate.rule, fate
        if fate.fate is Fate.NOT_CARRIED:
            assert fate.remedy and not fate.to, fate
        if fate.fate is Fate.CARRIED:
            assert fate.to, fate


def test_the_longest_declared_path_decides() -> None:
    assert fate_of("test_steps", "inline.reflectRef").fate is Fate.NOT_CARRIED  # type: ignore[union-attr]
    assert fate_of("test_steps", "testCase.parameters[].value").fate is Fate.CARRIED  # type: ignore[union-attr]
    assert fate_of("test_steps", "testCase.testCaseKey").fate is Fate.CARRIED  # type: ignore[union-attr]
    assert fate_of("test_cases", "customFields.Risk Score").fate is Fate.CARRIED  # type: ignore[union-attr]
    assert fate_of("test_cases", "nonsense") is None
