"""Reconciliation: qTest read back and compared with what the mapping marts say it must hold.

Per object type: how many objects were expected, found, equal field for field (properties included: those
the qTest project has a field for); which are missing; which
qTest objects no Zephyr object accounts for (a duplicate would show here); and every mismatch, naming
the object, the field, and both values. Objects are paired through ``migration.id_map``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from psycopg import sql

from zephyr_qtest.lib.markdown import cell, flat
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.comparison import Mismatch, Reconciliation, TypeResult, compare, pair
from zephyr_qtest.lib.qtest.id_map import DDL_LOCK_KEY, site_of
from zephyr_qtest.lib.qtest.kinds import KINDS, Kind
from zephyr_qtest.lib.qtest.kinds.attachment import all_attachment_rows, not_uploaded
from zephyr_qtest.lib.qtest.kinds.base import (
    Marts,
    ReadBack,
    default_status,
    done_ids,
    field_catalogs,
    status_ids,
)
from zephyr_qtest.lib.qtest.kinds.vocabulary import INLINE_IMAGE, OBJECT_TYPES, PROJECT

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import Connections, Store

__all__ = [
    "Mismatch",
    "Reconciliation",
    "TypeResult",
    "html",
    "loader_check_text",
    "markdown",
    "read_back_and_reconcile",
    "reconcile",
    "save",
]

# The schema named literally: no identifier is interpolated into the statement text. Like the id map,
# the results belong to a target: a run against another qTest site keeps its own.
RECONCILIATION_DDL = """
create schema if not exists migration;
create table if not exists migration.reconciliation (
    target_site   text not null,
    project_key   text not null,
    object_type   text not null,
    expected      integer not null,
    found         integer not null,
    matched       integer not null,
    missing       integer not null,
    unaccounted   integer not null,
    mismatches    integer not null,
    checked_at    timestamptz not null default now(),
    primary key (target_site, project_key, object_type)
);
create table if not exists migration.reconciliation_mismatch (
    target_site   text not null,
    project_key   text not null,
    object_type   text not null,
    source_key    text not null,
    field         text not null,
    expected      text,
    actual        text
);
create index if not exists reconciliation_mismatch_project
    on migration.reconciliation_mismatch (project_key, object_type);
"""

# Tables of an earlier version (no target_site) upgraded in place: their rows, results of a run against a
# site nobody recorded, get NO_SITE and are never shown as a target's results.
RECONCILIATION_UPGRADE = """
do $$
begin
    if not exists (
        select 1 from information_schema.columns where table_schema = 'migration'
        and table_name = 'reconciliation' and column_name = 'target_site'
    ) then
        alter table migration.reconciliation add column target_site text not null default '';
        alter table migration.reconciliation alter column target_site drop default;
        alter table migration.reconciliation drop constraint if exists reconciliation_pkey;
        alter table migration.reconciliation
            add constraint reconciliation_pkey primary key (target_site, project_key, object_type);
    end if;
    if not exists (
        select 1 from information_schema.columns where table_schema = 'migration'
        and table_name = 'reconciliation_mismatch' and column_name = 'target_site'
    ) then
        alter table migration.reconciliation_mismatch add column target_site text not null default '';
        alter table migration.reconciliation_mismatch alter column target_site drop default;
    end if;
end
$$;
"""


async def reconcile(store: Store, client: QtestClient, project_key: str) -> Reconciliation:
    """qTest read back, kind by kind in load order, and compared with the marts through the id map of the
    client's site. Nothing published there yet: every expected object is missing."""
    outcome, _ = await read_back_and_reconcile(store, client, project_key)
    return outcome


async def read_back_and_reconcile(
    store: Store, client: QtestClient, project_key: str
) -> tuple[Reconciliation, ReadBack | None]:
    """`reconcile`, with what qTest was read back as (None when no qTest project holds the project yet):
    the proof compares the same objects with the raw payloads."""
    id_map = await store.open_id_map(project_key, client.site_url)
    try:
        # Inline images too: their attachments are on the cases beside the files (read_back_attachments).
        maps = {
            object_type.name: await id_map.load(object_type.name)
            for object_type in (*OBJECT_TYPES, INLINE_IMAGE)
        }
    finally:
        await id_map.close()
    ids = {object_type: done_ids(entries) for object_type, entries in maps.items()}
    project = maps[PROJECT.name].get(project_key)
    outcome = Reconciliation(
        project_key,
        project.qtest_id if project else None,
        target_site=id_map.target_site,
        qtest_project_name=project.detail.get("name") if project else None,
    )
    marts = Marts(store.marts(), project_key)
    if outcome.qtest_project_id is None:
        for kind in KINDS:
            result = outcome.results.setdefault(kind.result_type.name, TypeResult(kind.result_type.name))
            keys = [str(row["source_key"]) for row in kind.rows(marts)]
            result.expected += len(keys)
            result.missing += keys
        return outcome, None
    pid = outcome.qtest_project_id
    case_fields, run_fields = await field_catalogs(client, pid)
    listed = await client.execution_statuses(pid)
    read_back = ReadBack(
        client, pid, marts, ids, outcome, case_fields, run_fields, status_ids(listed), default_status(listed)
    )
    for kind in KINDS:
        await reconcile_kind(kind, read_back)
    outcome.skipped_attachments = not_uploaded(all_attachment_rows(marts), "no qTest target")
    return outcome, read_back


