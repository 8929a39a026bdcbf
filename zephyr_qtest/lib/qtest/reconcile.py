"""Reconciliation: qTest read back and compared with what the mapping marts say it must hold.

Per object type: how many objects were expected, found, equal field for field (properties included: those
the qTest project has a field for); which are missing; which
qTest objects no Zephyr object accounts for (a duplicate would show here); and every mismatch, naming
the object, the field, and both values. Objects are paired through ``migration.id_map``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.id_map import MIGRATION_SCHEMA, IdMap
from zephyr_qtest.lib.qtest.loader import (
    attachment_owner,
    encoded_properties,
    field_catalogs,
    iso,
    read_mapping,
)

RECONCILIATION_DDL = f"""
create schema if not exists {MIGRATION_SCHEMA};
create table if not exists {MIGRATION_SCHEMA}.reconciliation (
    project_key   text not null,
    object_type   text not null,
    expected      integer not null,
    found         integer not null,
    matched       integer not null,
    missing       integer not null,
    unaccounted   integer not null,
    mismatches    integer not null,
    checked_at    timestamptz not null default now(),
    primary key (project_key, object_type)
);
create table if not exists {MIGRATION_SCHEMA}.reconciliation_mismatch (
    project_key   text not null,
    object_type   text not null,
    source_key    text not null,
    field         text not null,
    expected      text,
    actual        text
);
create index if not exists reconciliation_mismatch_project
    on {MIGRATION_SCHEMA}.reconciliation_mismatch (project_key, object_type);
"""


@dataclass(frozen=True)
class Mismatch:
    source_key: str
    field: str
    expected: Any
    actual: Any


@dataclass
class TypeResult:
    object_type: str
    expected: int = 0
    found: int = 0
    matched: int = 0
    missing: list[str] = field(default_factory=list)
    unaccounted: list[int] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.missing
            and not self.unaccounted
            and not self.mismatches
            and self.expected == self.matched
        )


@dataclass
class Reconciliation:
    project_key: str
    qtest_project_id: int | None
    results: dict[str, TypeResult] = field(default_factory=dict)
    skipped_attachments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results.values())


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _instant(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return datetime.fromisoformat(iso(value).replace("Z", "+00:00"))  # type: ignore[union-attr]
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _property_value(value: Any) -> Any:
    """A property value as compared: multi-select ids as a sorted list (qTest writes "[1, 2]" or "[1,2]")."""
    text = _text(value).strip()
    if text.startswith("["):
        try:
            return sorted(str(item) for item in json.loads(text))
        except ValueError:
            return text
    return text


def _properties_pair(
    catalog: FieldCatalog, row: Mapping[str, Any], found: Mapping[str, Any]
) -> tuple[str, Any, Any]:
    """The properties the migration set on an object (those qTest has a field for), against qTest's."""
    expected = {
        int(prop["field_id"]): _property_value(prop["field_value"])
        for prop in encoded_properties(catalog, row.get("properties"))
    }
    actual = {
        int(prop["field_id"]): _property_value(prop.get("field_value"))
        for prop in found.get("properties") or []
        if prop.get("field_id") is not None and int(prop["field_id"]) in expected
    }
    return ("properties", expected, actual)


def _compare(result: TypeResult, key: str, pairs: Iterable[tuple[str, Any, Any]]) -> None:
    bad = [Mismatch(key, name, expected, actual) for name, expected, actual in pairs if expected != actual]
    result.mismatches.extend(bad)
    if not bad:
        result.matched += 1


def _pair(
    result: TypeResult, rows: list[Mapping[str, Any]], ids: Mapping[str, int], found: Mapping[int, Any]
) -> list[tuple[Mapping[str, Any], Any]]:
    """Expected rows with their qTest objects; records the missing and the unaccounted-for."""
    result.expected = len(rows)
    result.found = len(found)
    paired = []
    used: set[int] = set()
    for row in rows:
        qtest_id = ids.get(str(row["source_key"]))
        if qtest_id is None or qtest_id not in found:
            result.missing.append(str(row["source_key"]))
            continue
        used.add(qtest_id)
        paired.append((row, found[qtest_id]))
    result.unaccounted = sorted(set(found) - used)
    return paired


