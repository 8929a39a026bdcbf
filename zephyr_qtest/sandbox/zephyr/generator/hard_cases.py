"""Hard cases a real tenant has and generated data does not, put into a generated (or any) fixture.

``generate()`` keeps to values a migration can carry; these functions edit a fixture document in place to
add one of the values that cannot, each named by what it returns, so that a test can look for it:

- ``add_unknown_execution_status``: an archived TEST_EXECUTION status that no status map knows ("Old
  Skip"), used by one manual, executed execution without attachments. What it rests on: a status has
  ``archived`` and answers under its ``statusType`` filter (REAL_SHAPES.md, Zephyr Scale Cloud 1: the 2026
  ``Status`` schema), and an execution refers to its status by id only (the ``TestExecution`` schema), so
  nothing in the API stops an old execution from pointing at a status archived since. That real tenants hold
  such executions is our reading of those schemas (no recorded answer shows one). The generator's own
  archived execution status ("Retest") has a row in the shipped ``status_map.csv``; this one has none.
- ``put_text``: any text into a payload field, for the characters PostgreSQL cannot store (a lone UTF-16
  surrogate, as a truncated emoji leaves behind, and NUL). JSON can carry both (``\\ud800``, ``\\u0000``)
  and the real API serialises whatever the user typed (the 2026 schemas type these fields as plain strings);
  the sandbox serves them as escapes (``fixture.fixture_bytes``).

Nothing here draws from the generator's random stream: a generated document edited here is the same
document with only these values changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zephyr_qtest.sandbox.zephyr.generator.words import API

UNKNOWN_EXECUTION_STATUS = "Old Skip"


def _project(doc: Mapping[str, Any], project_key: str) -> dict[str, Any]:
    for project in doc["projects"]:
        if project["key"] == project_key:
            return project
    raise KeyError(f"no project {project_key!r} in the fixture")


def _executions_with_attachments(doc: Mapping[str, Any]) -> set[str]:
    """The ids and keys of executions holding an attachment (their own or one of their step results')."""
    owners = set()
    for owner in doc.get("attachments", {}):
        kind, _, rest = owner.partition("/")
        if kind == "testexecutions":
            owners.add(rest.split("/")[0])
    return owners


def add_unknown_execution_status(
    doc: dict[str, Any], project_key: str, name: str = UNKNOWN_EXECUTION_STATUS
) -> str:
    """Add the archived TEST_EXECUTION status ``name`` to the project and give it to its first manual,
    executed execution without attachments (its own or its step results'); return that execution's key.

    The status gets the next free status id; the execution keeps everything else (its step results keep
    their own statuses, as Zephyr keeps them when an execution's status is set by hand)."""
    project = _project(doc, project_key)
    with_attachments = _executions_with_attachments(doc)
    candidates = [
        execution
        for execution in doc["testexecutions"]
        if execution["project"]["id"] == project["id"]
        and not execution.get("automated")
        and execution.get("actualEndDate")
        and str(execution["id"]) not in with_attachments
        and str(execution["key"]) not in with_attachments
    ]
    if not candidates:
        raise ValueError(f"project {project_key!r} has no manual, executed execution without attachments")
    execution = min(candidates, key=lambda item: item["id"])
    status_id = max(status["id"] for status in doc["statuses"]) + 1
    types = doc.setdefault("status_types", {}).setdefault("TEST_EXECUTION", [])
    index = sum(
        1 for status in doc["statuses"] if status["id"] in types and status["project"]["id"] == project["id"]
    )
    doc["statuses"].append(
        {
            "id": status_id,
            "project": {"id": project["id"], "self": f"{API}/projects/{project['id']}"},
            "name": name,
            "description": "Skipped (retired status, kept on old executions)",
            "index": index,
            "color": "#5E6C84",
            "archived": True,
            "default": False,
        }
    )
    types.append(status_id)
    execution["testExecutionStatus"] = {"id": status_id, "self": f"{API}/statuses/{status_id}"}
    return str(execution["key"])


def put_text(obj: dict[str, Any], path: str, text: str) -> None:
    """Set the field at ``path`` (keys joined by ``.``) of one fixture object to ``text``."""
    *parents, last = path.split(".")
    target = obj
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = text
