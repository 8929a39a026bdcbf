"""The Zephyr sandbox fixture format: one JSON document in the API's own shapes.

A fixture is what the sandbox serves. The generator produces one, ``--save-fixture`` writes it,
and teams hand-write or edit them (for instance to reproduce an odd object from a real tenant)::

    {"projects": [...], "folders": [...], "statuses": [...],
     "status_types": {"TEST_CASE": [<status id>, ...], "TEST_PLAN": [...], "TEST_CYCLE": [...],
                      "TEST_EXECUTION": [...]},
     "priorities": [...], "environments": [...], "testcases": [...], "testcase_versions": {"<case key>": [...]},
     "teststeps": {"<case key>": [...]}, "testscripts": {"<case key>": {"type", "text"}},
     "testcycles": [...], "testplans": [...], "testexecutions": [...],
     "testexecution_steps": {"<execution id or key>": [...]},
     "attachments": {"testcases/<key>": [{"name", "contentType", "base64"}], ...}}

Validation here is structural only: the containers, the identities the sandbox indexes by
(project ids and keys, case keys, unique ids) and the cross references between sections.
Individual objects may be deliberately bad (missing required fields, unknown enum values):
they are served as given, because the client has to cope with them. See docs/zephyr-sandbox.md.

A status's type is not part of the status: the real API's ``Status`` is exactly ``{id, project, name,
description, index, color, archived, default}`` and ``statusType`` exists only as a query filter
(REAL_SHAPES.md, Zephyr Scale Cloud 1; the spec's ``Status`` schema has no such field). So the fixture
says which filter serves a status in ``status_types``, beside the statuses, never inside them.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

LIST_SECTIONS: tuple[str, ...] = (
    "projects",
    "folders",
    "statuses",
    "priorities",
    "environments",
    "testcases",
    "testcycles",
    "testplans",
    "testexecutions",
)
MAP_SECTIONS: tuple[str, ...] = (
    "status_types",
    "testcase_versions",
    "teststeps",
    "testscripts",
    "testexecution_steps",
    "attachments",
)

# Owners an attachment can hang on, as "<collection>/<id or key>[/teststeps/<step id>]".
ATTACHMENT_OWNER = re.compile(
    r"^(?P<kind>testcases|testcycles|testplans|testexecutions)/(?P<ref>[^/]+)"
    r"(?:/teststeps/(?P<step>[0-9]+))?$"
)

# The values of the `statusType` query filter (the spec's StatusType enum).
STATUS_TYPES: tuple[str, ...] = ("TEST_CASE", "TEST_PLAN", "TEST_CYCLE", "TEST_EXECUTION")

_MAX_REPORTED_PROBLEMS = 25


class FixtureError(ValueError):
    """The fixture cannot be served; the message lists each problem with the object it concerns."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:_MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        text = "invalid Zephyr sandbox fixture:\n  - " + "\n  - ".join(shown)
        if more:
            text += f"\n  ... and {more} more"
        super().__init__(text)


def _describe(section: str, index: int, obj: Mapping[str, Any]) -> str:
    label = obj.get("key") or obj.get("id") or obj.get("name")
    return f"{section}[{index}]" + (f" ({label})" if label is not None else "")


