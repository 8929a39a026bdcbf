"""The data dictionary (``docs/data-dictionary.md``), generated from the dbt project's own documentation.

Everything comes from the parsed manifest: each model's description, columns (type, constraints, tests,
description), and, for the staging models, where every raw payload key lands or why it is dropped. A test
regenerates it and fails when the committed file differs, so the document cannot drift from the models.
The README's mapping table (what each Zephyr field becomes in qTest, or why it does not arrive) is rendered
from the same registry of fates, between two markers, and checked the same way.

    python -m zephyr_qtest.lib.data_dictionary [--check]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from zephyr_qtest.lib.dbt import DBT_PROJECT_DIR, prepare_manifest
from zephyr_qtest.lib.proof.fates import FATES, Fate, fate_of

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"
README = Path(__file__).resolve().parents[2] / "README.md"
MAPPING_START = (
    "<!-- mapping table: generated from lib/proof/fates.py by python -m zephyr_qtest.lib.data_dictionary -->"
)
MAPPING_END = "<!-- end of the mapping table -->"
# The raw tables as the ledger names their objects, in the table's order.
_OBJECT_WORDS = {
    "test_cases": "test case",
    "test_case_versions": "test case version",
    "test_steps": "test step",
    "test_scripts": "test script",
    "test_cycles": "test cycle",
    "test_plans": "test plan",
    "test_executions": "test execution",
    "test_execution_steps": "execution step",
    "folders": "folder",
    "attachments": "attachment",
    "jira_issues": "Jira issue",
}
_SCHEMAS = ("canonical", "qtest_mapping", "staging")
_SCHEMA_TITLES = {
    "canonical": "Canonical schema (`canonical.*`)",
    "qtest_mapping": "qTest mapping (`qtest_mapping.*`)",
    "staging": "Staging views (`staging.*`)",
}


def _cell(text: Any) -> str:
    """Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _schema(node: Mapping[str, Any]) -> str:
    return node["config"].get("schema") or node["schema"]


def _tests_by_column(manifest: Mapping[str, Any]) -> dict[tuple[str, str | None], list[str]]:
    """Generic data tests per (model unique_id, column): `unique`, `relationships -> table.column`, ..."""
    found: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for node in manifest["nodes"].values():
        metadata = node.get("test_metadata")
        if node["resource_type"] != "test" or not metadata or not node.get("attached_node"):
            continue
        name, kwargs = metadata["name"], metadata.get("kwargs", {})
        if name == "relationships":
            target = str(kwargs.get("to", "")).removeprefix("ref('").removesuffix("')")
            name = f"relationships → {target}.{kwargs.get('field')}"
        elif name == "accepted_values":
            name = f"accepted_values ({', '.join(map(str, kwargs.get('values', [])))})"
        elif name == "unique_combination_of_columns":
            name = f"unique ({', '.join(kwargs.get('combination_of_columns', []))})"
        found[(node["attached_node"], node.get("column_name"))].append(name)
    return found


def _constraints(items: Iterable[Mapping[str, Any]]) -> list[str]:
    rendered = []
    for constraint in items:
        kind = constraint["type"].replace("_", " ")
        columns = constraint.get("columns") or []
        rendered.append(f"{kind} ({', '.join(columns)})" if columns else kind)
    return rendered