async def reconcile_kind(kind: Kind, rb: ReadBack) -> None:
    """One kind: its expected rows paired with what qTest holds, each compared field for field with the
    kind's expectation (and its children, for a test case's steps)."""
    for object_type in (kind.result_type, *kind.children):
        rb.outcome.results.setdefault(object_type.name, TypeResult(object_type.name))
    result = rb.outcome.results[kind.result_type.name]
    rows = kind.rows(rb.marts)
    found = await kind.read_back(rb, rows)
    rb.found[kind.name] = found
    for row, qtest_object in pair(result, rows, rb.ids[kind.name], found):
        expected = kind.expect(row, rb)
        held = kind.held(qtest_object, expected)
        compare(
            result, str(row["source_key"]), [(name, value, held[name]) for name, value in expected.items()]
        )
        if kind.reconcile_children is not None:
            kind.reconcile_children(rb, row, qtest_object)


# A project's counts per object type, and its mismatches, as ``migration.reconciliation`` rows hold them.
CountRow = tuple[str, str, int, int, int, int, int, int]
MismatchRow = tuple[str, str, str, str, str, str]
# Mismatches saved per object type (the report names at most 200; the count is always complete).
SAVED_MISMATCHES = 10000


class ReconciliationWriter(Protocol):
    def replace(
        self, project_key: str, counts: list[CountRow], mismatches: list[MismatchRow], target_site: str
    ) -> None: ...


class ReconciliationRows:
    """The saved reconciliation's repository: ``migration.reconciliation`` and its mismatches, per target
    site."""

    def __init__(self, db: Connections) -> None:
        self._db = db

    def replace(
        self, project_key: str, counts: list[CountRow], mismatches: list[MismatchRow], target_site: str
    ) -> None:
        """The project's rows on `target_site` replaced in one transaction (the tables created, or
        upgraded, when needed; one process at a time)."""
        with self._db.connection() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))
            conn.execute(RECONCILIATION_DDL)
            conn.execute(RECONCILIATION_UPGRADE)
            for table in ("reconciliation", "reconciliation_mismatch"):
                conn.execute(
                    sql.SQL("delete from migration.{} where target_site = %s and project_key = %s").format(
                        sql.Identifier(table)
                    ),
                    (target_site, project_key),
                )
            with conn.cursor() as cursor:
                cursor.executemany(
                    "insert into migration.reconciliation (target_site, project_key, object_type, expected, "
                    "found, matched, missing, unaccounted, mismatches) "
                    "values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(target_site, *row) for row in counts],
                )
                cursor.executemany(
                    "insert into migration.reconciliation_mismatch (target_site, project_key, object_type, "
                    "source_key, field, expected, actual) values (%s, %s, %s, %s, %s, %s, %s)",
                    [(target_site, *row) for row in mismatches],
                )

    def read(self, projects: list[str], target_site: str) -> list[CountRow]:
        """The saved counts of `projects` on `target_site`, by project and object type (none before a
        first save there)."""
        with self._db.connection() as conn:
            exists = conn.execute(
                "select 1 from information_schema.columns where table_schema = 'migration' "
                "and table_name = 'reconciliation' and column_name = 'target_site'"
            ).fetchone()
            if not exists:
                return []
            return conn.execute(
                "select project_key, object_type, expected, found, matched, missing, unaccounted, mismatches "
                "from migration.reconciliation where target_site = %s and project_key = any(%s) order by 1, 2",
                (site_of(target_site), projects),
            ).fetchall()


def save(rows: ReconciliationWriter, outcome: Reconciliation) -> None:
    """Replace the project's reconciliation rows (for the report and the warehouse copy)."""
    counts: list[CountRow] = [
        (outcome.project_key, result.object_type, result.expected, result.found, result.matched,
         len(result.missing), len(result.unaccounted), len(result.mismatches))
        for result in outcome.results.values()
    ]  # fmt: skip
    mismatches: list[MismatchRow] = [
        (outcome.project_key, result.object_type, m.source_key, m.field,
         json.dumps(m.expected, default=str), json.dumps(m.actual, default=str))
        for result in outcome.results.values()
        for m in result.mismatches[:SAVED_MISMATCHES]
    ]  # fmt: skip
    rows.replace(outcome.project_key, counts, mismatches, outcome.target_site)


LOADER_CHECK_TITLE = "The loader's own check: qTest against the mapping marts"