def _flatten(items: Iterable[Mapping[str, Any]], child_keys: tuple[str, ...]) -> Iterable[Mapping[str, Any]]:
    for item in items:
        yield item
        for child_key in child_keys:
            yield from _flatten(item.get(child_key) or [], child_keys)


async def reconcile(database_url: str, client: QtestClient, project_key: str) -> Reconciliation:
    id_map = await IdMap.open(database_url, project_key)
    try:
        maps = {kind: await id_map.load(kind) for kind in ("project", "module", "test_case", "test_step", "test_cycle",
                                                           "test_run", "test_log", "test_step_log", "attachment")}  # fmt: skip
    finally:
        await id_map.close()
    ids = {
        kind: {k: e.qtest_id for k, e in entries.items() if e.state == "done" and e.qtest_id}
        for kind, entries in maps.items()
    }
    project = maps["project"].get(project_key)
    outcome = Reconciliation(project_key, project.qtest_id if project else None)
    if outcome.qtest_project_id is None:
        return outcome
    pid = outcome.qtest_project_id
    case_fields, run_fields = await field_catalogs(client, pid)

    # Modules: the whole tree; the "Created via API" default module is not ours to account for.
    modules = {
        int(m["id"]): m
        for m in _flatten(await client.list_modules(pid, descendants=True), ("children",))
        if m.get("name") != "Created via API" or int(m["id"]) in set(ids["module"].values())
    }
    result = outcome.results.setdefault("module", TypeResult("module"))
    rows = read_mapping(database_url, "qtest_modules", project_key)
    for row, module in _pair(result, rows, ids["module"], modules):
        parent = (
            ids["module"].get(_text(row.get("parent_source_key"))) if row.get("parent_source_key") else None
        )
        _compare(result, row["source_key"], [
            ("name", row["name"], module.get("name")),
            ("parent", parent, module.get("parent_id") or None),
        ])  # fmt: skip

    # Test cases with their steps.
    cases = {int(c["id"]): c async for c in client.iter_test_cases(pid, with_steps=True)}
    result = outcome.results.setdefault("test_case", TypeResult("test_case"))
    steps_by_case: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for step in read_mapping(
        database_url, "qtest_test_steps", project_key, "parent_source_key, step_order, source_key"
    ):
        steps_by_case[str(step["parent_source_key"])].append(step)
    step_result = outcome.results.setdefault("test_step", TypeResult("test_step"))
    for row, case in _pair(
        result, read_mapping(database_url, "qtest_test_cases", project_key), ids["test_case"], cases
    ):
        parent = ids["module"].get(_text(row.get("parent_source_key")))
        _compare(result, row["source_key"], [
            ("name", row["name"], case.get("name")),
            ("description", _text(row.get("description")), _text(case.get("description"))),
            ("precondition", _text(row.get("precondition")), _text(case.get("precondition"))),
            ("module", parent, case.get("parent_id") if parent is not None else None),
            _properties_pair(case_fields, row, case),
        ])  # fmt: skip
        expected_steps = steps_by_case.get(str(row["source_key"]), [])
        actual_steps = sorted(case.get("test_steps") or [], key=lambda s: int(s.get("order") or 0))
        step_result.expected += len(expected_steps)
        step_result.found += len(actual_steps)
        if len(expected_steps) != len(actual_steps):
            step_result.mismatches.append(
                Mismatch(row["source_key"], "step count", len(expected_steps), len(actual_steps))
            )
        for order, (expected, actual) in enumerate(zip(expected_steps, actual_steps, strict=False), start=1):
            callee = expected.get("called_test_case_source_key")
            callee_id = (
                ids["test_case"].get(callee)
                if callee and expected.get("is_called_test_case_in_project")
                else None
            )
            _compare(step_result, str(expected["source_key"]), [
                ("description", _text(expected.get("description")), _text(actual.get("description"))),
                ("expected", _text(expected.get("expected")), _text(actual.get("expected"))),
                ("order", order, int(actual.get("order") or 0)),
                ("called test case", callee_id, actual.get("called_test_case_id")),
            ])  # fmt: skip

    # Cycles (releases are listed apart).
    cycles = {
        int(c["id"]): c
        for c in _flatten(await client.list_test_cycles(pid, descendants=True), ("test-cycles",))
    }
    releases = {int(r["id"]): r for r in await client.list_releases(pid)}
    result = outcome.results.setdefault("test_cycle", TypeResult("test_cycle"))
    rows = read_mapping(database_url, "qtest_test_cycles", project_key)
    for row, cycle in _pair(result, rows, ids["test_cycle"], {**cycles, **releases}):
        _compare(result, row["source_key"], [
            ("name", row["name"], cycle.get("name")),
            ("description", _text(row.get("description")), _text(cycle.get("description"))),
        ])  # fmt: skip

    # Runs: one per (cycle, case); logs per run, with status, dates and step-log statuses.
    runs = {int(r["id"]): r async for r in client.iter_test_runs(pid, descendants=True)}
    result = outcome.results.setdefault("test_run", TypeResult("test_run"))
    per_pair = Counter(
        (r.get("parentId"), r.get("testCaseId") or (r.get("test_case") or {}).get("id"))
        for r in runs.values()
    )
    for row, run in _pair(
        result, read_mapping(database_url, "qtest_test_runs", project_key), ids["test_run"], runs
    ):
        cycle_id = ids["test_cycle"].get(row["parent_source_key"])
        case_id = ids["test_case"].get(row["test_case_source_key"])
        run_case = run.get("testCaseId") or (run.get("test_case") or {}).get("id")
        _compare(result, row["source_key"], [
            ("cycle", cycle_id, run.get("parentId")),
            ("test case", case_id, run_case),
            ("runs of this (cycle, case)", 1, per_pair[(run.get("parentId"), run_case)]),
            _properties_pair(run_fields, row, run),
        ])  # fmt: skip

    statuses = {str(s["name"]).lower(): int(s["id"]) for s in await client.execution_statuses(pid)}
    log_rows = [
        r for r in read_mapping(database_url, "qtest_test_logs", project_key, "load_order, log_order, source_key")
        if not r.get("skip_reason")
    ]  # fmt: skip
    logs: dict[int, Mapping[str, Any]] = {}
    for run_id in sorted(runs):
        async for log in client.iter_test_logs(pid, run_id):
            logs[int(log["id"])] = {**log, "_run_id": run_id}
    step_logs_by_log: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for step in read_mapping(
        database_url, "qtest_test_step_logs", project_key, "parent_source_key, step_order"
    ):
        if not step.get("skip_reason") and step.get("test_step_source_key"):
            step_logs_by_log[str(step["parent_source_key"])].append(step)
    result = outcome.results.setdefault("test_log", TypeResult("test_log"))
    for row, log in _pair(result, log_rows, ids["test_log"], logs):
        expected_steps = [
            statuses.get(_text(s.get("status")).lower())
            for s in step_logs_by_log.get(str(row["source_key"]), [])
            if s["test_step_source_key"] in ids["test_step"]
        ]
        actual_steps = [
            (s.get("status") or {}).get("id")
            for s in sorted(log.get("test_step_logs") or [], key=lambda s: int(s.get("order") or 0))
        ]
        _compare(result, row["source_key"], [
            ("run", ids["test_run"].get(row["parent_source_key"]), log["_run_id"]),
            ("status", statuses.get(_text(row.get("status")).lower()), (log.get("status") or {}).get("id")),
            ("exe_start_date", _instant(row.get("exe_start_date")), _instant(log.get("exe_start_date"))),
            ("exe_end_date", _instant(row.get("exe_end_date")), _instant(log.get("exe_end_date"))),
            ("note", _text(row.get("note")), _text(log.get("note"))),
            ("step log statuses", expected_steps, actual_steps),
            _properties_pair(run_fields, row, log),
        ])  # fmt: skip

    # Attachments: read back byte for byte (name, size, sha256) from their owners.
    result = outcome.results.setdefault("attachment", TypeResult("attachment"))
    rows = [
        r for r in read_mapping(database_url, "qtest_attachments", project_key)
        if not r.get("skip_reason") and r.get("qtest_object_type")
    ]  # fmt: skip
    outcome.skipped_attachments = [
        {"name": r["name"], "size_bytes": r.get("size_bytes"), "skip_reason": r.get("skip_reason") or "no qTest target"}
        for r in read_mapping(database_url, "qtest_attachments", project_key)
        if r.get("skip_reason") or not r.get("qtest_object_type")
    ]  # fmt: skip
    owners = set()
    for r in rows:
        try:
            owners.add(attachment_owner(ids, r))
        except KeyError:
            continue  # its owner is missing: the attachment shows as missing
    files: dict[int, dict[str, Any]] = {}
    for object_type, owner_id in sorted(owners):
        for attachment in await client.list_attachments(pid, object_type, owner_id):
            content = await client.download_attachment(pid, object_type, owner_id, int(attachment["id"]))
            files[int(attachment["id"])] = {
                "name": attachment.get("name"), "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
            }  # fmt: skip
    for row, found in _pair(result, rows, ids["attachment"], files):
        _compare(result, row["source_key"], [
            ("name", row["name"], found["name"]),
            ("size", int(row["size_bytes"]), found["size"]),
            ("sha256", row["sha256"], found["sha256"]),
        ])  # fmt: skip
    return outcome