def json_int(value: Any) -> int | None:
    """``value`` if it is a JSON integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_unique(section: str, items: list[Any], field: str, problems: list[str]) -> None:
    seen: dict[Any, int] = {}
    for index, obj in enumerate(items):
        if not isinstance(obj, dict):
            continue
        value = obj.get(field)
        if value is None or isinstance(value, dict | list):
            continue
        if value in seen:
            problems.append(
                f"{section}[{index}]: duplicate {field} {value!r} (also {section}[{seen[value]}])"
            )
        else:
            seen[value] = index


def _refs(items: Iterable[Any], *fields: str) -> set[str]:
    """Every id and key of ``items`` as strings, for resolving "<id or key>" references."""
    found: set[str] = set()
    for obj in items:
        if isinstance(obj, dict):
            for name in fields:
                value = obj.get(name)
                if value is not None and not isinstance(value, dict | list):
                    found.add(str(value))
    return found


def validate_fixture(doc: Any) -> None:
    """Raise FixtureError listing every structural problem of ``doc``; return None when it is servable."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise FixtureError([f"the fixture must be a JSON object, got {type(doc).__name__}"])
    for name in doc:
        if name not in LIST_SECTIONS and name not in MAP_SECTIONS and not name.startswith("_"):
            known = ", ".join(LIST_SECTIONS + MAP_SECTIONS)
            problems.append(f"unknown section {name!r} (known: {known}; keys starting with '_' are ignored)")
    for name in LIST_SECTIONS:
        items = doc.get(name, [])
        if not isinstance(items, list):
            problems.append(f"{name}: must be a list, got {type(items).__name__}")
            continue
        for index, obj in enumerate(items):
            if not isinstance(obj, dict):
                problems.append(f"{name}[{index}]: must be an object, got {type(obj).__name__}")
        _check_unique(name, items, "id", problems)
        if name in ("projects", "testcases", "testcycles", "testplans", "testexecutions"):
            _check_unique(name, items, "key", problems)
    for name in MAP_SECTIONS:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            problems.append(f"{name}: must be an object keyed by owner, got {type(value).__name__}")
    if problems:
        raise FixtureError(problems)

    # Identities the sandbox indexes by.
    for index, project in enumerate(doc.get("projects", [])):
        where = _describe("projects", index, project)
        if json_int(project.get("id")) is None:
            problems.append(f"{where}: 'id' must be an integer (every object is scoped by project id)")
        if not isinstance(project.get("key"), str) or not project.get("key"):
            problems.append(f"{where}: 'key' must be a non-empty string")
    for index, case in enumerate(doc.get("testcases", [])):
        if not isinstance(case.get("key"), str) or not case.get("key"):
            problems.append(f"{_describe('testcases', index, case)}: 'key' must be a non-empty string")

    problems.extend(_status_type_problems(doc))

    # Cross references between sections.
    case_keys = _refs(doc.get("testcases", []), "key")
    case_refs = _refs(doc.get("testcases", []), "id", "key")
    execution_refs = _refs(doc.get("testexecutions", []), "id", "key")
    owners = {
        "testcases": case_refs,
        "testcycles": _refs(doc.get("testcycles", []), "id", "key"),
        "testplans": _refs(doc.get("testplans", []), "id", "key"),
        "testexecutions": execution_refs,
    }
    for section in ("teststeps", "testscripts", "testcase_versions"):
        for key, value in doc.get(section, {}).items():
            if key not in case_keys:
                problems.append(f"{section}[{key!r}]: no test case with that key in 'testcases'")
            expected = dict if section == "testscripts" else list
            if not isinstance(value, expected):
                problems.append(
                    f"{section}[{key!r}]: must be {'an object' if expected is dict else 'a list'}"
                )
            elif expected is list and not all(isinstance(item, dict) for item in value):
                problems.append(f"{section}[{key!r}]: every item must be an object")
    for key in doc.get("teststeps", {}):
        if key in doc.get("testscripts", {}):
            problems.append(f"test case {key!r} has both teststeps and a testscript; Zephyr keeps only one")
    for key, value in doc.get("testexecution_steps", {}).items():
        if key not in execution_refs:
            problems.append(f"testexecution_steps[{key!r}]: no test execution with that id or key")
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            problems.append(f"testexecution_steps[{key!r}]: must be a list of objects")
    for owner, files in doc.get("attachments", {}).items():
        match = ATTACHMENT_OWNER.match(owner)
        if not match:
            problems.append(
                f"attachments[{owner!r}]: owner must look like 'testcases/<key>', "
                "'testcases/<key>/teststeps/<step id>', 'testcycles/<id or key>', 'testplans/<id or key>', "
                "'testexecutions/<id or key>' or 'testexecutions/<id or key>/teststeps/<step id>'"
            )
            continue
        kind, ref, step = match["kind"], match["ref"], match["step"]
        if step is not None and kind not in ("testcases", "testexecutions"):
            problems.append(f"attachments[{owner!r}]: only test cases and executions have step attachments")
        if ref not in owners[kind]:
            problems.append(f"attachments[{owner!r}]: no object with id or key {ref!r} in {kind!r}")
        if not isinstance(files, list):
            problems.append(f"attachments[{owner!r}]: must be a list of files")
            continue
        for index, item in enumerate(files):
            problems.extend(f"attachments[{owner!r}][{index}]: {text}" for text in _attachment_problems(item))
    if problems:
        raise FixtureError(problems)