def loader_check_text(outcome: Reconciliation) -> str:
    return "equal" if outcome.ok else "differences"


def markdown(
    outcome: Reconciliation, unmapped: Iterable[Any] = (), skipped: Iterable[Mapping[str, Any]] = ()
) -> str:
    """The loader's own check as a section of the report (``proof.report``): counts per object type, every
    mismatch (up to 200), unmapped values, skipped attachments. It compares qTest with the mapping marts, so
    it says whether the loader did what the marts said, never whether Zephyr arrived (that is the verdict)."""
    lines = [
        f"## {LOADER_CHECK_TITLE}",
        "",
        f"Target: {outcome.target}.",
        "",
        f"Loader check: **{loader_check_text(outcome)}**.",
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
        lines += ["", "### Mismatches", "", "| object | field | expected | in qTest |", "|---|---|---|---|"]
        for m in mismatches[:200]:
            lines.append(
                f"| {cell(m.source_key)} | {cell(m.field)} | {cell(m.expected)} | {cell(m.actual)} |"
            )
    missing = [(r.object_type, key) for r in outcome.results.values() for key in r.missing]
    if missing:
        lines += ["", "### Missing in qTest", ""] + [f"- {kind} {cell(key)}" for kind, key in missing[:200]]
    unmapped = list(unmapped)
    if unmapped:
        lines += ["", "### Values without a mapping", "", "| what | value | objects |", "|---|---|---:|"]
        lines += [f"| {cell(u.what)} | {cell(u.value)} | {u.count} |" for u in unmapped]
    skipped = list(skipped)
    if skipped:
        lines += ["", "### Attachments not uploaded", "", "| attachment | size | reason |", "|---|---:|---|"]
        lines += [f"| {cell(s['name'])} | {s['size_bytes']} | {cell(s['skip_reason'])} |" for s in skipped]
    return "\n".join(lines) + "\n"


def html(
    outcome: Reconciliation, unmapped: Iterable[Any] = (), skipped: Iterable[Mapping[str, Any]] = ()
) -> str:
    """The same section in HTML (a fragment of the report's page)."""
    from html import escape

    def table(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{escape(flat(c) if not isinstance(c, int) else str(c))}</td>" for c in row)
            + "</tr>"
            for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    parts = [
        f"<section><h2>{escape(LOADER_CHECK_TITLE)}</h2>",
        f"<p>Target: {escape(outcome.target)}. Loader check: <strong>{loader_check_text(outcome)}</strong>.</p>",
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
        parts += ["<h3>Mismatches</h3>", table(["object", "field", "expected", "in qTest"],
                                               [[m.source_key, m.field, m.expected, m.actual] for m in mismatches[:200]])]  # fmt: skip
    unmapped = list(unmapped)
    if unmapped:
        parts += ["<h3>Values without a mapping</h3>", table(["what", "value", "objects"], [[u.what, u.value, u.count] for u in unmapped])]  # fmt: skip
    skipped = list(skipped)
    if skipped:
        parts += ["<h3>Attachments not uploaded</h3>",
                  table(["attachment", "size", "reason"], [[s["name"], s["size_bytes"], s["skip_reason"]] for s in skipped])]  # fmt: skip
    return "".join(parts) + "</section>"


def print_reconciliation(
    saved: ReconciliationRows,
    projects: list[str],
    target_site: str,
    targets: Mapping[str, tuple[int, str | None]] | None = None,
) -> bool:
    """The loader's own check of each project on `target_site` (its qTest project from `targets`: key -> id,
    name), as the last run against that site saved it; True when everything is equal there. The verdict
    (Zephyr against qTest) is ``proof.saved.print_proofs``'s."""
    site = site_of(target_site)
    print(f"target: qTest site {site}")
    for project in projects:
        qtest_id, name = (targets or {}).get(project, (None, None))
        where = f"qTest project '{name}' (id {qtest_id})" if qtest_id else "no qTest project there yet"
        print(f"  {project} -> {where}")
    rows = saved.read(projects, site)
    print(f"{'loader check (qTest read back)':<34} {'expected':>9} {'in qTest':>9} {'equal':>9} {'missing':>8} "
          f"{'extra':>6} {'diffs':>6}")  # fmt: skip
    unreconciled = sorted(set(projects) - {row[0] for row in rows})
    differences = False
    for project, kind, expected, found, matched, missing, extra, diffs in rows:
        print(
            f"{project + ' ' + kind:<34} {expected:>9} {found:>9} {matched:>9} {missing:>8} {extra:>6} {diffs:>6}"
        )
        differences = differences or expected != matched or bool(missing or extra or diffs)
    for project in unreconciled:
        print(f"{project}: not reconciled on this site yet (the reconciliation runs after the qtest stages)")
    if differences:
        print("loader check: differences (see the report's loader section)")
    elif not unreconciled:
        print("loader check: equal")
    return bool(rows) and not differences and not unreconciled