def save(database_url: str, outcome: Reconciliation) -> None:
    """Replace the project's reconciliation rows (for the report and the warehouse copy)."""
    with connect(database_url) as conn, conn.transaction():
        conn.execute(RECONCILIATION_DDL)
        conn.execute(
            f"delete from {MIGRATION_SCHEMA}.reconciliation where project_key = %s", (outcome.project_key,)
        )
        conn.execute(
            f"delete from {MIGRATION_SCHEMA}.reconciliation_mismatch where project_key = %s",
            (outcome.project_key,),
        )
        for result in outcome.results.values():
            conn.execute(
                f"insert into {MIGRATION_SCHEMA}.reconciliation (project_key, object_type, expected, found, matched, "
                "missing, unaccounted, mismatches) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                (outcome.project_key, result.object_type, result.expected, result.found, result.matched,
                 len(result.missing), len(result.unaccounted), len(result.mismatches)),
            )  # fmt: skip
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"insert into {MIGRATION_SCHEMA}.reconciliation_mismatch values (%s, %s, %s, %s, %s, %s)",
                    [
                        (outcome.project_key, result.object_type, m.source_key, m.field,
                         json.dumps(m.expected, default=str), json.dumps(m.actual, default=str))
                        for m in result.mismatches[:10000]
                    ],
                )  # fmt: skip


