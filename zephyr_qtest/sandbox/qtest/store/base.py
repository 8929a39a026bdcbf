"""What every part of the qTest store shares: the SQLite file and its schema, ids and PIDs, transactions,
object rows, links, the domain error and the value helpers.

``StoreBase`` owns the one connection and the in-memory caches; each resource module of this package adds
its methods to it as a mixin, and ``QTestStore`` (``store/__init__.py``) puts them together.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from zephyr_qtest.sandbox.qtest import auth

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the state directory is not locked
    fcntl = None  # type: ignore[assignment]
from zephyr_qtest.sandbox.qtest.template import (
    DEFAULT_PASSWORD,
    USER_ACTIVE,
    USER_INACTIVE,
    USERS,
    UserSpec,
)

Json = dict[str, Any]

DB_FILE = "qtest.sqlite3"
SCHEMA_VERSION = "1"
DEFAULT_ATTACHMENT_MAX_BYTES = 50 * 1024 * 1024  # the SaaS limit (API_NOTES Q-8)

# API collection name → stored kind, for the kinds the sandbox keeps.
KIND_OF: dict[str, str] = {
    "modules": "module",
    "test-cases": "test-case",
    "releases": "release",
    "test-cycles": "test-cycle",
    "test-suites": "test-suite",
    "test-runs": "test-run",
    "test-logs": "test-log",
}
COLLECTION_OF: dict[str, str] = {kind: collection for collection, kind in KIND_OF.items()}
PID_PREFIX: dict[str, str] = {
    "module": "MD",
    "test-case": "TC",
    "release": "RL",
    "test-cycle": "CL",
    "test-suite": "TS",
    "test-run": "TR",
    "requirement": "RQ",
}
LABEL: dict[str, str] = {
    "project": "Project",
    "module": "Module",
    "test-case": "Test case",
    "release": "Release",
    "test-cycle": "Test cycle",
    "test-suite": "Test suite",
    "test-run": "Test run",
    "test-log": "Test log",
    "field": "Field",
    "user": "User",
    "test-step": "Test step",
    "test-step-log": "Test step log",
    "builds": "Build",
    "requirements": "Requirement",
    "requirement": "Requirement",
    "defects": "Defect",
    "attachment": "Attachment",
    "job": "Queue processing job",
}
# web_url: the tab and object code of the web app page an object opens on.
WEB_PAGE: dict[str, tuple[str, int]] = {
    "module": ("testdesign", 0),
    "test-case": ("testdesign", 1),
    "release": ("testplan", 3),
    "test-cycle": ("testexecution", 8),
    "test-suite": ("testexecution", 9),
    "test-run": ("testexecution", 3),
    # The swagger's RequirementResource.web_url example: ...#tab=requirements&object=5&id=...
    "requirement": ("requirements", 5),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    project_id INTEGER NOT NULL, prefix TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (project_id, prefix)
);
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    project_id INTEGER,
    parent_kind TEXT,
    parent_id INTEGER,
    link_id INTEGER,
    pid TEXT,
    name_norm TEXT,
    sort_key REAL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_kind ON objects (kind, project_id, id);
CREATE INDEX IF NOT EXISTS objects_scope ON objects (kind, project_id, parent_id, id);
CREATE INDEX IF NOT EXISTS objects_link ON objects (kind, link_id);
CREATE INDEX IF NOT EXISTS objects_pid ON objects (project_id, pid);
CREATE INDEX IF NOT EXISTS objects_name ON objects (kind, project_id, name_norm);
CREATE TABLE IF NOT EXISTS prop_index (
    object_id INTEGER NOT NULL, project_id INTEGER NOT NULL, kind TEXT NOT NULL,
    field_id INTEGER NOT NULL, value_norm TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS prop_lookup ON prop_index (project_id, kind, field_id, value_norm);
CREATE INDEX IF NOT EXISTS prop_object ON prop_index (object_id);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL, project_id INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_case ON versions (case_id, id);
CREATE TABLE IF NOT EXISTS refs (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, project_id INTEGER NOT NULL, owner_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_owner ON refs (owner_id);
CREATE TABLE IF NOT EXISTS attachments (
    id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, object_type TEXT NOT NULL, object_id INTEGER NOT NULL,
    name TEXT NOT NULL, content_type TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
    created_date TEXT NOT NULL, author_id INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS attachments_owner ON attachments (project_id, object_type, object_id);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, state TEXT NOT NULL, created REAL NOT NULL,
    polls INTEGER NOT NULL, user_id INTEGER NOT NULL, request TEXT NOT NULL, content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, kind TEXT NOT NULL, user_id INTEGER NOT NULL, refresh_token TEXT,
    expires_at REAL, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokens_refresh ON tokens (refresh_token);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token TEXT PRIMARY KEY, user_id INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
"""


