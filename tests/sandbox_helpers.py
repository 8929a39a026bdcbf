"""Helpers for tests that talk to the sandboxes: the vendor's OpenAPI schemas as JSON Schema.

``zephyr_validator("TestCase")`` validates a sandbox answer against the Zephyr Scale Cloud v2
spec's own schema (the copy shipped in ``zephyr_qtest/sandbox/zephyr/spec/``), translated from
OpenAPI 3.0 (``nullable``, ``example``, component ``$ref``s) and widened where the 2026 spec
allows null (API_NOTES Z-3 and the 2026 schemas). The 2026 additions that the 2025 spec lacks
(nextgen pages, attachment lists, step ids) have small schemas written here from API_NOTES.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

_REPO = Path(__file__).resolve().parent.parent
_SPEC_CANDIDATES = (
    _REPO / "zephyr_qtest" / "sandbox" / "zephyr" / "spec" / "zephyr-scale-cloud-v2.openapi.yaml",
    _REPO / "specs" / "zephyr-scale-cloud-v2.openapi.yaml",
)

# Fields the 2026 spec makes nullable (or that are null by nature, e.g. a root folder's parentId).
NULLABLE_2026: dict[str, tuple[str, ...]] = {
    "PagedList": ("next",),
    "Folder": ("parentId",),
    "TestCase": ("objective", "precondition", "estimatedTime", "component", "folder", "owner"),
    "TestCycle": (
        "jiraProjectVersion",
        "folder",
        "description",
        "plannedStartDate",
        "plannedEndDate",
        "owner",
    ),
    "TestPlan": ("objective", "folder", "owner"),
    "TestExecution": (
        "environment",
        "jiraProjectVersion",
        "testCycle",
        "executedById",
        "assignedToId",
        "comment",
        "estimatedTime",
        "executionTime",
        "actualEndDate",
    ),
    "TestStep.inline": ("description", "testData", "expectedResult", "reflectRef"),
    "TestExecutionStep.inline": (
        "description",
        "testData",
        "expectedResult",
        "actualResult",
        "testDataRowNumber",
        "reflectRef",
    ),
}

NULL = {"type": "null"}

# 2026 additions, written from API_NOTES (Z-2, Z-5, Z-7) and the 2026 schemas.
STEP_ID_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "integer", "minimum": 1}},
    "oneOf": [{"required": ["inline"]}, {"required": ["testCase"]}],
}
EXECUTION_STEP_ID_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "inline"],
    "properties": {"id": {"type": "integer", "minimum": 1}},
}
ATTACHMENT_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["attachments"],
    "additionalProperties": False,
    "properties": {
        "attachments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "name": {"type": "string", "minLength": 1},
                },
            },
        }
    },
}


def nextgen_page_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["next", "nextStartAtId", "limit", "values"],
        "additionalProperties": False,
        "properties": {
            "next": {"type": ["string", "null"]},
            "nextStartAtId": {"type": ["integer", "null"], "minimum": 0},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "values": {"type": "array"},
        },
    }


def zephyr_spec_path() -> Path:
    override = os.environ.get("ZEPHYR_OPENAPI_SPEC")
    if override:
        return Path(override)
    for candidate in _SPEC_CANDIDATES:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"Zephyr OpenAPI spec not found in {[str(c) for c in _SPEC_CANDIDATES]}")


@functools.cache
def load_zephyr_spec() -> dict[str, Any]:
    return yaml.safe_load(zephyr_spec_path().read_text(encoding="utf-8"))


def openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema object → JSON Schema 2020-12: ``nullable`` becomes ``anyOf [.., null]``,
    component ``$ref``s point into ``$defs``, and annotation-only keys are dropped."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("example", "examples", "xml", "externalDocs", "nullable"):
            continue
        if key == "$ref" and isinstance(value, str):
            converted[key] = value.replace("#/components/schemas/", "#/$defs/")
        elif key in ("properties", "patternProperties", "$defs"):
            converted[key] = {name: openapi_to_jsonschema(sub) for name, sub in value.items()}
        else:
            converted[key] = openapi_to_jsonschema(value)
    if node.get("nullable") is True:
        return {"anyOf": [converted, NULL]}
    return converted


def _allow_null(schema: dict[str, Any], field: str) -> None:
    properties = schema.get("properties")
    if properties is None:
        # Schemas built with allOf: widen the field wherever a branch declares it.
        for branch in schema.get("allOf", []):
            if isinstance(branch, dict) and field in branch.get("properties", {}):
                _allow_null(branch, field)
        return
    if field in properties:
        properties[field] = {"anyOf": [properties[field], NULL]}


@functools.cache
def _definitions() -> dict[str, Any]:
    schemas = copy.deepcopy(load_zephyr_spec()["components"]["schemas"])
    defs = {name: openapi_to_jsonschema(schema) for name, schema in schemas.items()}
    # The 2025 spec types every custom-field value as an object, contradicting its own example
    # (numbers, strings, booleans, arrays); the 2026 spec has record<string, unknown>.
    defs["CustomFields"]["additionalProperties"] = {}
    for target, fields in NULLABLE_2026.items():
        name, _, nested = target.partition(".")
        schema = defs[name]
        if nested:
            schema["properties"][nested] = {"anyOf": [schema["properties"][nested], NULL]}
            schema = schema["properties"][nested]["anyOf"][0]
        for field in fields:
            _allow_null(schema, field)
    return defs


@functools.cache
def zephyr_validator(schema_name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<schema_name>`` of the vendor spec (2026-widened)."""
    defs = _definitions()
    if schema_name not in defs:
        raise KeyError(f"no schema {schema_name!r} in the Zephyr spec")
    return Draft202012Validator({"$defs": defs, "$ref": f"#/$defs/{schema_name}"})


def schema_errors(instance: Any, schema: str | dict[str, Any]) -> list[str]:
    """Every validation error of ``instance``, as ``path: message`` lines (empty when valid)."""
    validator = zephyr_validator(schema) if isinstance(schema, str) else Draft202012Validator(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def assert_valid(instance: Any, schema: str | dict[str, Any], where: str = "") -> None:
    errors = schema_errors(instance, schema)
    assert not errors, (
        f"{where} does not match {schema if isinstance(schema, str) else 'schema'}:\n"
        + "\n".join(errors[:20])
    )
