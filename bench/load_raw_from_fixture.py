"""Fill the ``zephyr_raw`` tables straight from a sandbox fixture document, without the API.

The rows are exactly what the extraction (``zephyr_qtest.lib.zephyr.extract``) writes for the same data:
one row per object, with the same ``id`` / ``key`` / ``parent_key`` / ``position`` identity and the API's
object untouched in ``payload``. It exists so the dbt models can be developed, tested and benchmarked on
any size of data (100,000 cases and 1,000,000 executions load in about a minute) without running the
rate-limited extraction first.

Each project's rows of each table are replaced in one transaction (delete, then ``COPY``), as the raw
assets do; other projects' rows are left alone.

    .venv/bin/python bench/load_raw_from_fixture.py --database-url postgresql://postgres@127.0.0.1:5432/zq \\
        --seed 5 --size small [--projects SHOP,PAY] [--create-database]
    .venv/bin/python bench/load_raw_from_fixture.py --database-url ... \\
        --size '{"preset": "bench", "cases": 100000, "executions": 1000000}'
    .venv/bin/python bench/load_raw_from_fixture.py --database-url ... --fixture tenant.json.gz

From Python: ``load_raw(database_url, document, project_keys=None) -> {table: rows written}``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import mimetypes
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from zephyr_qtest.lib.raw_store import (  # noqa: E402
    EXTRACTION_ISSUES_DDL,
    EXTRACTION_LOG_DDL,
    RAW_SCHEMA,
    entity_table_ddl,
    raw_table,
)

# Raw table → the fixture section its objects come from.
LISTINGS: dict[str, str] = {
    "projects": "projects",
    "folders": "folders",
    "statuses": "statuses",
    "priorities": "priorities",
    "environments": "environments",
    "test_cases": "testcases",
    "test_cycles": "testcycles",
    "test_plans": "testplans",
    "test_executions": "testexecutions",
}
TABLES: tuple[str, ...] = (
    *LISTINGS,
    "test_steps",
    "test_scripts",
    "test_execution_steps",
    "attachments",
)
_BASE_COLUMNS = ("project_key", "id", "key", "parent_key", "position", "payload", "extracted_at", "run_id")
_ATTACHMENT_COLUMNS = ("content_type", "size_bytes", "sha256", "content")
# Last, as in raw_store: the filter a status was listed under ({"statusType": ...}); null elsewhere.
_LISTING_FILTER_COLUMN = "listing_filter"
_OWNER = re.compile(
    r"^(?P<kind>testcases|testcycles|testplans|testexecutions)/(?P<ref>[^/]+)(?:/teststeps/(?P<step>[0-9]+))?$"
)

Row = tuple[Any, ...]


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _payload(value: Any) -> str:
    """jsonb text of an object; NUL characters (which jsonb cannot hold) become U+FFFD, as the extraction does."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\\u0000", "\\ufffd") if "\\u0000" in text else text