def render(manifest: Mapping[str, Any]) -> str:
    models = sorted(
        (node for node in manifest["nodes"].values() if node["resource_type"] in ("model", "seed")),
        key=lambda node: (_SCHEMAS.index(_schema(node)) if _schema(node) in _SCHEMAS else 9, node["name"]),
    )
    tests = _tests_by_column(manifest)
    lines = [
        "# Data dictionary",
        "",
        "<!-- Generated from the dbt project by `python -m zephyr_qtest.lib.data_dictionary`; do not edit by "
        "hand. tests/unit/test_data_dictionary.py fails when it is out of date. -->",
        "",
        "Every table the dbt project builds, one Zephyr project at a time (`var('project_key')`). Canonical "
        "and mapping tables are incremental: a project's run replaces that project's rows only. Contracts "
        "are enforced on every mart, so the column types below are the tables' real types.",
        "",
    ]
    current_schema = None
    for node in models:
        schema = _schema(node)
        if schema != current_schema:
            current_schema = schema
            title = _SCHEMA_TITLES.get(schema, f"`{schema}`")
            lines += [f"## {title}" if node["resource_type"] == "model" else f"## Seeds (`{schema}`)", ""]
        kind = "seed" if node["resource_type"] == "seed" else node["config"].get("materialized", "")
        lines += [f"### `{schema}.{node['alias'] or node['name']}`", "", f"*{kind}*", ""]
        if node.get("description"):
            lines += [" ".join(node["description"].split()), ""]
        model_constraints = _constraints(node.get("constraints") or [])
        if model_constraints:
            lines += ["Constraints: " + "; ".join(model_constraints) + ".", ""]
        model_tests = tests.get((node["unique_id"], None), [])
        if model_tests:
            lines += ["Tests: " + "; ".join(sorted(model_tests)) + ".", ""]
        if node["columns"]:
            lines += ["| column | type | constraints and tests | description |", "|---|---|---|---|"]
            for column in node["columns"].values():
                checks = _constraints(column.get("constraints") or []) + sorted(
                    tests.get((node["unique_id"], column["name"]), [])
                )
                lines.append(
                    f"| `{column['name']}` | {_cell(column.get('data_type'))} | {_cell('; '.join(checks))} "
                    f"| {_cell(column.get('description'))} |"
                )
            lines.append("")
        meta = node["config"].get("meta") or {}
        if "raw_table" in meta:
            lines += _payload_section(meta)
    return "\n".join(lines).rstrip() + "\n"


def _payload_section(meta: Mapping[str, Any]) -> list[str]:
    mapped: Mapping[str, str] = meta.get("payload_key_columns") or {}
    dropped: Mapping[str, str] = meta.get("dropped_payload_keys") or {}
    entity = str(meta["raw_table"]).removeprefix("zephyr_raw.")
    lines = [
        f"Payload keys of `{meta['raw_table']}`, and their fate in qTest (`lib/proof/fates.py`, what the "
        "reconciliation holds qTest to):",
        "",
        "| payload key | lands in / dropped because | fate in qTest |",
        "|---|---|---|",
    ]
    for path in sorted({*mapped, *dropped}):
        where = f"`{mapped[path]}`" if path in mapped else f"dropped: {_cell(dropped[path])}"
        lines.append(f"| `{path}` | {where} | {_cell(_fate_text(entity, path))} |")
    return [*lines, ""]


def _fate_text(entity: str, path: str) -> str:
    fate = fate_of(entity, path)
    if fate is None:
        return "none declared"
    if fate.fate is Fate.CARRIED:
        return f"carried to {fate.to}: {fate.rule}"
    if fate.fate is Fate.IDENTITY:
        return f"identifies or places it ({fate.to}): {fate.rule}"
    if fate.fate is Fate.NOT_CARRIED:
        return f"**not carried**: {fate.rule}"
    return f"no value of its own: {fate.rule}"


def render_mapping_table() -> str:
    """The README's mapping table: every Zephyr field with a value of its own (not the API's links and ids),
    where it lands in qTest and by which rule, or, in bold, that it does not arrive and why."""
    lines = [
        MAPPING_START,
        "| Zephyr | in qTest | rule, or why it does not arrive |",
        "|---|---|---|",
    ]
    for entity, words in _OBJECT_WORDS.items():
        for fate in FATES:
            if fate.entity != entity or fate.fate is Fate.STRUCTURAL:
                continue
            where = "**not carried**" if fate.fate is Fate.NOT_CARRIED else _cell(fate.to)
            lines.append(f"| {words} `{fate.path}` | {where} | {_cell(fate.rule)} |")
    lines.append(MAPPING_END)
    return "\n".join(lines)


def readme_with_mapping_table(readme: str) -> str:
    """The README with its mapping table (between the markers) rendered anew."""
    start, end = readme.index(MAPPING_START), readme.index(MAPPING_END) + len(MAPPING_END)
    return readme[:start] + render_mapping_table() + readme[end:]


def render_from_project(project_dir: Path = DBT_PROJECT_DIR) -> str:
    manifest = json.loads(prepare_manifest(project_dir).read_text())
    return render(manifest)


def main(argv: list[str]) -> int:
    text = render_from_project()
    readme = readme_with_mapping_table(README.read_text())
    if "--check" in argv:
        stale = [
            path
            for path, content in ((DOCUMENT, text), (README, readme))
            if not path.is_file() or path.read_text() != content
        ]
        for path in stale:
            print(f"{path} is out of date: run `python -m zephyr_qtest.lib.data_dictionary`")
        return 1 if stale else 0
    DOCUMENT.write_text(text)
    README.write_text(readme)
    print(DOCUMENT)
    print(README)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