def _status_type_problems(doc: Mapping[str, Any]) -> list[str]:
    """`status_types` names known statuses, each under one type; no status carries `statusType` itself.

    A status object that still has `statusType` (the shape this sandbox once invented) is refused rather
    than served or ignored: served, it would teach the client a field the real API never sends
    (REAL_SHAPES.md, Zephyr Scale Cloud 1); ignored, its type would silently vanish and the status would
    answer under no `statusType` filter. The message says where the type goes instead.
    """
    problems: list[str] = []
    for index, status in enumerate(doc.get("statuses", [])):
        if "statusType" in status:
            problems.append(
                f"{_describe('statuses', index, status)}: 'statusType' is not part of a Zephyr status "
                "(the API has it only as a query filter); list the status id under "
                f"status_types.{status['statusType'] if status['statusType'] in STATUS_TYPES else '<type>'} "
                "instead and remove the field"
            )
    status_ids = {
        status.get("id") for status in doc.get("statuses", []) if json_int(status.get("id")) is not None
    }
    typed: dict[int, str] = {}
    for status_type, ids in doc.get("status_types", {}).items():
        if status_type not in STATUS_TYPES:
            problems.append(
                f"status_types[{status_type!r}]: not a status type (one of {', '.join(STATUS_TYPES)})"
            )
            continue
        if not isinstance(ids, list):
            problems.append(f"status_types[{status_type!r}]: must be a list of status ids")
            continue
        for ident in ids:
            if json_int(ident) is None or ident not in status_ids:
                problems.append(f"status_types[{status_type!r}]: no status with id {ident!r} in 'statuses'")
            elif ident in typed and typed[ident] != status_type:
                problems.append(
                    f"status_types: status {ident} is listed under {typed[ident]} and {status_type}; "
                    "a Zephyr status belongs to one type"
                )
            else:
                typed[ident] = status_type
    return problems


def _attachment_problems(item: Any) -> list[str]:
    if not isinstance(item, dict):
        return ["must be an object"]
    problems = []
    if not isinstance(item.get("name"), str) or not item["name"]:
        problems.append("'name' must be a non-empty string")
    if "id" in item and json_int(item["id"]) is None:
        problems.append("'id' must be an integer")
    if "contentType" in item and not isinstance(item["contentType"], str):
        problems.append("'contentType' must be a string")
    if "base64" in item:
        if not isinstance(item["base64"], str):
            problems.append("'base64' must be a string")
        else:
            try:
                base64.b64decode(item["base64"], validate=True)
            except (binascii.Error, ValueError):
                problems.append("'base64' is not valid base64")
    elif "text" in item:
        if not isinstance(item["text"], str):
            problems.append("'text' must be a string")
    else:
        problems.append("needs the content as 'base64' (or 'text' for UTF-8 text files)")
    return problems


def attachment_bytes(item: Mapping[str, Any]) -> bytes:
    """The content of one fixture attachment entry (``base64``, or ``text`` as UTF-8)."""
    if "base64" in item:
        return base64.b64decode(item["base64"])
    return str(item.get("text", "")).encode("utf-8")


def load_fixture(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Read (``.json`` or ``.json.gz``) or take a fixture document, validate it and return it.

    Missing sections are filled in empty. The returned document shares its objects with a
    mapping passed in; the sandbox never modifies them in place.
    """
    if isinstance(source, Mapping):
        doc: Any = dict(source)
    else:
        path = Path(source)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise FixtureError([f"cannot read fixture file {str(path)!r}: {exc.strerror or exc}"]) from exc
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FixtureError([f"fixture file {str(path)!r} is not valid JSON: {exc}"]) from exc
    validate_fixture(doc)
    for name in LIST_SECTIONS:
        doc.setdefault(name, [])
    for name in MAP_SECTIONS:
        doc.setdefault(name, {})
    return doc


def fixture_bytes(doc: Mapping[str, Any]) -> bytes:
    """The canonical serialisation of a fixture: compact UTF-8 JSON, key order as given (a lone surrogate,
    which UTF-8 cannot hold, as its ``\\uXXXX`` escape)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")


def save_fixture(doc: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``doc`` to ``path`` (gzip-compressed when the name ends in ``.gz``), byte-for-byte stable."""
    target = Path(path)
    data = fixture_bytes(doc)
    if target.name.endswith(".gz"):
        # mtime=0 keeps the compressed bytes identical for identical documents.
        data = gzip.compress(data, mtime=0)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target