def markdown(
    outcome: Reconciliation, unmapped: Iterable[Any] = (), skipped: Iterable[Mapping[str, Any]] = ()
) -> str:
    """The report: counts per object type, every mismatch (up to 200), unmapped values, skipped attachments."""
    lines = [
        f"# Reconciliation of {outcome.project_key}",
        "",
        f"qTest project id: {outcome.qtest_project_id}. Result: **{'everything equal' if outcome.ok else 'DIFFERENCES'}**.",
        "",
        "| object | expected | found in qTest | equal | missing | not accounted for | mismatched fields |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in outcome.results.values():
        lines.append(
            f"| {result.object_type} | {result.expected} | {result.found} | {result.matched} | {len(result.missing)} "
            f"| {len(result.unaccounted)} | {len(result.mismatches)} |"
        )
    mismatches = [m for r in outcome.results.values() for m in r.mismatches]
    if mismatches:
        lines += ["", "## Mismatches", "", "| object | field | expected | in qTest |", "|---|---|---|---|"]
        for m in mismatches[:200]:
            lines.append(f"| {m.source_key} | {m.field} | {_cell(m.expected)} | {_cell(m.actual)} |")
    missing = [(r.object_type, key) for r in outcome.results.values() for key in r.missing]
    if missing:
        lines += ["", "## Missing in qTest", ""] + [f"- {kind} {key}" for kind, key in missing[:200]]
    unmapped = list(unmapped)
    if unmapped:
        lines += ["", "## Values without a mapping", "", "| what | value | objects |", "|---|---|---:|"]
        lines += [f"| {u.what} | {_cell(u.value)} | {u.count} |" for u in unmapped]
    skipped = list(skipped)
    if skipped:
        lines += ["", "## Attachments not uploaded", "", "| attachment | size | reason |", "|---|---:|---|"]
        lines += [f"| {_cell(s['name'])} | {s['size_bytes']} | {_cell(s['skip_reason'])} |" for s in skipped]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return " ".join(text.split()).replace("|", "\\|")[:200]


def html(
    outcome: Reconciliation, unmapped: Iterable[Any] = (), skipped: Iterable[Mapping[str, Any]] = ()
) -> str:
    """The same report as a standalone HTML page."""
    from html import escape

    def table(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{escape(_cell(c) if not isinstance(c, int) else str(c))}</td>" for c in row)
            + "</tr>"
            for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    verdict = "everything equal" if outcome.ok else "DIFFERENCES"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Reconciliation of {escape(outcome.project_key)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>",
        f"<h1>Reconciliation of {escape(outcome.project_key)}</h1>",
        f"<p>qTest project id: {outcome.qtest_project_id}. Result: <strong>{verdict}</strong>.</p>",
        table(
            [
                "object",
                "expected",
                "found in qTest",
                "equal",
                "missing",
                "not accounted for",
                "mismatched fields",
            ],
            [
                [
                    r.object_type,
                    r.expected,
                    r.found,
                    r.matched,
                    len(r.missing),
                    len(r.unaccounted),
                    len(r.mismatches),
                ]
                for r in outcome.results.values()
            ],
        ),
    ]
    mismatches = [m for r in outcome.results.values() for m in r.mismatches]
    if mismatches:
        parts += ["<h2>Mismatches</h2>", table(["object", "field", "expected", "in qTest"],
                                               [[m.source_key, m.field, m.expected, m.actual] for m in mismatches[:200]])]  # fmt: skip
    unmapped = list(unmapped)
    if unmapped:
        parts += ["<h2>Values without a mapping</h2>", table(["what", "value", "objects"], [[u.what, u.value, u.count] for u in unmapped])]  # fmt: skip
    skipped = list(skipped)
    if skipped:
        parts += ["<h2>Attachments not uploaded</h2>",
                  table(["attachment", "size", "reason"], [[s["name"], s["size_bytes"], s["skip_reason"]] for s in skipped])]  # fmt: skip
    return "".join(parts) + "</body></html>\n"


def print_reconciliation(database_url: str, projects: list[str]) -> bool:
    """The reconciliation of each project as the last run saved it; True when everything is equal."""
    with connect(database_url) as conn:
        exists = conn.execute(f"select to_regclass('{MIGRATION_SCHEMA}.reconciliation')").fetchone()
        rows = (
            conn.execute(
                f"select project_key, object_type, expected, found, matched, missing, unaccounted, mismatches "
                f"from {MIGRATION_SCHEMA}.reconciliation where project_key = any(%s) order by 1, 2",
                (projects,),
            ).fetchall()
            if exists and exists[0]
            else []
        )
    print(f"{'reconciliation (qTest read back)':<34} {'expected':>9} {'in qTest':>9} {'equal':>9} {'missing':>8} "
          f"{'extra':>6} {'diffs':>6}")  # fmt: skip
    equal = bool(rows) and {row[0] for row in rows} == set(projects)
    for project, kind, expected, found, matched, missing, extra, diffs in rows:
        print(
            f"{project + ' ' + kind:<34} {expected:>9} {found:>9} {matched:>9} {missing:>8} {extra:>6} {diffs:>6}"
        )
        equal = equal and expected == matched and not (missing or extra or diffs)
    for project in sorted(set(projects) - {row[0] for row in rows}):
        print(f"{project}: not reconciled")
    print("everything equal" if equal else "DIFFERENCES: see reports/<project>.md")
    return equal