class QTestError(Exception):
    """A domain error with the HTTP status to answer; the message names the object and field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message: str) -> QTestError:
    return QTestError(400, message)


# ---------------------------------------------------------------------------- values


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def format_time(moment: datetime | float) -> str:
    """qTest's date-time text: ``2026-05-29T10:00:00+00:00`` (milliseconds only when there are some)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "+00:00"


def as_int(value: Any) -> int | None:
    """An integer from JSON (an int, or a string of digits as Jackson would accept), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def text_field(body: Mapping[str, Any], key: str, what: str, *, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad(f"{what}.{key} must be a string, got {type(value).__name__}")
    return value


def name_field(body: Mapping[str, Any], what: str, *, required: bool = True) -> str | None:
    name = body.get("name")
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name.strip():
        raise bad(f"{what}.name is required (a non-empty string)")
    if len(name) > 500:
        raise bad(f"{what}.name is longer than 500 characters")
    return name


def require_object(body: Any, what: str) -> Json:
    if not isinstance(body, dict):
        raise bad(f"the {what} body must be a JSON object")
    return body


def page_bounds(page: int, size: int) -> tuple[int, int]:
    return size, (page - 1) * size


def version_text(version: Json) -> str:
    return f"{version['major']}.{version['minor']}"


class StoreBase:
    """The site's SQLite connection, caches and row helpers, which every resource mixin builds on."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        base_url: str,
        seed: int = 0,
        attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
        token_ttl_s: int = 3600,
        queue_polls: int = 2,
        queue_delay_s: float | None = 2.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = self._lock_state_dir()
        self.base_url = base_url.rstrip("/")
        self.api_url = f"{self.base_url}/api/v3"
        self.attachment_max_bytes = attachment_max_bytes
        self.token_ttl_s = token_ttl_s
        self.queue_polls = queue_polls
        self.queue_delay_s = queue_delay_s
        self.conn = sqlite3.connect(
            self.state_dir / DB_FILE, check_same_thread=False, isolation_level=None, timeout=10.0
        )
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "temp_store=MEMORY",
            "cache_size=-65536",
            "foreign_keys=OFF",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.executescript(SCHEMA)
        self._in_tx = False
        self._fields_cache: dict[tuple[int, str], list[Json]] = {}
        self._statuses_cache: dict[int, list[Json]] = {}
        self._tokens: dict[str, tuple[int, float | None, bool]] = {}
        self._pending_jobs: set[int] = set()
        self._init_site(seed)

    # ------------------------------------------------------------------ database plumbing

    def _lock_state_dir(self) -> IO[str] | None:
        """Hold an exclusive lock on the state directory: two servers on one site would mint the same ids."""
        handle = open(self.state_dir / "qtest.lock", "w")  # noqa: SIM115 - held until close()
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise RuntimeError(f"{self.state_dir} is in use by another qTest sandbox") from None
        return handle

    def close(self) -> None:
        """Close the database and release the state directory (the state stays on disk)."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One write transaction; nested calls join the outer one."""
        if self._in_tx:
            yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        start_id = self._next_id
        try:
            yield
            if self._next_id != start_id:
                self._set_meta("next_id", str(self._next_id))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._next_id = start_id
            self._fields_cache.clear()
            self._statuses_cache.clear()
            self._tokens.clear()
            self._load_pending_jobs()
            raise
        finally:
            self._in_tx = False

    def new_id(self) -> int:
        assert self._in_tx, "ids are drawn inside a transaction"
        self._next_id += 1
        return self._next_id

    def _new_pid(self, project_id: int, kind: str) -> str:
        prefix = PID_PREFIX[kind]
        row = self.conn.execute(
            "SELECT value FROM counters WHERE project_id = ? AND prefix = ?", (project_id, prefix)
        ).fetchone()
        value = (row[0] if row else 0) + 1
        self.conn.execute(
            "INSERT OR REPLACE INTO counters (project_id, prefix, value) VALUES (?, ?, ?)",
            (project_id, prefix, value),
        )
        return f"{prefix}-{value}"

    def _put(self, kind: str, body: Json) -> None:
        """Insert or replace an object; the indexed columns come from its internal keys."""
        self.conn.execute(
            "INSERT OR REPLACE INTO objects"
            " (id, kind, project_id, parent_kind, parent_id, link_id, pid, name_norm, sort_key, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                body["id"],
                kind,
                body.get("project_id"),
                body.get("parent_kind"),
                body.get("parent_id"),
                body.get("link_id"),
                body.get("pid"),
                (body.get("name") or "").lower() or None,
                body.get("sort_key"),
                dumps(body),
            ),
        )

    def _get(self, kind: str, oid: int, project_id: int | None = None) -> Json | None:
        row = self.conn.execute("SELECT kind, project_id, body FROM objects WHERE id = ?", (oid,)).fetchone()
        if row is None or row[0] != kind or (project_id is not None and row[1] != project_id):
            return None
        return json.loads(row[2])

    def _require(self, kind: str, oid: int, project_id: int) -> Json:
        body = self._get(kind, oid, project_id)
        if body is None:
            raise QTestError(404, f"{LABEL[kind]} {oid} does not exist in project {project_id}")
        return body

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[Json]:
        return [json.loads(row[0]) for row in self.conn.execute(sql, params)]

    def _children(self, kind: str, project_id: int, parent_id: int) -> list[Json]:
        return self._select(
            "SELECT body FROM objects WHERE kind = ? AND project_id = ? AND parent_id = ? ORDER BY id",
            (kind, project_id, parent_id),
        )

    def _count(self, kind: str, project_id: int, parent_id: int | None = None) -> int:
        if parent_id is None:
            sql, params = "SELECT COUNT(*) FROM objects WHERE kind = ? AND project_id = ?", (kind, project_id)
        else:
            sql = "SELECT COUNT(*) FROM objects WHERE kind = ? AND project_id = ? AND parent_id = ?"
            params = (kind, project_id, parent_id)  # type: ignore[assignment]
        return int(self.conn.execute(sql, params).fetchone()[0])

    def _by_pid(self, kind: str, project_id: int, pid: str) -> Json | None:
        row = self.conn.execute(
            "SELECT kind, body FROM objects WHERE project_id = ? AND pid = ?", (project_id, pid.upper())
        ).fetchone()
        return json.loads(row[1]) if row and row[0] == kind else None

    def _delete_rows(self, ids: Iterable[int]) -> None:
        id_list = list(ids)
        for start in range(0, len(id_list), 500):
            chunk = id_list[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self.conn.execute(f"DELETE FROM objects WHERE id IN ({marks})", chunk)
            self.conn.execute(f"DELETE FROM prop_index WHERE object_id IN ({marks})", chunk)
            self.conn.execute(f"DELETE FROM attachments WHERE object_id IN ({marks})", chunk)
            self.conn.execute(f"DELETE FROM refs WHERE owner_id IN ({marks})", chunk)

    # ------------------------------------------------------------------ the site

    def _init_site(self, seed: int) -> None:
        if self._meta("schema") is None:
            # A new site: the id sequence starts at a seed-derived seven-digit number.
            base = 1_000_000 * (2 + seed % 7) + (seed * 7919) % 400_000 + 1000
            self.conn.execute("BEGIN IMMEDIATE")
            self._set_meta("schema", SCHEMA_VERSION)
            self._set_meta("seed", str(seed))
            self._set_meta("created", format_time(time.time()))
            self._next_id = base
            self._in_tx = True
            try:
                for spec in USERS:
                    self._put("user", _user_body(self.new_id(), spec))
                admin = self._users()[0]
                token = auth.derive_api_token(seed)
                self.conn.execute(
                    "INSERT INTO tokens (token, kind, user_id, expires_at) VALUES (?, 'api', ?, NULL)",
                    (token, admin["id"]),
                )
                self._set_meta("api_token", token)
                self._set_meta("next_id", str(self._next_id))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            finally:
                self._in_tx = False
        elif self._meta("schema") != SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.state_dir / DB_FILE} was written by another version of the sandbox "
                f"(schema {self._meta('schema')}, expected {SCHEMA_VERSION}); use another state directory"
            )
        self._next_id = int(self._meta("next_id") or 0)
        self.api_token = self._meta("api_token") or ""
        self.site_seed = int(self._meta("seed") or 0)
        self._load_pending_jobs()
        self._add_missing_template_users()

    def _add_missing_template_users(self) -> None:
        """A site an older sandbox made gets the template's newer users (the company's people), so that a
        kept state directory (the demo's) matches the Jira sandbox's e-mail addresses too."""
        known = {str(user["username"]).lower() for user in self._users()}
        missing = [spec for spec in USERS if spec.username.lower() not in known]
        if missing:
            with self.tx():
                for spec in missing:
                    self._put("user", _user_body(self.new_id(), spec))

    # ------------------------------------------------------------------ links

    def _self_link(self, project_id: int, collection: str, oid: int) -> list[Json]:
        return [{"rel": "self", "href": f"{self.api_url}/projects/{project_id}/{collection}/{oid}"}]

    def _web_url(self, project_id: int, kind: str, oid: int) -> str:
        tab, code = WEB_PAGE[kind]
        return f"{self.base_url}/p/{project_id}/portal/project#tab={tab}&object={code}&id={oid}"


def _user_body(user_id: int, spec: UserSpec) -> Json:
    """The stored user of a template's ``UserSpec`` (user name = e-mail address, the sandbox's password)."""
    return {
        "id": user_id,
        "username": spec.username,
        "email": spec.username,
        "first_name": spec.first_name,
        "last_name": spec.last_name,
        "status": USER_ACTIVE if spec.active else USER_INACTIVE,
        "admin": spec.admin,
        "password": DEFAULT_PASSWORD,
        "name": spec.username,
    }