class _Tenant:
    """Indexes over the fixture that place every object in its project and name its owner the way the API does."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.doc = document
        self.project_key_by_id: dict[int, str] = {}
        for project in document.get("projects", []):
            if _int_or_none(project.get("id")) is not None and isinstance(project.get("key"), str):
                self.project_key_by_id[project["id"]] = project["key"]
        self.case_project: dict[str, str] = {}
        self.case_key_by_id: dict[int, str] = {}
        for case in document.get("testcases", []):
            key = case.get("key")
            project = self.project_of(case)
            if isinstance(key, str) and project:
                self.case_project[key] = project
                if _int_or_none(case.get("id")) is not None:
                    self.case_key_by_id[case["id"]] = key
        self.cycle_key_by_ref: dict[str, str] = {}
        self.plan_key_by_ref: dict[str, str] = {}
        self.key_project: dict[str, str] = {}
        for section, index in (("testcycles", self.cycle_key_by_ref), ("testplans", self.plan_key_by_ref)):
            for item in document.get(section, []):
                key, project = item.get("key"), self.project_of(item)
                if isinstance(key, str) and project:
                    index[key] = key
                    if item.get("id") is not None:
                        index[str(item["id"])] = key
                    self.key_project[key] = project
        self.execution_id_by_ref: dict[str, int] = {}
        self.execution_project: dict[int, str] = {}
        for execution in document.get("testexecutions", []):
            ident, project = _int_or_none(execution.get("id")), self.project_of(execution)
            if ident is None or not project:
                continue
            self.execution_id_by_ref[str(ident)] = ident
            if isinstance(execution.get("key"), str):
                self.execution_id_by_ref[execution["key"]] = ident
            self.execution_project[ident] = project

    def project_of(self, obj: Mapping[str, Any]) -> str | None:
        project = obj.get("project")
        if isinstance(project, Mapping) and _int_or_none(project.get("id")) is not None:
            return self.project_key_by_id.get(project["id"])
        return None

    def owner(self, owner: str) -> tuple[str, str] | None:
        """``(project key, owner path)`` with the path as the extraction writes it, or None if it names nothing."""
        match = _OWNER.match(owner)
        if not match:
            return None
        kind, ref, step = match["kind"], match["ref"], match["step"]
        if kind == "testcases":
            key = (
                ref
                if ref in self.case_project
                else self.case_key_by_id.get(int(ref))
                if ref.isdigit()
                else None
            )
            if key is None:
                return None
            project, path = self.case_project[key], f"testcases/{key}"
        elif kind in ("testcycles", "testplans"):
            index = self.cycle_key_by_ref if kind == "testcycles" else self.plan_key_by_ref
            key = index.get(ref)
            if key is None:
                return None
            project, path = self.key_project[key], f"{kind}/{key}"
        else:
            ident = self.execution_id_by_ref.get(ref)
            if ident is None:
                return None
            project, path = self.execution_project[ident], f"testexecutions/{ident}"
        return project, path if step is None else f"{path}/teststeps/{step}"


def _rows(tenant: _Tenant, table: str, wanted: set[str]) -> Iterator[tuple[str, Row]]:
    """``(project key, (id, key, parent_key, position, payload[, content_type, size, sha256, content]))``."""
    doc = tenant.doc
    if table == "statuses":
        # The extraction lists statuses once per type and keeps the type beside the payload; the fixture
        # says the type in `status_types` (a status never carries it).
        # A status of no type answers no per-type listing, so it has no row, as with the extraction.
        type_of = {ident: kind for kind, ids in doc.get("status_types", {}).items() for ident in ids}
        for obj in doc.get("statuses", []):
            project, status_type = tenant.project_of(obj), type_of.get(obj.get("id"))
            if project in wanted and status_type is not None:
                listing_filter = json.dumps({"statusType": status_type})
                yield project, (_int_or_none(obj.get("id")), None, None, None, _payload(obj), listing_filter)
    elif table in LISTINGS:
        for obj in doc.get(LISTINGS[table], []):
            project = obj.get("key") if table == "projects" else tenant.project_of(obj)
            if project in wanted:
                key = obj.get("key") if isinstance(obj.get("key"), str) else None
                yield project, (_int_or_none(obj.get("id")), key, None, None, _payload(obj))
    elif table == "test_steps":
        for case_key, steps in doc.get("teststeps", {}).items():
            project = tenant.case_project.get(case_key)
            if project in wanted:
                for position, step in enumerate(steps, start=1):
                    yield (
                        project,
                        (
                            _int_or_none(step.get("id")),
                            f"{case_key}#{position}",
                            case_key,
                            position,
                            _payload(step),
                        ),
                    )
    elif table == "test_scripts":
        for case_key, script in doc.get("testscripts", {}).items():
            project = tenant.case_project.get(case_key)
            if project in wanted:
                yield project, (_int_or_none(script.get("id")), case_key, case_key, None, _payload(script))
    elif table == "test_execution_steps":
        for ref, steps in doc.get("testexecution_steps", {}).items():
            ident = tenant.execution_id_by_ref.get(str(ref))
            project = tenant.execution_project.get(ident) if ident is not None else None
            if project in wanted:
                for position, step in enumerate(steps, start=1):
                    yield (
                        project,
                        (
                            _int_or_none(step.get("id")),
                            f"{ident}#{position}",
                            str(ident),
                            position,
                            _payload(step),
                        ),
                    )
    elif table == "attachments":
        files_by_owner = doc.get("attachments", {})
        explicit = [item["id"] for files in files_by_owner.values() for item in files if "id" in item]
        next_id = max(explicit, default=0) + 1
        for owner_text, files in files_by_owner.items():
            located = tenant.owner(owner_text)
            for item in files:
                ident = item.get("id")
                if ident is None:  # the sandbox numbers files without an id the same way
                    ident, next_id = next_id, next_id + 1
                if located is None or located[0] not in wanted:
                    continue
                project, owner = located
                content = (
                    base64.b64decode(item["base64"])
                    if "base64" in item
                    else str(item.get("text", "")).encode("utf-8")
                )
                content_type = (
                    item.get("contentType")
                    or mimetypes.guess_type(item["name"])[0]
                    or "application/octet-stream"
                )
                yield (
                    project,
                    (
                        ident,
                        f"{owner}/attachments/{ident}",
                        owner,
                        None,
                        _payload({"id": ident, "name": item["name"]}),
                        content_type,
                        len(content),
                        hashlib.sha256(content).hexdigest(),
                        content,
                    ),
                )
    else:  # pragma: no cover - TABLES is closed
        raise ValueError(table)


def _copy_table(
    conn: psycopg.Connection,
    table: str,
    rows: Iterable[tuple[str, Row]],
    projects: Sequence[str],
    extracted_at: datetime,
    run_id: str,
) -> int:
    """Replace ``projects``' rows of one raw table: delete them, then COPY the new ones in (one transaction)."""
    with conn.transaction():
        conn.execute(entity_table_ddl(table, with_content=table == "attachments"))
        conn.execute(
            sql.SQL("delete from {} where project_key = any(%s)").format(raw_table(table)),
            (list(projects),),
        )
        columns = (
            _BASE_COLUMNS
            + (_ATTACHMENT_COLUMNS if table == "attachments" else ())
            + ((_LISTING_FILTER_COLUMN,) if table == "statuses" else ())
        )
        statement = sql.SQL("copy {} ({}) from stdin").format(
            raw_table(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        written = 0
        with conn.cursor().copy(statement) as copy:
            for project, row in rows:
                ident, key, parent_key, position, payload, *content = row
                copy.write_row(
                    (project, ident, key, parent_key, position, payload, extracted_at, run_id, *content)
                )
                written += 1
    return written


def load_raw(
    database_url: str,
    document: Mapping[str, Any],
    project_keys: Iterable[str] | None = None,
    *,
    run_id: str = "fixture",
    extracted_at: datetime | None = None,
    progress: Callable[[str, int, float], None] | None = None,
) -> dict[str, int]:
    """Replace the raw rows of ``project_keys`` (default: every project of the document) with the document's.

    Returns the rows written per table. ``extracted_at`` defaults to now (UTC); pass one to get
    byte-identical tables from two loads.
    """
    tenant = _Tenant(document)
    known = list(tenant.project_key_by_id.values())
    projects = list(project_keys) if project_keys is not None else known
    unknown = sorted(set(projects) - set(known))
    if unknown:
        raise ValueError(f"project(s) {', '.join(unknown)} not in the document (it has {', '.join(known)})")
    wanted = set(projects)
    moment = extracted_at or datetime.now(UTC)
    counts: dict[str, int] = {}
    with psycopg.connect(database_url, connect_timeout=15) as conn:
        with conn.transaction():
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(RAW_SCHEMA)))
            conn.execute(EXTRACTION_LOG_DDL)
            conn.execute(EXTRACTION_ISSUES_DDL)
        for table in TABLES:
            started = time.monotonic()
            counts[table] = _copy_table(conn, table, _rows(tenant, table, wanted), projects, moment, run_id)
            if progress:
                progress(table, counts[table], time.monotonic() - started)
        with conn.transaction():
            conn.execute(sql.SQL("analyze {}").format(raw_table("test_executions")))
            conn.execute(sql.SQL("analyze {}").format(raw_table("test_execution_steps")))
    return counts


def _create_database(database_url: str) -> None:
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True, connect_timeout=15) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="postgresql://... of the database to fill")
    parser.add_argument("--fixture", help="a fixture file (.json or .json.gz) instead of generated data")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--size", default="small", help="a preset name or a JSON object, e.g. '{\"cases\": 40}'"
    )
    parser.add_argument("--projects", help="comma-separated project keys (default: all of the document)")
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--create-database", action="store_true", help="create the database if it is missing")
    args = parser.parse_args(argv)

    started = time.monotonic()
    if args.fixture:
        from zephyr_qtest.sandbox.zephyr.fixture import load_fixture

        document = load_fixture(args.fixture)
        run_id = args.run_id or f"fixture:{Path(args.fixture).name}"
    else:
        from zephyr_qtest.sandbox.zephyr.generator import generate

        size: Any = json.loads(args.size) if args.size.lstrip().startswith("{") else args.size
        document = generate(args.seed, size)
        run_id = args.run_id or f"generate:{args.seed}:{args.size}"
    print(f"fixture ready in {time.monotonic() - started:.1f} s", flush=True)
    if args.create_database:
        _create_database(args.database_url)
    projects = [key.strip() for key in args.projects.split(",")] if args.projects else None

    def report(table: str, rows: int, seconds: float) -> None:
        print(f"  {table:<22} {rows:>10,} rows  {seconds:6.1f} s", flush=True)

    loaded = time.monotonic()
    counts = load_raw(args.database_url, document, projects, run_id=run_id, progress=report)
    print(f"loaded {sum(counts.values()):,} rows in {time.monotonic() - loaded:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
