"""The qTest sandbox's tenant: every object of every project, persisted in SQLite under ``state_dir``.

One SQLite file (``state_dir/qtest.sqlite3``, WAL mode, ``synchronous=NORMAL``) holds the site: users and
tokens, projects with their field settings and execution statuses, and every artifact (modules, test cases
and their versions, releases, test cycles, test suites, test runs, test logs, attachments, queued bulk
submissions). Objects are stored as JSON text in one ``objects`` table keyed by id, with the columns the
API filters on (kind, project, parent, pid, name, a sort key, a linked id) indexed beside the JSON; set
properties go to ``prop_index`` so a search by "Zephyr Key" is an index lookup, not a scan. A restarted
server on the same ``state_dir`` sees everything; a write is committed before its answer is sent (so a lost
answer loses nothing but the answer).

Ids come from one site-wide sequence that starts at a seed-derived seven-digit number, so ids are unique
across kinds (a test case id used as a test run id is a 404, not another object) and look like a real
tenant's rather than 1, 2, 3. PIDs (``TC-1``, ``MD-2``, ``RL-1``, ``CL-3``, ``TS-1``, ``TR-2``) count per
project and kind.

The store is used from one thread (the server's event loop); it is not thread-safe. Every method that
changes data runs inside ``tx()``: validation first, then writes, then one commit; a failure rolls back
and reloads the in-memory caches. Domain errors are ``QTestError(status, message)``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
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
from zephyr_qtest.sandbox.qtest.search import Query, QueryError, Term, evaluate, parse_query
from zephyr_qtest.sandbox.qtest.template import (
    AUTOMATION_STATUS_MAP,
    CREATED_VIA_API_MODULE,
    CUSTOM_FIELD_OBJECT_TYPES,
    DATA_TYPES,
    DATE_PICKER,
    DATE_TIME,
    DEFAULT_PASSWORD,
    EXECUTION_STATUSES,
    FIELD_OBJECT_TYPES,
    MULTIPLE_TYPES,
    NUMBER,
    PICKLIST_TYPES,
    TEMPLATE,
    USER_ACTIVE,
    USER_INACTIVE,
    USER_LIST,
    USERS,
)

Json = dict[str, Any]

DB_FILE = "qtest.sqlite3"
SCHEMA_VERSION = "1"
DEFAULT_ATTACHMENT_MAX_BYTES = 50 * 1024 * 1024  # the SaaS limit (API_NOTES Q-8)

# Object types of the attachment endpoints (the swagger's enum). Test runs are not among them.
ATTACHMENT_TYPES: tuple[str, ...] = (
    "releases",
    "builds",
    "requirements",
    "test-cases",
    "test-logs",
    "test-steps",
    "test-step-logs",
    "defects",
)
SEARCH_TYPES: tuple[str, ...] = (
    "releases",
    "requirements",
    "test-cases",
    "test-runs",
    "test-suites",
    "test-cycles",
    "test-logs",
    "builds",
    "defects",
)
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
    "defects": "Defect",
    "attachment": "Attachment",
    "job": "Queue processing job",
}
# Which containers may hold what (parentType values of the API).
CYCLE_PARENTS: tuple[str, ...] = ("root", "release", "test-cycle")
RUN_PARENTS: tuple[str, ...] = ("root", "release", "test-cycle", "test-suite")
# web_url: the tab and object code of the web app page an object opens on.
_WEB_PAGE: dict[str, tuple[str, int]] = {
    "module": ("testdesign", 0),
    "test-case": ("testdesign", 1),
    "release": ("testplan", 3),
    "test-cycle": ("testexecution", 8),
    "test-suite": ("testexecution", 9),
    "test-run": ("testexecution", 3),
}
JOB_WAITING, JOB_PROCESSING, JOB_SUCCESS, JOB_FAILED = "IN_WAITING", "IN_PROCESSING", "SUCCESS", "FAILED"
AUTOMATION_SUITE = "Automation Test Suite"

_SCHEMA = """
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


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 date or date-time (``Z`` or an offset; none means UTC), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    """An integer from JSON (an int, or a string of digits as Jackson would accept), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _text(body: Mapping[str, Any], key: str, what: str, *, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad(f"{what}.{key} must be a string, got {type(value).__name__}")
    return value


def _name(body: Mapping[str, Any], what: str, *, required: bool = True) -> str | None:
    name = body.get("name")
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name.strip():
        raise bad(f"{what}.name is required (a non-empty string)")
    if len(name) > 500:
        raise bad(f"{what}.name is longer than 500 characters")
    return name


def _require_object(body: Any, what: str) -> Json:
    if not isinstance(body, dict):
        raise bad(f"the {what} body must be a JSON object")
    return body


def _page_bounds(page: int, size: int) -> tuple[int, int]:
    return size, (page - 1) * size


def _version_text(version: Json) -> str:
    return f"{version['major']}.{version['minor']}"


class QTestStore:
    """Persistence and domain rules of one sandbox site. See the module docstring."""

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
        self.conn.executescript(_SCHEMA)
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
                    user_id = self.new_id()
                    user = {
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
                    self._put("user", user)
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

    def _load_pending_jobs(self) -> None:
        self._pending_jobs = {
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM jobs WHERE state IN (?, ?)", (JOB_WAITING, JOB_PROCESSING)
            )
        }

    # ------------------------------------------------------------------ users and tokens

    def _users(self) -> list[Json]:
        return self._select("SELECT body FROM objects WHERE kind = 'user' ORDER BY id")

    def admin_user(self) -> Json:
        return self._users()[0]

    def user(self, user_id: int) -> Json | None:
        return self._get("user", user_id)

    def render_user(self, user: Json, *, extension: bool = False) -> Json:
        out: Json = {
            "links": [{"rel": "self", "href": f"{self.api_url}/users/{user['id']}"}],
            "id": user["id"],
            "username": user["username"],
            "email": user["email"],
            "first_name": user["first_name"],
            "last_name": user["last_name"],
            "status": user["status"],
        }
        if not extension:
            out["user_group_ids"] = []
        return out

    def users(self, *, include_inactive: bool = True) -> list[Json]:
        return [
            self.render_user(user)
            for user in self._users()
            if include_inactive or user["status"] == USER_ACTIVE
        ]

    def search_users(self, username: str | None, *, include_inactive: bool) -> list[Json]:
        needle = (username or "").lower()
        return [
            self.render_user(user, extension=True)
            for user in self._users()
            if (include_inactive or user["status"] == USER_ACTIVE) and needle in user["username"].lower()
        ]

    def authenticate(self, token: str) -> int | None:
        """The user id a bearer token belongs to, or None (unknown, expired or revoked)."""
        known = self._tokens.get(token)
        if known is None:
            row = self.conn.execute(
                "SELECT user_id, expires_at, revoked FROM tokens WHERE token = ?", (token,)
            ).fetchone()
            if row is None:
                return None
            known = (row[0], row[1], bool(row[2]))
            if len(self._tokens) < 10_000:
                self._tokens[token] = known
        user_id, expires_at, revoked = known
        if revoked or (expires_at is not None and expires_at <= time.time()):
            return None
        return user_id

    def _mint(self, user_id: int, refresh: str | None = None) -> Json:
        access = auth.new_token()
        if refresh is None:
            refresh = auth.new_token()
            self.conn.execute("INSERT INTO refresh_tokens (token, user_id) VALUES (?, ?)", (refresh, user_id))
        expires_at = time.time() + self.token_ttl_s
        self.conn.execute(
            "INSERT INTO tokens (token, kind, user_id, refresh_token, expires_at) VALUES (?, 'oauth', ?, ?, ?)",
            (access, user_id, refresh, expires_at),
        )
        return {
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": refresh,
            "scope": auth.SCOPE,
            "expires_in": self.token_ttl_s,
            "agent": auth.AGENT,
        }

    def login(self, username: str | None, password: str | None) -> Json:
        """The password grant: a new access token, or a 400 ``invalid_grant``-style error."""
        for user in self._users():
            if username is not None and user["username"].lower() == username.lower():
                if user["status"] != USER_ACTIVE:
                    raise bad("User account is inactive")
                if password != user["password"]:
                    break
                with self.tx():
                    return self._mint(user["id"])
        raise bad("Bad credentials")

    def refresh(self, refresh_token: str | None) -> Json:
        """The refresh grant: a new access token for the same refresh token (which stays valid, as with
        Spring OAuth2's defaults); the access token it replaces stops working."""
        row = self.conn.execute(
            "SELECT user_id, revoked FROM refresh_tokens WHERE token = ?", (refresh_token or "",)
        ).fetchone()
        if row is None or row[1]:
            raise bad(f"Invalid refresh token: {(refresh_token or '')[:8]}...")
        with self.tx():
            self.conn.execute("UPDATE tokens SET revoked = 1 WHERE refresh_token = ?", (refresh_token,))
            self._tokens.clear()
            return self._mint(row[0], refresh_token)

    def revoke(self, token: str) -> None:
        """Log out: the access token and its refresh token stop working (the API token too, if named)."""
        with self.tx():
            row = self.conn.execute("SELECT refresh_token FROM tokens WHERE token = ?", (token,)).fetchone()
            self.conn.execute("UPDATE tokens SET revoked = 1 WHERE token = ?", (token,))
            if row is not None and row[0]:
                self.conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE token = ?", (row[0],))
        self._tokens.pop(token, None)

    def token_status(self, token: str) -> Json | None:
        row = self.conn.execute("SELECT expires_at, revoked FROM tokens WHERE token = ?", (token,)).fetchone()
        if row is None or row[1]:
            return None
        if row[0] is None:
            return {"expiration": 0, "validityInMilliseconds": 0}  # "0 means it never expires"
        remaining = row[0] - time.time()
        if remaining <= 0:
            return None
        return {"expiration": int(row[0] * 1000), "validityInMilliseconds": int(remaining * 1000)}

    # ------------------------------------------------------------------ links

    def _self_link(self, project_id: int, collection: str, oid: int) -> list[Json]:
        return [{"rel": "self", "href": f"{self.api_url}/projects/{project_id}/{collection}/{oid}"}]

    def _web_url(self, project_id: int, kind: str, oid: int) -> str:
        tab, code = _WEB_PAGE[kind]
        return f"{self.base_url}/p/{project_id}/portal/project#tab={tab}&object={code}&id={oid}"

    # ------------------------------------------------------------------ projects

    def _project(self, project_id: int) -> Json:
        project = self._get("project", project_id)
        if project is None:
            raise QTestError(404, f"Project {project_id} does not exist")
        return project

    def require_project(self, project_id: int) -> None:
        self._project(project_id)

    def render_project(self, project: Json) -> Json:
        users = {user["id"]: user for user in self._users()}
        out: Json = {
            "links": [{"rel": "self", "href": f"{self.api_url}/projects/{project['id']}"}],
            "id": project["id"],
            "name": project["name"],
            "description": project["description"],
            "status_id": project["status_id"],
            "start_date": project["start_date"],
            "admins": [users[a]["username"] for a in project["admin_ids"] if a in users],
            "admin_ids": project["admin_ids"],
            "sample": False,
            "defect_tracking_systems": [],
            "date_format": project["date_format"],
            "automation": True,
            "template_id": project["template_id"],
            "uuid": project["uuid"],
        }
        if project.get("end_date"):
            out["end_date"] = project["end_date"]
        return out

    def projects(self) -> list[Json]:
        return [
            self.render_project(p)
            for p in self._select("SELECT body FROM objects WHERE kind = 'project' ORDER BY id")
        ]

    def project(self, project_id: int) -> Json:
        return self.render_project(self._project(project_id))

    def create_project(self, body: Any, user_id: int) -> Json:
        body = _require_object(body, "project")
        name = _name(body, "project")
        assert name is not None
        for existing in self._select("SELECT body FROM objects WHERE kind = 'project'"):
            if existing["name"].lower() == name.lower():
                raise bad(
                    f"project.name: a project named '{existing['name']}' already exists (id {existing['id']})"
                )
        dates: dict[str, str | None] = {}
        for key in ("start_date", "end_date"):
            raw = body.get(key)
            if raw is None:
                dates[key] = None
                continue
            moment = parse_time(raw)
            if moment is None:
                raise bad(f"project.{key} must be an ISO 8601 date-time, got {raw!r}")
            dates[key] = format_time(moment)
        admin_ids = sorted({user_id, self.admin_user()["id"]})
        now = format_time(time.time())
        with self.tx():
            project_id = self.new_id()
            project = {
                "id": project_id,
                "name": name,
                "description": _text(body, "description", "project", default="") or "",
                "status_id": 301,
                "start_date": dates["start_date"] or now,
                "end_date": dates["end_date"],
                "admin_ids": admin_ids,
                "date_format": _text(body, "date_format", "project", default="MM/dd/yyyy"),
                "template_id": 1,
                "uuid": _text(body, "uuid", "project", default=None) or f"sandbox-{project_id}",
                "created_date": now,
            }
            self._put("project", project)
            self._instantiate_template(project_id)
        return self.render_project(project)

    def _instantiate_template(self, project_id: int) -> None:
        """Field settings and execution statuses of a new project, with ids fresh from the sequence."""
        statuses: list[Json] = []
        for order, spec in enumerate(EXECUTION_STATUSES, 1):
            status = {
                "id": self.new_id(),
                "project_id": project_id,
                "name": spec.name,
                "is_default": spec.is_default,
                "color": spec.color,
                "active": True,
                "order": order,
            }
            self._put("status", status)
            statuses.append(status)
        for object_type, specs in TEMPLATE.items():
            for order, spec in enumerate(specs, 1):
                field_id = self.new_id()
                allowed: list[Json] = []
                if spec.statuses:
                    allowed = [
                        {
                            "value": s["id"],
                            "label": s["name"],
                            "order": i,
                            "is_default": s["is_default"],
                            "is_active": True,
                            "color": s["color"],
                        }
                        for i, s in enumerate(statuses, 1)
                    ]
                elif spec.data_type in PICKLIST_TYPES:
                    allowed = [
                        {
                            "value": self.new_id(),
                            "label": label,
                            "order": i,
                            "is_default": label == spec.default,
                            "is_active": True,
                        }
                        for i, label in enumerate(spec.values, 1)
                    ]
                default: str | None = spec.default
                if allowed and spec.default is not None:
                    default = next(str(v["value"]) for v in allowed if v["label"] == spec.default)
                field = {
                    "id": field_id,
                    "project_id": project_id,
                    "parent_kind": object_type,
                    "label": spec.label,
                    "required": spec.required,
                    "constrained": spec.data_type in PICKLIST_TYPES,
                    "order": order,
                    "multiple": spec.multiple,
                    "data_type": spec.data_type,
                    "searchable": True,
                    "default_value": default,
                    "system_field": spec.system,
                    "original_name": spec.label,
                    "is_active": True,
                    "allowed_values": allowed,
                    "attribute": spec.attribute,
                }
                self._put("field", field)
        self._fields_cache.clear()
        self._statuses_cache.pop(project_id, None)

    # ------------------------------------------------------------------ fields and properties

    def _fields(self, project_id: int, object_type: str) -> list[Json]:
        key = (project_id, object_type)
        cached = self._fields_cache.get(key)
        if cached is None:
            cached = self._select(
                "SELECT body FROM objects WHERE kind = 'field' AND project_id = ? AND parent_kind = ?"
                " ORDER BY id",
                (project_id, object_type),
            )
            cached.sort(key=lambda f: (f["order"], f["id"]))
            self._fields_cache[key] = cached
        return cached

    def _field_map(self, project_id: int, object_type: str) -> dict[int, Json]:
        return {field["id"]: field for field in self._fields(project_id, object_type)}

    def _field_by_label(self, project_id: int, object_type: str, label: str) -> Json | None:
        wanted = label.lower()
        for field in self._fields(project_id, object_type):
            if field["label"].lower() == wanted:
                return field
        return None

    def _allowed_values(self, field: Json) -> list[Json]:
        """A field's allowed values; a user list's are the site's users."""
        if field["data_type"] == USER_LIST:
            return [
                {
                    "value": user["id"],
                    "label": f"{user['first_name']} {user['last_name']}",
                    "order": order,
                    "is_default": False,
                    "is_active": user["status"] == USER_ACTIVE,
                }
                for order, user in enumerate(self._users(), 1)
            ]
        return field["allowed_values"]

    def render_field(self, field: Json, *, swagger: bool = False) -> Json:
        project_id, object_type = field["project_id"], field["parent_kind"]
        out: Json = {
            "links": [
                {
                    "rel": "self",
                    "href": f"{self.api_url}/projects/{project_id}/settings/{object_type}/fields/{field['id']}",
                }
            ],
            "id": field["id"],
            "label": field["label"],
            "required": field["required"],
            "constrained": field["constrained"],
            "order": field["order"],
            "multiple": field["multiple"],
            "data_type": field["data_type"],
            "searchable": field["searchable"],
            "system_field": field["system_field"],
            "original_name": field["original_name"],
            "is_active": field["is_active"],
        }
        if field.get("default_value") is not None:
            out["default_value"] = field["default_value"]
        if swagger:
            out["attribute_type"] = DATA_TYPES.get(field["data_type"], "Unknown")
        elif field["data_type"] in PICKLIST_TYPES or field["data_type"] == USER_LIST:
            out["allowed_values"] = [self._render_allowed(v) for v in self._allowed_values(field)]
        return out

    @staticmethod
    def _render_allowed(value: Json) -> Json:
        out = {
            key: value[key] for key in ("value", "label", "order", "is_default", "is_active") if key in value
        }
        if value.get("color"):
            out["color"] = value["color"]
        return out

    @staticmethod
    def _check_field_type(object_type: str, *, custom: bool = False) -> None:
        allowed = CUSTOM_FIELD_OBJECT_TYPES if custom else FIELD_OBJECT_TYPES
        if object_type not in allowed:
            raise bad(f"objectType '{object_type}' is not one of {', '.join(allowed)}")

    def fields(self, project_id: int, object_type: str, *, include_inactive: bool = False) -> list[Json]:
        self._project(project_id)
        self._check_field_type(object_type)
        return [
            self.render_field(f)
            for f in self._fields(project_id, object_type)
            if include_inactive or f["is_active"]
        ]

    def _require_field(self, project_id: int, object_type: str, field_id: int) -> Json:
        self._project(project_id)
        self._check_field_type(object_type)
        field = self._field_map(project_id, object_type).get(field_id)
        if field is None:
            raise QTestError(
                404, f"Field {field_id} does not exist among the {object_type} fields of project {project_id}"
            )
        return field

    def field(self, project_id: int, object_type: str, field_id: int) -> Json:
        return self.render_field(self._require_field(project_id, object_type, field_id), swagger=True)

    def _parse_allowed_values(self, raw: Any, what: str, existing: Sequence[Json]) -> list[Json]:
        if not isinstance(raw, list):
            raise bad(f"{what} must be an array of allowed values")
        if len(raw) > 100:
            raise bad(f"{what}: at most 100 allowed values can be created at once, got {len(raw)}")
        labels = {v["label"].lower() for v in existing}
        parsed: list[Json] = []
        for index, item in enumerate(raw):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("label"), str)
                or not item["label"].strip()
            ):
                raise bad(f"{what}[{index}].label is required (a non-empty string)")
            label = item["label"]
            if label.lower() in labels:
                raise bad(f"{what}[{index}].label '{label}' already exists")
            labels.add(label.lower())
            value: Json = {
                "value": self.new_id(),
                "label": label,
                "order": len(existing) + len(parsed) + 1,
                "is_default": bool(item.get("is_default") or item.get("default")),
                "is_active": item.get("is_active", True) is not False,
            }
            if isinstance(item.get("color"), str):
                value["color"] = item["color"]
            parsed.append(value)
        return parsed

    def create_field(self, project_id: int, object_type: str, body: Any) -> Json:
        self._project(project_id)
        self._check_field_type(object_type, custom=True)
        body = _require_object(body, "field")
        label = body.get("label")
        if not isinstance(label, str) or not label.strip():
            raise bad("field.label is required (a non-empty string)")
        if self._field_by_label(project_id, object_type, label) is not None:
            raise bad(
                f"field.label: a {object_type} field labelled '{label}' already exists in project {project_id}"
            )
        data_type = _int(body.get("data_type"))
        if data_type not in DATA_TYPES:
            codes = ", ".join(f"{code} ({name})" for code, name in DATA_TYPES.items())
            raise bad(
                f"field.data_type is required and must be one of {codes}; got {body.get('data_type')!r}"
            )
        multiple = body.get("multiple", data_type in MULTIPLE_TYPES)
        if data_type in MULTIPLE_TYPES and multiple is not True:
            raise bad(f"field.multiple must be true for data_type {data_type} ({DATA_TYPES[data_type]})")
        with self.tx():
            allowed: list[Json] = []
            if body.get("allowed_values") is not None:
                if data_type not in PICKLIST_TYPES:
                    raise bad(
                        f"field.allowed_values: a {DATA_TYPES[data_type]} field takes no allowed values"
                    )
                allowed = self._parse_allowed_values(body["allowed_values"], "field.allowed_values", [])
            default = next((str(v["value"]) for v in allowed if v["is_default"]), None)
            field = {
                "id": self.new_id(),
                "project_id": project_id,
                "parent_kind": object_type,
                "label": label,
                "required": body.get("required") is True,
                "constrained": data_type in PICKLIST_TYPES,
                "order": len(self._fields(project_id, object_type)) + 1,
                "multiple": bool(multiple),
                "data_type": data_type,
                "searchable": body.get("searchable", True) is not False,
                "default_value": default,
                "system_field": False,
                "original_name": label,
                "is_active": body.get("is_active", True) is not False,
                "allowed_values": allowed,
                "attribute": None,
            }
            self._put("field", field)
            self._fields_cache.pop((project_id, object_type), None)
        return self.render_field(field)

    def allowed_values(self, project_id: int, object_type: str, field_id: int) -> list[Json]:
        field = self._require_field(project_id, object_type, field_id)
        if field["data_type"] not in PICKLIST_TYPES and field["data_type"] != USER_LIST:
            raise bad(
                f"Field '{field['label']}' ({field_id}) is a {DATA_TYPES[field['data_type']]}: it has no allowed values"
            )
        return [self._render_allowed(v) for v in self._allowed_values(field)]

    def add_allowed_values(self, project_id: int, object_type: str, field_id: int, body: Any) -> Json:
        field = self._require_field(project_id, object_type, field_id)
        if field["data_type"] not in PICKLIST_TYPES:
            raise bad(
                f"Field '{field['label']}' ({field_id}) is a {DATA_TYPES[field['data_type']]}: it takes no allowed values"
            )
        with self.tx():
            added = self._parse_allowed_values(body, "allowed values", field["allowed_values"])
            field["allowed_values"] = [*field["allowed_values"], *added]
            self._put("field", field)
            self._fields_cache.pop((project_id, object_type), None)
        items = [self._render_allowed(v) for v in added]
        return {"links": [], "total": len(items), "items": items}

    def _statuses(self, project_id: int) -> list[Json]:
        cached = self._statuses_cache.get(project_id)
        if cached is None:
            cached = self._select(
                "SELECT body FROM objects WHERE kind = 'status' AND project_id = ? ORDER BY id", (project_id,)
            )
            self._statuses_cache[project_id] = cached
        return cached

    def _status(self, project_id: int, status_id: int) -> Json | None:
        return next((s for s in self._statuses(project_id) if s["id"] == status_id), None)

    def render_status(self, status: Json) -> Json:
        return {k: status[k] for k in ("id", "name", "is_default", "color", "active")}

    def execution_statuses(self, project_id: int) -> list[Json]:
        self._project(project_id)
        return [self.render_status(s) for s in self._statuses(project_id)]

    def _parse_status(self, project_id: int, raw: Any, what: str) -> Json:
        """A ``{"id": N}`` status object naming one of the project's execution statuses."""
        if not isinstance(raw, dict) or _int(raw.get("id")) is None:
            raise bad(
                f'{what} must be an object {{"id": <execution status id>}} (see '
                f"GET /api/v3/projects/{project_id}/test-runs/execution-statuses), got {raw!r}"
            )
        status = self._status(project_id, _int(raw["id"]) or 0)
        if status is None:
            known = ", ".join(f"{s['id']} ({s['name']})" for s in self._statuses(project_id))
            raise bad(
                f"{what}.id {raw['id']} is not an execution status of project {project_id}; known: {known}"
            )
        return status

    def _normalize_value(self, field: Json, raw: Any, what: str) -> str:
        """A property value as stored (always a string; "" clears), after checking it fits the field."""
        label = f"field '{field['label']}' ({field['id']})"
        if raw is None:
            return ""
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if isinstance(raw, int | float):
            raw = str(raw)
        if isinstance(raw, list) and field["data_type"] in MULTIPLE_TYPES:
            raw = dumps(raw)
        if not isinstance(raw, str):
            raise bad(f"{what}: the value of {label} must be a string, got {type(raw).__name__}")
        text = raw.strip()
        if text == "":
            return ""
        data_type = field["data_type"]
        if data_type in PICKLIST_TYPES or data_type == USER_LIST:
            choices = {v["value"]: v for v in self._allowed_values(field)}
            many = data_type in MULTIPLE_TYPES or field["multiple"]
            parts = self._split_multi(text, label, what) if many else [text]
            ids: list[int] = []
            for part in parts:
                value = _int(part)
                if value is None or value not in choices:
                    shown = ", ".join(f"{v['value']} ({v['label']})" for v in list(choices.values())[:12])
                    kind = "a user id of the site" if data_type == USER_LIST else "an allowed value id"
                    raise bad(f"{what}: '{part}' is not {kind} of {label}; allowed: {shown}")
                if value not in ids:
                    ids.append(value)
            return dumps(ids) if many else str(ids[0])
        if data_type in (DATE_PICKER, DATE_TIME):
            moment = parse_time(text)
            if moment is None:
                raise bad(f"{what}: the value of {label} must be an ISO 8601 date-time, got {text!r}")
            return format_time(moment)
        if data_type == NUMBER:
            try:
                float(text)
            except ValueError:
                raise bad(f"{what}: the value of {label} must be a number, got {text!r}") from None
            return text
        return raw

    @staticmethod
    def _split_multi(text: str, label: str, what: str) -> list[str]:
        """The multi-select encodings accepted: ``[1,2]`` (JSON array), ``1,2`` and a single ``1``."""
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise bad(f"{what}: the value of {label} is not a JSON array of ids: {text!r}") from None
            if not isinstance(items, list):
                raise bad(f"{what}: the value of {label} must be a JSON array of ids, got {text!r}")
            return [str(item).strip() for item in items]
        return [part.strip() for part in text.split(",") if part.strip()]

    def _parse_properties(
        self, project_id: int, object_type: str, raw: Any, what: str, *, required: bool
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Checked ``properties``: (values by field id, attribute values such as ``description``)."""
        if raw is None:
            if required:
                raise bad(f"{what}.properties is required (an array, possibly empty)")
            return {}, {}
        if not isinstance(raw, list):
            raise bad(f"{what}.properties must be an array of {{field_id, field_value}}")
        fields = self._field_map(project_id, object_type)
        values: dict[str, str] = {}
        attributes: dict[str, str] = {}
        for index, item in enumerate(raw):
            where = f"{what}.properties[{index}]"
            if not isinstance(item, dict):
                raise bad(f"{where} must be an object {{field_id, field_value}}")
            field_id = _int(item.get("field_id"))
            if field_id is None:
                raise bad(f"{where}.field_id is required (a number)")
            field = fields.get(field_id)
            if field is None:
                raise bad(
                    f"{where}: field_id {field_id} is not a {object_type} field of project {project_id}"
                )
            if not field["is_active"]:
                raise bad(f"{where}: field '{field['label']}' ({field_id}) is inactive")
            value = self._normalize_value(field, item.get("field_value"), where)
            if field.get("attribute"):
                attributes[field["attribute"]] = value
            else:
                values[str(field_id)] = value
        return values, attributes

    def _with_defaults(self, project_id: int, object_type: str, values: dict[str, str]) -> dict[str, str]:
        out = dict(values)
        for field in self._fields(project_id, object_type):
            key = str(field["id"])
            if key not in out and field.get("default_value") and not field.get("attribute"):
                out[key] = field["default_value"]
        return out

    def _value_name(self, field: Json, value: str) -> str | None:
        if value == "":
            return None
        if field["data_type"] in PICKLIST_TYPES or field["data_type"] == USER_LIST:
            labels = {str(v["value"]): v["label"] for v in self._allowed_values(field)}
            if value.startswith("["):
                try:
                    ids = json.loads(value)
                except json.JSONDecodeError:
                    return None
                return ", ".join(labels.get(str(i), str(i)) for i in ids)
            return labels.get(value)
        return None

    def render_properties(self, project_id: int, object_type: str, values: Mapping[str, str]) -> list[Json]:
        """Every active field of the type (empty ones with ``field_value: ""``), in field order."""
        out: list[Json] = []
        for field in self._fields(project_id, object_type):
            if not field["is_active"] or field.get("attribute"):
                continue
            value = values.get(str(field["id"]), "")
            prop: Json = {"field_id": field["id"], "field_name": field["label"], "field_value": value}
            name = self._value_name(field, value)
            if name is not None:
                prop["field_value_name"] = name
            out.append(prop)
        return out

    def _index_properties(self, kind: str, project_id: int, oid: int, values: Mapping[str, str]) -> None:
        """Rewrite the search index rows of one object: one row per value (each id of a multi-select)."""
        self.conn.execute("DELETE FROM prop_index WHERE object_id = ?", (oid,))
        fields = self._field_map(project_id, _PROPERTY_TYPE[kind])
        rows: list[tuple[int, int, str, int, str]] = []
        for key, value in values.items():
            if value == "":
                continue
            field = fields.get(int(key))
            if (
                field is not None
                and value.startswith("[")
                and (field["multiple"] or field["data_type"] in MULTIPLE_TYPES)
            ):
                try:
                    parts = [str(v) for v in json.loads(value)]
                except json.JSONDecodeError:
                    parts = [value]
            else:
                parts = [value]
            rows.extend((oid, project_id, kind, int(key), part.lower()) for part in parts)
        if rows:
            self.conn.executemany(
                "INSERT INTO prop_index (object_id, project_id, kind, field_id, value_norm) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    # ------------------------------------------------------------------ modules

    def render_module(self, module: Json, *, descendants: bool = False) -> Json:
        project_id = module["project_id"]
        out: Json = {
            "links": self._self_link(project_id, "modules", module["id"]),
            "id": module["id"],
            "name": module["name"],
            "order": module["order"],
            "pid": module["pid"],
            "created_date": module["created_date"],
            "last_modified_date": module["last_modified_date"],
            "description": module["description"],
            "shared": False,
            "projects_shared_to": [],
            "recursive": False,
        }
        if module["parent_id"]:
            out["parent_id"] = module["parent_id"]
        if descendants:
            out["children"] = [
                self.render_module(child, descendants=True)
                for child in self._children("module", project_id, module["id"])
            ]
        return out

    def _module(self, project_id: int, module_id: int) -> Json:
        self._project(project_id)
        return self._require("module", module_id, project_id)

    def modules(
        self, project_id: int, *, parent_id: int | None, search: str | None, descendants: bool
    ) -> list[Json]:
        self._project(project_id)
        if parent_id:
            self._module(project_id, parent_id)
        if search:
            # Free text over the names of every module under the parent (or the whole tree).
            needle = search.lower()
            scope = self._subtree_ids("module", project_id, parent_id or 0)
            found = [
                m
                for m in self._select(
                    "SELECT body FROM objects WHERE kind = 'module' AND project_id = ? ORDER BY id",
                    (project_id,),
                )
                if m["id"] in scope and needle in m["name"].lower()
            ]
            return [self.render_module(m, descendants=descendants) for m in found]
        children = self._children("module", project_id, parent_id or 0)
        children.sort(key=lambda m: (m["order"], m["id"]))
        return [self.render_module(m, descendants=descendants) for m in children]

    def _subtree_ids(self, kind: str, project_id: int, root_id: int) -> set[int]:
        found: set[int] = set()
        frontier = [root_id]
        while frontier:
            current = frontier.pop()
            for row in self.conn.execute(
                "SELECT id FROM objects WHERE kind = ? AND project_id = ? AND parent_id = ?",
                (kind, project_id, current),
            ):
                if row[0] not in found:
                    found.add(row[0])
                    frontier.append(row[0])
        return found

    def _insert_module(self, project_id: int, name: str, description: str, parent_id: int) -> Json:
        now = format_time(time.time())
        module = {
            "id": self.new_id(),
            "project_id": project_id,
            "parent_kind": "module" if parent_id else "root",
            "parent_id": parent_id,
            "pid": self._new_pid(project_id, "module"),
            "name": name,
            "description": description,
            "order": self._count("module", project_id, parent_id) + 1,
            "created_date": now,
            "last_modified_date": now,
        }
        self._put("module", module)
        return module

    def create_module(self, project_id: int, body: Any, parent_id: int | None) -> Json:
        self._project(project_id)
        body = _require_object(body, "module")
        name = _name(body, "module")
        assert name is not None
        if parent_id is None:
            parent_id = _int(body.get("parent_id"))  # older servers take it in the body
        if parent_id:
            self._module(project_id, parent_id)
        with self.tx():
            module = self._insert_module(
                project_id, name, _text(body, "description", "module", default="") or "", parent_id or 0
            )
        return self.render_module(module)

    def module(self, project_id: int, module_id: int, *, descendants: bool = False) -> Json:
        return self.render_module(self._module(project_id, module_id), descendants=descendants)

    def update_module(self, project_id: int, module_id: int, body: Any, parent_id: int | None) -> Json:
        module = self._module(project_id, module_id)
        with self.tx():
            if parent_id is not None:
                # "If you use this parameter, the request body will be ignored": a move only.
                if parent_id:
                    self._module(project_id, parent_id)
                    if parent_id == module_id or parent_id in self._subtree_ids(
                        "module", project_id, module_id
                    ):
                        raise bad(
                            f"module {module_id} cannot be moved under itself or one of its descendants"
                        )
                module["parent_id"] = parent_id
                module["parent_kind"] = "module" if parent_id else "root"
                module["order"] = self._count("module", project_id, parent_id) + 1
            else:
                body = _require_object(body, "module")
                if "name" in body:
                    module["name"] = _name(body, "module")
                if "description" in body:
                    module["description"] = _text(body, "description", "module", default="") or ""
            module["last_modified_date"] = format_time(time.time())
            self._put("module", module)
        return self.render_module(module)

    def delete_module(self, project_id: int, module_id: int, *, force: bool) -> Json:
        self._module(project_id, module_id)
        modules = {module_id} | self._subtree_ids("module", project_id, module_id)
        cases = [
            row[0]
            for module in modules
            for row in self.conn.execute(
                "SELECT id FROM objects WHERE kind = 'test-case' AND project_id = ? AND parent_id = ?",
                (project_id, module),
            )
        ]
        if not force and (len(modules) > 1 or cases):
            raise bad(
                f"module {module_id} contains {len(modules) - 1} module(s) and {len(cases)} test case(s);"
                " use force=true to delete them too"
            )
        with self.tx():
            for case_id in cases:
                self._delete_case(project_id, case_id, check_callers=False)
            self._delete_rows(modules)
        return {"message": f"Module {module_id} was deleted"}

    def _default_module(self, project_id: int) -> int:
        for module in self._children("module", project_id, 0):
            if module["name"] == CREATED_VIA_API_MODULE:
                return module["id"]
        return self._insert_module(project_id, CREATED_VIA_API_MODULE, "", 0)["id"]

    def _module_path(self, project_id: int, names: Sequence[str]) -> int:
        """The module at ``names`` from the root, created where missing (no duplicate siblings)."""
        parent = 0
        for name in names:
            match = next((m for m in self._children("module", project_id, parent) if m["name"] == name), None)
            parent = match["id"] if match else self._insert_module(project_id, name, "", parent)["id"]
        return parent

    # ------------------------------------------------------------------ test cases and versions

    def _version(self, version_id: int) -> Json | None:
        row = self.conn.execute("SELECT body FROM versions WHERE id = ?", (version_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def _versions(self, case_id: int) -> list[Json]:
        return [
            json.loads(row[0])
            for row in self.conn.execute(
                "SELECT body FROM versions WHERE case_id = ? ORDER BY id", (case_id,)
            )
        ]

    def _put_version(self, version: Json) -> None:
        version.pop("renamed_steps", None)
        self.conn.execute(
            "INSERT OR REPLACE INTO versions (id, case_id, project_id, body) VALUES (?, ?, ?, ?)",
            (version["id"], version["case_id"], version["project_id"], dumps(version)),
        )

    def _latest(self, case: Json) -> Json:
        version = self._version(case["latest_version_id"])
        assert version is not None, f"test case {case['id']} lost its latest version"
        return version

    def _latest_approved(self, case_id: int) -> Json | None:
        approved = [v for v in self._versions(case_id) if v["approved"]]
        return approved[-1] if approved else None

    def _case(self, project_id: int, ref: str | int) -> Json:
        """A test case by id or PID (``TC-12``), else 404."""
        self._project(project_id)
        case: Json | None = None
        text = str(ref).strip()
        if text.isdigit():
            case = self._get("test-case", int(text), project_id)
        elif text.upper().startswith("TC-"):
            case = self._by_pid("test-case", project_id, text)
        if case is None:
            raise QTestError(404, f"Test case {text} does not exist in project {project_id}")
        return case

    def _render_step(self, project_id: int, case_id: int, step: Json) -> Json:
        out: Json = {
            "links": [
                {
                    "rel": "self",
                    "href": f"{self.api_url}/projects/{project_id}/test-cases/{case_id}/test-steps/{step['id']}",
                }
            ],
            "id": step["id"],
            "description": step["description"],
            "expected": step["expected"],
            "order": step["order"],
            "plain_value_text": step["description"],
        }
        called = step.get("called_test_case_id")
        if called:
            out["called_test_case_id"] = called
            out["root_called_test_case_id"] = called
            callee = self._get("test-case", called, project_id)
            if callee is not None:
                out["called_test_case_name"] = self._latest(callee)["name"]
        if step.get("parameter_values"):
            out["parameter_values"] = step["parameter_values"]
        return out

    def render_case(
        self, case: Json, version: Json | None = None, *, steps: bool = False, props: bool = True
    ) -> Json:
        version = version or self._latest(case)
        project_id = case["project_id"]
        out: Json = {
            "links": self._self_link(project_id, "test-cases", case["id"]),
            "id": case["id"],
            "name": version["name"],
            "order": case["order"],
            "pid": case["pid"],
            "created_date": case["created_date"],
            "last_modified_date": version["last_modified_date"],
        }
        if props:
            out["properties"] = self.render_properties(project_id, "test-cases", version["props"])
        out.update(
            {
                "web_url": self._web_url(project_id, "test-case", case["id"]),
                "parent_id": case["parent_id"],
                "test_case_version_id": version["id"],
                "version": _version_text(version),
                "description": version["description"],
                "precondition": version["precondition"],
                "creator_id": case["creator_id"],
            }
        )
        if steps:
            out["test_steps"] = [self._render_step(project_id, case["id"], s) for s in version["steps"]]
        return out

    def _calls(self, project_id: int, case_id: int) -> set[int]:
        case = self._get("test-case", case_id, project_id)
        if case is None:
            return set()
        return {s["called_test_case_id"] for s in self._latest(case)["steps"] if s.get("called_test_case_id")}

    def _parse_steps(
        self, project_id: int, raw: Any, what: str, case_id: int | None, known: Mapping[int, Json]
    ) -> list[Json]:
        """Checked ``test_steps`` (without ids yet); ``known`` are the steps an ``id`` may refer to."""
        if not isinstance(raw, list):
            raise bad(f"{what}.test_steps must be an array")
        parsed: list[tuple[int, int, Json]] = []
        for index, item in enumerate(raw):
            where = f"{what}.test_steps[{index}]"
            if not isinstance(item, dict):
                raise bad(f"{where} must be an object")
            for key in ("description", "expected"):
                if key not in item or item[key] is None:
                    raise bad(f"{where}.{key} is required (a string, possibly empty)")
                if not isinstance(item[key], str):
                    raise bad(f"{where}.{key} must be a string")
            step: Json = {"description": item["description"], "expected": item["expected"]}
            step_id = _int(item.get("id"))
            if step_id is not None:
                if step_id not in known:
                    raise bad(f"{where}.id {step_id} is not a step of this test case")
                step["previous_id"] = step_id
            called = item.get("called_test_case_id")
            if called is not None:
                called_id = _int(called)
                callee = self._get("test-case", called_id, project_id) if called_id is not None else None
                if callee is None:
                    raise bad(
                        f"{where}.called_test_case_id {called!r} is not a test case of project {project_id}"
                    )
                assert called_id is not None
                if case_id is not None and (
                    called_id == case_id or self._reaches(project_id, called_id, case_id)
                ):
                    raise bad(
                        f"{where}.called_test_case_id {called_id} would make test case {case_id} call itself"
                    )
                step["called_test_case_id"] = called_id
            if isinstance(item.get("parameter_values"), list):
                step["parameter_values"] = [str(v) for v in item["parameter_values"]]
            order = _int(item.get("order"))
            parsed.append((order if order is not None else index + 1, index, step))
        parsed.sort(key=lambda entry: (entry[0], entry[1]))
        steps = [step for _, _, step in parsed]
        for order, step in enumerate(steps, 1):
            step["order"] = order
        return steps

    def _reaches(self, project_id: int, start: int, target: int) -> bool:
        """Whether test case ``start`` calls ``target``, directly or through other calls."""
        seen: set[int] = set()
        frontier = [start]
        while frontier:
            current = frontier.pop()
            for callee in self._calls(project_id, current):
                if callee == target:
                    return True
                if callee not in seen:
                    seen.add(callee)
                    frontier.append(callee)
        return False

    def _assign_step_ids(self, project_id: int, version_id: int, steps: list[Json]) -> None:
        for step in steps:
            step.pop("previous_id", None)
            step["id"] = self.new_id()
        self.conn.execute("DELETE FROM refs WHERE owner_id = ? AND kind = 'test-step'", (version_id,))
        self.conn.executemany(
            "INSERT INTO refs (id, kind, project_id, owner_id) VALUES (?, 'test-step', ?, ?)",
            [(step["id"], project_id, version_id) for step in steps],
        )

    def _index_case(self, case: Json, version: Json) -> None:
        case["name"] = version["name"]
        case["sort_key"] = parse_time(version["last_modified_date"]).timestamp()  # type: ignore[union-attr]
        self._put("test-case", case)
        self._index_properties("test-case", case["project_id"], case["id"], version["props"])

    def _insert_case(
        self,
        project_id: int,
        *,
        name: str,
        parent_id: int,
        props: dict[str, str],
        description: str,
        precondition: str,
        steps: list[Json],
        user_id: int,
        approved: bool = False,
    ) -> tuple[Json, Json]:
        now = format_time(time.time())
        case_id = self.new_id()
        version = {
            "id": self.new_id(),
            "case_id": case_id,
            "project_id": project_id,
            "major": 1 if approved else 0,
            "minor": 0 if approved else 1,
            "approved": approved,
            "name": name,
            "description": description,
            "precondition": precondition,
            "props": self._with_defaults(project_id, "test-cases", props),
            "steps": steps,
            "created_date": now,
            "last_modified_date": now,
        }
        self._assign_step_ids(project_id, version["id"], steps)
        self._put_version(version)
        case = {
            "id": case_id,
            "project_id": project_id,
            "parent_kind": "module",
            "parent_id": parent_id,
            "pid": self._new_pid(project_id, "test-case"),
            "order": self._count("test-case", project_id, parent_id) + 1,
            "created_date": now,
            "creator_id": user_id,
            "latest_version_id": version["id"],
        }
        self._index_case(case, version)
        return case, version

    def create_test_case(self, project_id: int, body: Any, user_id: int) -> Json:
        self._project(project_id)
        body = _require_object(body, "test case")
        name = _name(body, "test case")
        assert name is not None
        props, attributes = self._parse_properties(
            project_id, "test-cases", body.get("properties"), "test case", required=True
        )
        parent_id = _int(body.get("parent_id"))
        if body.get("parent_id") is not None and parent_id is None:
            raise bad(f"test case.parent_id must be a module id, got {body['parent_id']!r}")
        if parent_id and self._get("module", parent_id, project_id) is None:
            raise bad(f"test case.parent_id {parent_id} is not a module of project {project_id}")
        steps = self._parse_steps(project_id, body.get("test_steps", []), "test case", None, {})
        attachments = self._parse_inline_attachments(body.get("attachments"), "test case")
        with self.tx():
            case, version = self._insert_case(
                project_id,
                name=name,
                parent_id=parent_id or self._default_module(project_id),
                props=props,
                description=_text(body, "description", "test case", default=attributes.get("description", ""))
                or "",
                precondition=_text(
                    body, "precondition", "test case", default=attributes.get("precondition", "")
                )
                or "",
                steps=steps,
                user_id=user_id,
            )
            self._store_attachments(project_id, "test-cases", case["id"], attachments, user_id)
        return self.render_case(case, version, steps=True)

    def test_cases(
        self,
        project_id: int,
        *,
        parent_id: int | None,
        page: int,
        size: int,
        expand_props: bool,
        expand_steps: bool,
        modified_after: datetime | None,
    ) -> list[Json]:
        self._project(project_id)
        sql = "SELECT body FROM objects WHERE kind = 'test-case' AND project_id = ?"
        params: list[Any] = [project_id]
        if parent_id:
            sql += " AND parent_id = ?"
            params.append(parent_id)
        if modified_after is not None:
            sql += " AND sort_key > ?"
            params.append(modified_after.timestamp())
        limit, offset = _page_bounds(page, size)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        cases = self._select(sql, [*params, limit, offset])
        return [self.render_case(c, steps=expand_steps, props=expand_props) for c in cases]

    def test_case(self, project_id: int, ref: str, *, version_id: int | None, steps: bool) -> Json:
        case = self._case(project_id, ref)
        version = None
        if version_id is not None:
            version = self._version(version_id)
            if version is None or version["case_id"] != case["id"]:
                raise QTestError(404, f"Version {version_id} is not a version of test case {case['id']}")
        return self.render_case(case, version, steps=steps)

    def _editable_version(self, case: Json, now: str) -> Json:
        """The version an edit applies to: the draft itself, or a new minor version after an approved one
        (updating an approved test case makes x.1, with its steps copied under new ids)."""
        latest = self._latest(case)
        if not latest["approved"]:
            return latest
        draft = {
            **latest,
            "id": self.new_id(),
            "minor": latest["minor"] + 1,
            "approved": False,
            "steps": [{**step, "previous_id": step["id"]} for step in latest["steps"]],
            "created_date": now,
        }
        # Where each step of the approved version went in the draft (for edits that name a step id).
        draft["renamed_steps"] = {step["previous_id"]: index for index, step in enumerate(draft["steps"])}
        self._assign_step_ids(case["project_id"], draft["id"], draft["steps"])
        case["latest_version_id"] = draft["id"]
        return draft

    def _step_index(self, case: Json, version: Json, step_id: int) -> int:
        renamed = version.pop("renamed_steps", None) or {}
        if step_id in renamed:
            return int(renamed[step_id])
        for index, step in enumerate(version["steps"]):
            if step["id"] == step_id:
                return index
        raise QTestError(
            404, f"Test step {step_id} is not a step of the latest version of test case {case['id']}"
        )

    def update_test_step(self, project_id: int, ref: str, step_id: int, body: Any) -> Json:
        """Edit one step of the latest version (an approved version first gets a new draft, x.1)."""
        case = self._case(project_id, ref)
        self._step_index(case, self._latest(case), step_id)  # 404 before anything is written
        body = _require_object(body, "test step")
        parsed = self._parse_steps(project_id, [body], "test step", case["id"], {})[0]
        now = format_time(time.time())
        with self.tx():
            version = self._editable_version(case, now)
            index = self._step_index(case, version, step_id)
            step = version["steps"][index]
            step.update({k: v for k, v in parsed.items() if k != "order"})
            if "called_test_case_id" not in parsed:
                step.pop("called_test_case_id", None)
            version["last_modified_date"] = now
            self._put_version(version)
            self._index_case(case, version)
        return self._render_step(project_id, case["id"], step)

    def delete_test_step(self, project_id: int, ref: str, step_id: int) -> Json:
        case = self._case(project_id, ref)
        self._step_index(case, self._latest(case), step_id)
        now = format_time(time.time())
        with self.tx():
            version = self._editable_version(case, now)
            index = self._step_index(case, version, step_id)
            removed = version["steps"].pop(index)
            for order, item in enumerate(version["steps"], 1):
                item["order"] = order
            self.conn.execute("DELETE FROM refs WHERE id = ?", (removed["id"],))
            self.conn.execute(
                "DELETE FROM attachments WHERE object_type = 'test-steps' AND object_id = ?", (removed["id"],)
            )
            version["last_modified_date"] = now
            self._put_version(version)
            self._index_case(case, version)
        return {"message": f"Test step {step_id} was deleted"}

    def update_test_case(self, project_id: int, ref: str, body: Any, user_id: int) -> Json:
        case = self._case(project_id, ref)
        body = _require_object(body, "test case")
        name = _name(body, "test case", required=False)
        props, attributes = self._parse_properties(
            project_id, "test-cases", body.get("properties"), "test case", required=False
        )
        latest = self._latest(case)
        steps = None
        if "test_steps" in body and body["test_steps"] is not None:
            steps = self._parse_steps(
                project_id, body["test_steps"], "test case", case["id"], {s["id"]: s for s in latest["steps"]}
            )
        parent_id = _int(body.get("parent_id"))
        if (
            parent_id
            and parent_id != case["parent_id"]
            and self._get("module", parent_id, project_id) is None
        ):
            raise bad(f"test case.parent_id {parent_id} is not a module of project {project_id}")
        content_keys = ("name", "properties", "description", "precondition", "test_steps")
        changes_content = any(body.get(key) is not None for key in content_keys)
        now = format_time(time.time())
        with self.tx():
            if parent_id and parent_id != case["parent_id"]:
                case["parent_id"] = parent_id
                case["order"] = self._count("test-case", project_id, parent_id) + 1
            version = latest
            if changes_content:
                version = self._editable_version(case, now)
                if name is not None:
                    version["name"] = name
                version["props"] = {**version["props"], **props}
                for key in ("description", "precondition"):
                    value = _text(body, key, "test case", default=attributes.get(key))
                    if value is not None:
                        version[key] = value
                if steps is not None:
                    # A step named by id keeps it while the version stays the same (a draft edited in
                    # place); in a new version, and for new steps, ids are new.
                    same_version = version["id"] == latest["id"]
                    used: set[int] = set()
                    for step in steps:
                        previous = step.pop("previous_id", None)
                        if same_version and previous is not None and previous not in used:
                            step["id"] = previous
                        else:
                            step["id"] = self.new_id()
                        used.add(step["id"])
                    version["steps"] = steps
                    self.conn.execute(
                        "DELETE FROM refs WHERE owner_id = ? AND kind = 'test-step'", (version["id"],)
                    )
                    self.conn.executemany(
                        "INSERT INTO refs (id, kind, project_id, owner_id) VALUES (?, 'test-step', ?, ?)",
                        [(s["id"], project_id, version["id"]) for s in steps],
                    )
                version["last_modified_date"] = now
                self._put_version(version)
            self._index_case(case, version)
        return self.render_case(case, version, steps=True)

    def approve_test_case(self, project_id: int, ref: str) -> Json:
        case = self._case(project_id, ref)
        latest = self._latest(case)
        if latest["approved"]:
            return self.render_case(case, latest, steps=True)
        now = format_time(time.time())
        with self.tx():
            approved = {
                **latest,
                "id": self.new_id(),
                "major": latest["major"] + 1,
                "minor": 0,
                "approved": True,
                "steps": [dict(step) for step in latest["steps"]],
                "created_date": now,
                "last_modified_date": now,
            }
            self._assign_step_ids(project_id, approved["id"], approved["steps"])
            self._put_version(approved)
            case["latest_version_id"] = approved["id"]
            self._index_case(case, approved)
        return self.render_case(case, approved, steps=True)

    def test_case_versions(self, project_id: int, ref: str) -> list[Json]:
        """Approved major versions plus the last unapproved one after them (the vendor's rule)."""
        case = self._case(project_id, ref)
        versions = self._versions(case["id"])
        shown = [v for v in versions if v["approved"]]
        if versions and not versions[-1]["approved"]:
            shown.append(versions[-1])
        return [self.render_case(case, v) for v in shown]

    def test_case_version(self, project_id: int, ref: str, version_id: int) -> Json:
        return self.test_case(project_id, ref, version_id=version_id, steps=True)

    def test_steps(self, project_id: int, ref: str, version_id: int | None = None) -> list[Json]:
        case = self._case(project_id, ref)
        version = self._latest(case)
        if version_id is not None:
            found = self._version(version_id)
            if found is None or found["case_id"] != case["id"]:
                raise QTestError(404, f"Version {version_id} is not a version of test case {case['id']}")
            version = found
        return [self._render_step(project_id, case["id"], s) for s in version["steps"]]

    def test_step(self, project_id: int, ref: str, step_id: int) -> Json:
        case = self._case(project_id, ref)
        for step in self._latest(case)["steps"]:
            if step["id"] == step_id:
                return self._render_step(project_id, case["id"], step)
        raise QTestError(
            404, f"Test step {step_id} is not a step of the latest version of test case {case['id']}"
        )

    def add_test_step(self, project_id: int, ref: str, body: Any) -> Json:
        case = self._case(project_id, ref)
        body = _require_object(body, "test step")
        step = self._parse_steps(project_id, [body], "test step", case["id"], {})[0]
        now = format_time(time.time())
        with self.tx():
            version = self._editable_version(case, now)
            position = _int(body.get("order"))
            steps = list(version["steps"])
            index = len(steps) if position is None else max(0, min(len(steps), position - 1))
            step["id"] = self.new_id()
            steps.insert(index, step)
            for order, item in enumerate(steps, 1):
                item["order"] = order
            version["steps"] = steps
            version["last_modified_date"] = now
            self.conn.execute(
                "INSERT INTO refs (id, kind, project_id, owner_id) VALUES (?, 'test-step', ?, ?)",
                (step["id"], project_id, version["id"]),
            )
            self._put_version(version)
            self._index_case(case, version)
        return self._render_step(project_id, case["id"], step)

    def _delete_case(self, project_id: int, case_id: int, *, check_callers: bool = True) -> None:
        if check_callers:
            callers = [
                c["pid"]
                for c in self._select(
                    "SELECT body FROM objects WHERE kind = 'test-case' AND project_id = ?", (project_id,)
                )
                if c["id"] != case_id and case_id in self._calls(project_id, c["id"])
            ]
            if callers:
                raise bad(
                    f"test case {case_id} is called by {', '.join(callers[:10])}; remove those calls first"
                )
        runs = [
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM objects WHERE kind = 'test-run' AND link_id = ?", (case_id,)
            )
        ]
        for run_id in runs:
            self._delete_run(project_id, run_id)
        version_ids = [
            row[0] for row in self.conn.execute("SELECT id FROM versions WHERE case_id = ?", (case_id,))
        ]
        step_ids = [
            row[0]
            for version_id in version_ids
            for row in self.conn.execute("SELECT id FROM refs WHERE owner_id = ?", (version_id,))
        ]
        self._delete_rows([case_id, *step_ids])
        for version_id in version_ids:
            self.conn.execute("DELETE FROM refs WHERE owner_id = ?", (version_id,))
        self.conn.execute("DELETE FROM versions WHERE case_id = ?", (case_id,))

    def delete_test_case(self, project_id: int, ref: str) -> Json:
        case = self._case(project_id, ref)
        with self.tx():
            self._delete_case(project_id, case["id"])
        return {"message": f"Test case {case['id']} was deleted"}

    # ------------------------------------------------------------------ releases, cycles, suites

    def render_release(self, release: Json) -> Json:
        project_id = release["project_id"]
        out: Json = {
            "links": self._self_link(project_id, "releases", release["id"]),
            "id": release["id"],
            "name": release["name"],
            "order": release["order"],
            "pid": release["pid"],
            "created_date": release["created_date"],
            "last_modified_date": release["last_modified_date"],
            "properties": self.render_properties(project_id, "releases", release["props"]),
            "web_url": self._web_url(project_id, "release", release["id"]),
            "description": release["description"],
        }
        for key in ("note", "start_date", "end_date"):
            if release.get(key):
                out[key] = release[key]
        return out

    def _dates(self, body: Json, what: str, keys: Sequence[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for key in keys:
            if key not in body:
                continue
            raw = body[key]
            if raw is None:
                out[key] = None
                continue
            moment = parse_time(raw)
            if moment is None:
                raise bad(f"{what}.{key} must be an ISO 8601 date-time, got {raw!r}")
            out[key] = format_time(moment)
        return out

    def releases(self, project_id: int, *, include_closed: bool) -> list[Json]:
        self._project(project_id)
        status = self._field_by_label(project_id, "releases", "Status")
        closed = next(
            (str(v["value"]) for v in (status or {}).get("allowed_values", []) if v["label"] == "Closed"),
            None,
        )
        out = []
        for release in self._select(
            "SELECT body FROM objects WHERE kind = 'release' AND project_id = ? ORDER BY id", (project_id,)
        ):
            if (
                not include_closed
                and status is not None
                and release["props"].get(str(status["id"])) == closed
            ):
                continue
            out.append(self.render_release(release))
        return out

    def create_release(self, project_id: int, body: Any) -> Json:
        self._project(project_id)
        body = _require_object(body, "release")
        name = _name(body, "release")
        props, _ = self._parse_properties(
            project_id, "releases", body.get("properties"), "release", required=True
        )
        dates = self._dates(body, "release", ("start_date", "end_date"))
        now = format_time(time.time())
        with self.tx():
            release = {
                "id": self.new_id(),
                "project_id": project_id,
                "parent_kind": "root",
                "parent_id": 0,
                "pid": self._new_pid(project_id, "release"),
                "name": name,
                "description": _text(body, "description", "release", default="") or "",
                "note": _text(body, "note", "release", default="") or "",
                "order": self._count("release", project_id) + 1,
                "props": self._with_defaults(project_id, "releases", props),
                "created_date": now,
                "last_modified_date": now,
                **dates,
            }
            self._put("release", release)
            self._index_properties("release", project_id, release["id"], release["props"])
        return self.render_release(release)

    def release(self, project_id: int, release_id: int) -> Json:
        self._project(project_id)
        return self.render_release(self._require("release", release_id, project_id))

    def update_release(self, project_id: int, release_id: int, body: Any) -> Json:
        self._project(project_id)
        release = self._require("release", release_id, project_id)
        body = _require_object(body, "release")
        name = _name(body, "release", required=False)
        props, _ = self._parse_properties(
            project_id, "releases", body.get("properties"), "release", required=False
        )
        dates = self._dates(body, "release", ("start_date", "end_date"))
        with self.tx():
            if name is not None:
                release["name"] = name
            for key in ("description", "note"):
                if key in body:
                    release[key] = _text(body, key, "release", default="") or ""
            release.update(dates)
            release["props"] = {**release["props"], **props}
            release["last_modified_date"] = format_time(time.time())
            self._put("release", release)
            self._index_properties("release", project_id, release_id, release["props"])
        return self.render_release(release)

    def delete_release(self, project_id: int, release_id: int) -> Json:
        self._project(project_id)
        self._require("release", release_id, project_id)
        with self.tx():
            self._delete_container(project_id, release_id)
        return {}

    def _container(
        self, project_id: int, parent_type: str, parent_id: int, allowed: Sequence[str], what: str
    ) -> None:
        """Check ``parentType``/``parentId`` name an existing container that may hold ``what``."""
        if parent_type not in allowed:
            raise bad(f"parentType must be one of {', '.join(allowed)}, got '{parent_type}'")
        if parent_type == "root":
            if parent_id != 0:
                raise bad("parentId must be 0 when parentType is root")
            return
        if self._get(parent_type, parent_id, project_id) is None:
            raise bad(
                f"parentId {parent_id}: no {parent_type} with this id in project {project_id} to hold the {what}"
            )

    def _infer_parent(
        self,
        project_id: int,
        parent_id: int | None,
        parent_type: str | None,
        allowed: Sequence[str],
        what: str,
    ) -> tuple[str, int]:
        """The container named by the query; a missing parentType is inferred from the id (ids are unique)."""
        if parent_id is None or parent_id == 0:
            if parent_type not in (None, "root"):
                raise bad(f"parentId is required when parentType is {parent_type}")
            return "root", 0
        if parent_type is None:
            row = self.conn.execute(
                "SELECT kind FROM objects WHERE id = ? AND project_id = ?", (parent_id, project_id)
            ).fetchone()
            parent_type = row[0] if row and row[0] in allowed else "test-cycle"
        self._container(project_id, parent_type, parent_id, allowed, what)
        return parent_type, parent_id

    def render_cycle(self, cycle: Json, *, descendants: bool = False) -> Json:
        project_id = cycle["project_id"]
        out: Json = {
            "links": self._self_link(project_id, "test-cycles", cycle["id"]),
            "id": cycle["id"],
            "name": cycle["name"],
            "order": cycle["order"],
            "pid": cycle["pid"],
            "created_date": cycle["created_date"],
            "last_modified_date": cycle["last_modified_date"],
            "web_url": self._web_url(project_id, "test-cycle", cycle["id"]),
            "description": cycle["description"],
        }
        for key in ("target_release_id", "target_build_id"):
            if cycle.get(key):
                out[key] = cycle[key]
        if descendants:
            out["test-cycles"] = [
                self.render_cycle(child, descendants=True)
                for child in self._children("test-cycle", project_id, cycle["id"])
            ]
            out["test-suites"] = [
                self.render_suite(s) for s in self._children("test-suite", project_id, cycle["id"])
            ]
        return out

    def test_cycles(
        self,
        project_id: int,
        *,
        parent_id: int | None,
        parent_type: str | None,
        descendants: bool,
        page: int,
        page_size: int,
    ) -> list[Json]:
        self._project(project_id)
        kind, container = self._infer_parent(project_id, parent_id, parent_type, CYCLE_PARENTS, "test cycles")
        cycles = [c for c in self._children("test-cycle", project_id, container) if c["parent_kind"] == kind]
        if page_size > 0:
            cycles = cycles[(page - 1) * page_size : page * page_size]
        return [self.render_cycle(c, descendants=descendants) for c in cycles]

    def _insert_cycle(
        self, project_id: int, parent_kind: str, parent_id: int, name: str, body: Mapping[str, Any]
    ) -> Json:
        now = format_time(time.time())
        target_release = _int(body.get("target_release_id"))
        if target_release is None and parent_kind == "release":
            target_release = parent_id
        elif target_release is None and parent_kind == "test-cycle":
            parent = self._get("test-cycle", parent_id, project_id)
            target_release = (parent or {}).get("target_release_id")
        cycle = {
            "id": self.new_id(),
            "project_id": project_id,
            "parent_kind": parent_kind,
            "parent_id": parent_id,
            "pid": self._new_pid(project_id, "test-cycle"),
            "name": name,
            "description": body.get("description") if isinstance(body.get("description"), str) else "",
            "order": self._count("test-cycle", project_id, parent_id) + 1,
            "target_release_id": target_release,
            "target_build_id": _int(body.get("target_build_id")),
            "created_date": now,
            "last_modified_date": now,
        }
        self._put("test-cycle", cycle)
        return cycle

    def create_cycle(
        self, project_id: int, body: Any, parent_id: int | None, parent_type: str | None
    ) -> Json:
        self._project(project_id)
        body = _require_object(body, "test cycle")
        name = _name(body, "test cycle")
        assert name is not None
        kind, container = self._infer_parent(project_id, parent_id, parent_type, CYCLE_PARENTS, "test cycle")
        target = _int(body.get("target_release_id"))
        if target and self._get("release", target, project_id) is None:
            raise bad(f"test cycle.target_release_id {target} is not a release of project {project_id}")
        with self.tx():
            cycle = self._insert_cycle(project_id, kind, container, name, body)
        return self.render_cycle(cycle)

    def test_cycle(self, project_id: int, cycle_id: int, *, descendants: bool) -> Json:
        self._project(project_id)
        return self.render_cycle(self._require("test-cycle", cycle_id, project_id), descendants=descendants)

    def update_cycle(
        self, project_id: int, cycle_id: int, body: Any, parent_id: int | None, parent_type: str | None
    ) -> Json:
        self._project(project_id)
        cycle = self._require("test-cycle", cycle_id, project_id)
        with self.tx():
            if parent_id is not None or parent_type is not None:
                kind, container = self._infer_parent(
                    project_id, parent_id, parent_type, CYCLE_PARENTS, "test cycle"
                )
                if container == cycle_id or container in self._subtree_ids(
                    "test-cycle", project_id, cycle_id
                ):
                    raise bad(f"test cycle {cycle_id} cannot be moved under itself or one of its descendants")
                cycle.update(parent_kind=kind, parent_id=container)
                cycle["order"] = self._count("test-cycle", project_id, container) + 1
            else:
                body = _require_object(body, "test cycle")
                if "name" in body:
                    cycle["name"] = _name(body, "test cycle")
                if "description" in body:
                    cycle["description"] = _text(body, "description", "test cycle", default="") or ""
                for key in ("target_release_id", "target_build_id"):
                    if key in body:
                        cycle[key] = _int(body[key])
            cycle["last_modified_date"] = format_time(time.time())
            self._put("test-cycle", cycle)
        return self.render_cycle(cycle)

    def _delete_container(self, project_id: int, container_id: int) -> None:
        """Delete a release, cycle or suite with everything under it (cycles, suites, runs, logs)."""
        doomed = [container_id]
        frontier = [container_id]
        while frontier:
            current = frontier.pop()
            for row in self.conn.execute(
                "SELECT id, kind FROM objects WHERE project_id = ? AND parent_id = ?"
                " AND kind IN ('test-cycle', 'test-suite', 'test-run')",
                (project_id, current),
            ):
                if row[1] == "test-run":
                    self._delete_run(project_id, row[0])
                else:
                    doomed.append(row[0])
                    frontier.append(row[0])
        self._delete_rows(doomed)

    def delete_cycle(self, project_id: int, cycle_id: int, *, force: bool) -> Json:
        self._project(project_id)
        self._require("test-cycle", cycle_id, project_id)
        children = self.conn.execute(
            "SELECT COUNT(*) FROM objects WHERE project_id = ? AND parent_id = ?"
            " AND kind IN ('test-cycle', 'test-suite', 'test-run')",
            (project_id, cycle_id),
        ).fetchone()[0]
        if children and not force:
            raise bad(
                f"test cycle {cycle_id} contains {children} object(s); use force=true to delete them too"
            )
        with self.tx():
            self._delete_container(project_id, cycle_id)
        return {"message": f"Test cycle {cycle_id} was deleted"}

    def render_suite(self, suite: Json) -> Json:
        project_id = suite["project_id"]
        out: Json = {
            "parentId": suite["parent_id"],
            "parentType": suite["parent_kind"],
            "links": self._self_link(project_id, "test-suites", suite["id"]),
            "id": suite["id"],
            "name": suite["name"],
            "order": suite["order"],
            "pid": suite["pid"],
            "created_date": suite["created_date"],
            "last_modified_date": suite["last_modified_date"],
            "properties": self.render_properties(project_id, "test-suites", suite["props"]),
            "web_url": self._web_url(project_id, "test-suite", suite["id"]),
            "description": suite["description"],
        }
        for key in ("target_release_id", "target_build_id"):
            if suite.get(key):
                out[key] = suite[key]
        return out

    def test_suites(self, project_id: int, *, parent_id: int | None, parent_type: str | None) -> list[Json]:
        self._project(project_id)
        kind, container = self._infer_parent(project_id, parent_id, parent_type, CYCLE_PARENTS, "test suites")
        return [
            self.render_suite(s)
            for s in self._children("test-suite", project_id, container)
            if s["parent_kind"] == kind
        ]

    def _insert_suite(
        self,
        project_id: int,
        parent_kind: str,
        parent_id: int,
        name: str,
        props: dict[str, str],
        body: Mapping[str, Any],
    ) -> Json:
        now = format_time(time.time())
        suite = {
            "id": self.new_id(),
            "project_id": project_id,
            "parent_kind": parent_kind,
            "parent_id": parent_id,
            "pid": self._new_pid(project_id, "test-suite"),
            "name": name,
            "description": body.get("description") if isinstance(body.get("description"), str) else "",
            "order": self._count("test-suite", project_id, parent_id) + 1,
            "target_release_id": _int(body.get("target_release_id")),
            "target_build_id": _int(body.get("target_build_id")),
            "props": self._with_defaults(project_id, "test-suites", props),
            "created_date": now,
            "last_modified_date": now,
        }
        self._put("test-suite", suite)
        self._index_properties("test-suite", project_id, suite["id"], suite["props"])
        return suite

    def create_suite(
        self, project_id: int, body: Any, parent_id: int | None, parent_type: str | None
    ) -> Json:
        self._project(project_id)
        body = _require_object(body, "test suite")
        name = _name(body, "test suite")
        assert name is not None
        props, _ = self._parse_properties(
            project_id, "test-suites", body.get("properties"), "test suite", required=True
        )
        kind, container = self._infer_parent(project_id, parent_id, parent_type, CYCLE_PARENTS, "test suite")
        with self.tx():
            suite = self._insert_suite(project_id, kind, container, name, props, body)
        return self.render_suite(suite)

    def test_suite(self, project_id: int, suite_id: int) -> Json:
        self._project(project_id)
        return self.render_suite(self._require("test-suite", suite_id, project_id))

    def update_suite(
        self, project_id: int, suite_id: int, body: Any, parent_id: int | None, parent_type: str | None
    ) -> Json:
        self._project(project_id)
        suite = self._require("test-suite", suite_id, project_id)
        body = _require_object(body, "test suite")
        props, _ = self._parse_properties(
            project_id, "test-suites", body.get("properties"), "test suite", required=False
        )
        with self.tx():
            if parent_id is not None or parent_type is not None:
                kind, container = self._infer_parent(
                    project_id, parent_id, parent_type, CYCLE_PARENTS, "test suite"
                )
                suite.update(parent_kind=kind, parent_id=container)
            if "name" in body:
                suite["name"] = _name(body, "test suite")
            if "description" in body:
                suite["description"] = _text(body, "description", "test suite", default="") or ""
            suite["props"] = {**suite["props"], **props}
            suite["last_modified_date"] = format_time(time.time())
            self._put("test-suite", suite)
            self._index_properties("test-suite", project_id, suite_id, suite["props"])
        return self.render_suite(suite)

    def delete_suite(self, project_id: int, suite_id: int) -> Json:
        self._project(project_id)
        self._require("test-suite", suite_id, project_id)
        with self.tx():
            self._delete_container(project_id, suite_id)
        return {}

    # ------------------------------------------------------------------ test runs

    def render_run(self, run: Json, *, expand: str | None = None) -> Json:
        project_id = run["project_id"]
        case = self._get("test-case", run["link_id"], project_id)
        version = self._version(run["test_case_version_id"])
        out: Json = {
            "parentId": run["parent_id"],
            "parentType": run["parent_kind"],
            "automation": "Yes" if run.get("automation") else "No",
            "testCaseId": run["link_id"],
            "links": self._self_link(project_id, "test-runs", run["id"]),
            "id": run["id"],
            "name": run["name"],
            "order": run["order"],
            "pid": run["pid"],
            "created_date": run["created_date"],
            "last_modified_date": run["last_modified_date"],
            "properties": self.render_properties(project_id, "test-runs", run["props"]),
            "web_url": self._web_url(project_id, "test-run", run["id"]),
            "creator_id": run["creator_id"],
        }
        if case is not None and version is not None:
            out["test_case"] = self.render_case(case, version, steps=expand == "testcase.teststep")
            out["test_case_version_id"] = version["id"]
            out["test_case_version"] = _version_text(version)
        latest = run.get("latest")
        if latest:
            out["latest_test_log"] = {
                "id": latest["id"],
                "status": latest["status"],
                "exe_start_date": latest["exe_start_date"],
                "exe_end_date": latest["exe_end_date"],
            }
        return out

    def _run(self, project_id: int, run_id: int) -> Json:
        self._project(project_id)
        return self._require("test-run", run_id, project_id)

    def _run_scope(
        self, project_id: int, parent_id: int | None, parent_type: str | None, descendants: bool
    ) -> tuple[str, list[Any]]:
        """SQL condition and parameters selecting the runs under a container (or all of the project's)."""
        if parent_id is None and parent_type is None:
            return "kind = 'test-run' AND project_id = ?", [project_id]
        kind, container = self._infer_parent(project_id, parent_id, parent_type, RUN_PARENTS, "test runs")
        if kind == "root":
            if descendants:
                return "kind = 'test-run' AND project_id = ?", [project_id]
            return "kind = 'test-run' AND project_id = ? AND parent_kind = 'root'", [project_id]
        containers = {container}
        if descendants:
            frontier = [container]
            while frontier:
                current = frontier.pop()
                for row in self.conn.execute(
                    "SELECT id FROM objects WHERE project_id = ? AND parent_id = ?"
                    " AND kind IN ('test-cycle', 'test-suite')",
                    (project_id, current),
                ):
                    if row[0] not in containers:
                        containers.add(row[0])
                        frontier.append(row[0])
        ids = sorted(containers)
        marks = ",".join("?" * len(ids))
        return f"kind = 'test-run' AND project_id = ? AND parent_id IN ({marks})", [project_id, *ids]

    def test_runs(
        self,
        project_id: int,
        *,
        parent_id: int | None,
        parent_type: str | None,
        descendants: bool,
        page: int,
        page_size: int,
        expand: str | None = None,
    ) -> tuple[int, list[Json]]:
        self._project(project_id)
        condition, params = self._run_scope(project_id, parent_id, parent_type, descendants)
        total = int(
            self.conn.execute(f"SELECT COUNT(*) FROM objects WHERE {condition}", params).fetchone()[0]
        )
        limit, offset = _page_bounds(page, page_size)
        runs = self._select(
            f"SELECT body FROM objects WHERE {condition} ORDER BY id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return total, [self.render_run(r, expand=expand) for r in runs]

    def _run_version(self, project_id: int, case: Json, raw: Any, what: str) -> Json:
        """The version a run (or log) is on: the one named, else the latest approved, else the latest."""
        if raw is not None:
            version_id = _int(raw)
            version = self._version(version_id) if version_id is not None else None
            if version is None or version["case_id"] != case["id"]:
                raise bad(
                    f"{what}.test_case_version_id {raw!r} is not a version of test case {case['id']} ({case['pid']})"
                )
            return version
        return self._latest_approved(case["id"]) or self._latest(case)

    def _insert_run(
        self,
        project_id: int,
        *,
        parent_kind: str,
        parent_id: int,
        name: str,
        case: Json,
        version: Json,
        props: dict[str, str],
        user_id: int,
        automation: bool = False,
    ) -> Json:
        now = format_time(time.time())
        run = {
            "id": self.new_id(),
            "project_id": project_id,
            "parent_kind": parent_kind,
            "parent_id": parent_id,
            "link_id": case["id"],
            "pid": self._new_pid(project_id, "test-run"),
            "name": name,
            "order": self._count("test-run", project_id, parent_id) + 1,
            "test_case_version_id": version["id"],
            "props": self._with_defaults(project_id, "test-runs", props),
            "automation": automation,
            "creator_id": user_id,
            "created_date": now,
            "last_modified_date": now,
            "latest": None,
        }
        self._put("test-run", run)
        self._index_properties("test-run", project_id, run["id"], run["props"])
        return run

    def create_run(
        self, project_id: int, body: Any, parent_id: int | None, parent_type: str | None, user_id: int
    ) -> Json:
        self._project(project_id)
        body = _require_object(body, "test run")
        if parent_id is None and parent_type is None:
            # The resource carries camelCase parentId/parentType too; the query wins when both are given.
            parent_id, parent_type = _int(body.get("parentId")), body.get("parentType")
        kind, container = self._infer_parent(project_id, parent_id, parent_type, RUN_PARENTS, "test run")
        raw_case = body.get("test_case")
        case_id = _int(raw_case.get("id")) if isinstance(raw_case, dict) else None
        if case_id is None:
            raise bad('test run.test_case is required: {"id": <test case id>}')
        case = self._get("test-case", case_id, project_id)
        if case is None:
            raise bad(f"test run.test_case.id {case_id} is not a test case of project {project_id}")
        version = self._run_version(project_id, case, body.get("test_case_version_id"), "test run")
        props, _ = self._parse_properties(
            project_id, "test-runs", body.get("properties"), "test run", required=True
        )
        name = _name(body, "test run", required=False) or version["name"]
        with self.tx():
            run = self._insert_run(
                project_id,
                parent_kind=kind,
                parent_id=container,
                name=name,
                case=case,
                version=version,
                props=props,
                user_id=user_id,
            )
        return self.render_run(run)

    def test_run(self, project_id: int, run_id: int, *, expand: str | None) -> Json:
        return self.render_run(self._run(project_id, run_id), expand=expand)

    def update_run(
        self, project_id: int, run_id: int, body: Any, parent_id: int | None, parent_type: str | None
    ) -> Json:
        run = self._run(project_id, run_id)
        with self.tx():
            if parent_id is not None or parent_type is not None:
                # A move: "the request body will be ignored".
                kind, container = self._infer_parent(
                    project_id, parent_id, parent_type, RUN_PARENTS, "test run"
                )
                run.update(parent_kind=kind, parent_id=container)
                run["order"] = self._count("test-run", project_id, container) + 1
            else:
                body = _require_object(body, "test run")
                props, _ = self._parse_properties(
                    project_id, "test-runs", body.get("properties"), "test run", required=False
                )
                name = _name(body, "test run", required=False)
                if name is not None:
                    run["name"] = name
                if body.get("test_case_version_id") is not None:
                    case = self._require("test-case", run["link_id"], project_id)
                    run["test_case_version_id"] = self._run_version(
                        project_id, case, body["test_case_version_id"], "test run"
                    )["id"]
                run["props"] = {**run["props"], **props}
                self._index_properties("test-run", project_id, run_id, run["props"])
            run["last_modified_date"] = format_time(time.time())
            self._put("test-run", run)
        return self.render_run(run)

    def _delete_run(self, project_id: int, run_id: int) -> None:
        logs = [
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM objects WHERE kind = 'test-log' AND link_id = ?", (run_id,)
            )
        ]
        step_logs = [
            row[0]
            for log_id in logs
            for row in self.conn.execute("SELECT id FROM refs WHERE owner_id = ?", (log_id,))
        ]
        self._delete_rows([run_id, *logs, *step_logs])

    def delete_run(self, project_id: int, run_id: int) -> Json:
        self._run(project_id, run_id)
        with self.tx():
            self._delete_run(project_id, run_id)
        return {"message": f"Test run {run_id} was deleted"}

    # ------------------------------------------------------------------ test logs

    def render_log(self, log: Json, *, full: bool = True) -> Json:
        project_id = log["project_id"]
        run_id = log["link_id"]
        status = self._status(project_id, log["status_id"]) or {
            "id": log["status_id"], "name": "Unknown", "is_default": False, "color": "", "active": False,
        }  # fmt: skip
        out: Json = {
            "links": [
                {
                    "rel": "self",
                    "href": f"{self.api_url}/projects/{project_id}/test-runs/{run_id}/test-logs/{log['id']}",
                }
            ],
            "id": log["id"],
            "test_case_version_id": log["test_case_version_id"],
            "exe_start_date": log["exe_start_date"],
            "exe_end_date": log["exe_end_date"],
            "note": log["note"],
            "name": log["name"],
            "status": self.render_status(status),
            "test_run_id": run_id,
        }
        for key in ("planned_exe_time", "actual_exe_time", "build_number", "build_url", "result_number"):
            if log.get(key) is not None:
                out[key] = log[key]
        if full:
            out["properties"] = self.render_properties(project_id, "test-runs", log["props"])
            out["test_step_logs"] = [self._render_step_log(project_id, step) for step in log["step_logs"]]
        return out

    def _render_step_log(self, project_id: int, step: Json) -> Json:
        status = self._status(project_id, step["status_id"])
        out: Json = {
            "test_step_log_id": step["id"],
            "user_id": step["user_id"],
            "status": self.render_status(status) if status else {"id": step["status_id"]},
            "description": step["description"],
            "expected_result": step["expected_result"],
            "actual_result": step["actual_result"],
            "order": step["order"],
        }
        # An automation step log whose test case has fewer steps than the log has no test_step_id.
        for key in ("test_step_id", "called_test_case_id", "parent_test_step_id", "exe_date"):
            if step.get(key) is not None:
                out[key] = step[key]
        return out

    def _parse_step_logs(
        self, project_id: int, raw: Any, version: Json, what: str, user_id: int
    ) -> list[Json]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad(f"{what}.test_step_logs must be an array")
        steps = {step["id"]: step for step in version["steps"]}
        parsed: list[Json] = []
        for index, item in enumerate(raw):
            where = f"{what}.test_step_logs[{index}]"
            if not isinstance(item, dict):
                raise bad(f"{where} must be an object")
            step_id = _int(item.get("test_step_id"))
            if step_id is None:
                raise bad(f"{where}.test_step_id is required")
            step = steps.get(step_id)
            called = _int(item.get("called_test_case_id"))
            parent_step = _int(item.get("parent_test_step_id"))
            if step is None and called is not None:
                # A step of a called test case: its caller step must be in this version and call that case.
                caller = steps.get(parent_step or -1)
                callee = self._get("test-case", called, project_id)
                if caller is None or caller.get("called_test_case_id") != called or callee is None:
                    raise bad(
                        f"{where}: parent_test_step_id {parent_step} is not a step of test case version "
                        f"{version['id']} calling test case {called}"
                    )
                callee_version = self._latest_approved(called) or self._latest(callee)
                step = next((s for s in callee_version["steps"] if s["id"] == step_id), None)
            if step is None:
                raise bad(
                    f"{where}.test_step_id {step_id} is not a step of test case version {version['id']}"
                    f" (version {_version_text(version)}; its steps: {', '.join(str(s) for s in steps) or 'none'})"
                )
            status = self._parse_status(project_id, item.get("status"), f"{where}.status")
            actual = item.get("actual_result", "")
            if actual is not None and not isinstance(actual, str):
                raise bad(f"{where}.actual_result must be a string")
            exe_date = None
            if item.get("exe_date") is not None:
                moment = parse_time(item["exe_date"])
                if moment is None:
                    raise bad(f"{where}.exe_date must be an ISO 8601 date-time")
                exe_date = format_time(moment)
            order = _int(item.get("order"))
            parsed.append(
                {
                    "test_step_id": step_id,
                    "status_id": status["id"],
                    "description": item.get("description")
                    if isinstance(item.get("description"), str)
                    else step["description"],
                    "expected_result": item.get("expected_result")
                    if isinstance(item.get("expected_result"), str)
                    else step["expected"],
                    "actual_result": actual or "",
                    "order": order if order is not None else step.get("order", index + 1),
                    "called_test_case_id": called,
                    "parent_test_step_id": parent_step,
                    "exe_date": exe_date,
                    "user_id": user_id,
                }
            )
        return parsed

    def _parse_exe_dates(self, body: Json, what: str) -> tuple[datetime, datetime]:
        moments = []
        for key in ("exe_start_date", "exe_end_date"):
            raw = body.get(key)
            if raw is None:
                raise bad(f"{what}.{key} is required (an ISO 8601 date-time)")
            moment = parse_time(raw)
            if moment is None:
                raise bad(f"{what}.{key} must be an ISO 8601 date-time, got {raw!r}")
            moments.append(moment)
        if moments[1] < moments[0]:
            raise bad(f"{what}.exe_end_date is before exe_start_date")
        return moments[0], moments[1]

    def _insert_log(self, project_id: int, run: Json, log: Json, step_logs: list[Json]) -> Json:
        for step in step_logs:
            step["id"] = self.new_id()
        log["step_logs"] = step_logs
        self._put("test-log", log)
        self.conn.executemany(
            "INSERT INTO refs (id, kind, project_id, owner_id) VALUES (?, 'test-step-log', ?, ?)",
            [(step["id"], project_id, log["id"]) for step in step_logs],
        )
        self._index_properties("test-log", project_id, log["id"], log["props"])
        self._follow_latest(project_id, run)
        return log

    def _follow_latest(self, project_id: int, run: Json) -> None:
        """Point the run's ``latest_test_log`` (and its Status property) at the log that ended last."""
        row = self.conn.execute(
            "SELECT body FROM objects WHERE kind = 'test-log' AND link_id = ? ORDER BY sort_key DESC, id DESC LIMIT 1",
            (run["id"],),
        ).fetchone()
        status_field = self._field_by_label(project_id, "test-runs", "Status")
        if row is None:
            run["latest"] = None
            if status_field is not None and status_field.get("default_value"):
                run["props"][str(status_field["id"])] = status_field["default_value"]
        else:
            log = json.loads(row[0])
            status = self._status(project_id, log["status_id"])
            run["latest"] = {
                "id": log["id"],
                "status": status["name"] if status else "",
                "exe_start_date": log["exe_start_date"],
                "exe_end_date": log["exe_end_date"],
            }
            if status_field is not None:
                run["props"][str(status_field["id"])] = str(log["status_id"])
        run["last_modified_date"] = format_time(time.time())
        self._put("test-run", run)
        self._index_properties("test-run", project_id, run["id"], run["props"])

    def create_log(self, project_id: int, run_id: int, body: Any, user_id: int) -> Json:
        run = self._run(project_id, run_id)
        body = _require_object(body, "test log")
        if "status" not in body:
            raise bad('test log.status is required: {"id": <execution status id>}')
        status = self._parse_status(project_id, body.get("status"), "test log.status")
        start, end = self._parse_exe_dates(body, "test log")
        case = self._require("test-case", run["link_id"], project_id)
        if body.get("test_case_version_id") is not None:
            version = self._run_version(project_id, case, body["test_case_version_id"], "test log")
        else:
            # "If it is omitted, the submitted Test Log will be associated with the Test Case's latest
            # approved version" (the run's own version when none is approved).
            version = self._latest_approved(case["id"]) or self._require_version(run["test_case_version_id"])
        props, _ = self._parse_properties(
            project_id, "test-runs", body.get("properties"), "test log", required=False
        )
        step_logs = self._parse_step_logs(
            project_id, body.get("test_step_logs"), version, "test log", user_id
        )
        attachments = self._parse_inline_attachments(body.get("attachments"), "test log")
        note = _text(body, "note", "test log", default="") or ""
        user = self.user(user_id) or {}
        with self.tx():
            log = {
                "id": self.new_id(),
                "project_id": project_id,
                "parent_kind": "test-run",
                "parent_id": run_id,
                "link_id": run_id,
                "sort_key": end.timestamp(),
                "test_case_version_id": version["id"],
                "status_id": status["id"],
                "exe_start_date": format_time(start),
                "exe_end_date": format_time(end),
                "note": note,
                "name": _text(body, "name", "test log", default=run["name"]) or run["name"],
                "props": props,
                "user_id": user_id,
                "submittedBy": user.get("username", ""),
                "automation": False,
                "created_date": format_time(time.time()),
                **{
                    key: body.get(key)
                    for key in (
                        "planned_exe_time",
                        "actual_exe_time",
                        "build_number",
                        "build_url",
                        "result_number",
                    )
                    if body.get(key) is not None
                },
            }
            self._insert_log(project_id, run, log, step_logs)
            self._store_attachments(project_id, "test-logs", log["id"], attachments, user_id)
        return self.render_log(log)

    def _require_version(self, version_id: int) -> Json:
        version = self._version(version_id)
        if version is None:
            raise QTestError(500, f"test case version {version_id} is missing")
        return version

    def test_logs(self, project_id: int, run_id: int, *, page: int, page_size: int) -> tuple[int, list[Json]]:
        self._run(project_id, run_id)
        total = int(
            self.conn.execute(
                "SELECT COUNT(*) FROM objects WHERE kind = 'test-log' AND link_id = ?", (run_id,)
            ).fetchone()[0]
        )
        limit, offset = _page_bounds(page, page_size)
        logs = self._select(
            "SELECT body FROM objects WHERE kind = 'test-log' AND link_id = ? ORDER BY id LIMIT ? OFFSET ?",
            (run_id, limit, offset),
        )
        return total, [self.render_log(log) for log in logs]

    def _log(self, project_id: int, run_id: int, log_id: int) -> Json:
        self._run(project_id, run_id)
        log = self._get("test-log", log_id, project_id)
        if log is None or log["link_id"] != run_id:
            raise QTestError(404, f"Test log {log_id} does not exist in test run {run_id}")
        return log

    def test_log(self, project_id: int, run_id: int, log_id: int) -> Json:
        return self.render_log(self._log(project_id, run_id, log_id))

    def last_log(self, project_id: int, run_id: int) -> Json:
        run = self._run(project_id, run_id)
        if not run.get("latest"):
            raise QTestError(404, f"Test run {run_id} has no test log")
        return self.test_log(project_id, run_id, run["latest"]["id"])

    def update_log(self, project_id: int, run_id: int, log_id: int, body: Any, user_id: int) -> Json:
        log = self._log(project_id, run_id, log_id)
        run = self._run(project_id, run_id)
        body = _require_object(body, "test log")
        status = self._parse_status(project_id, body.get("status"), "test log.status")
        start, end = self._parse_exe_dates(body, "test log")
        version = self._require_version(log["test_case_version_id"])
        props, _ = self._parse_properties(
            project_id, "test-runs", body.get("properties"), "test log", required=False
        )
        step_logs = None
        if body.get("test_step_logs") is not None:
            step_logs = self._parse_step_logs(
                project_id, body["test_step_logs"], version, "test log", user_id
            )
        with self.tx():
            log.update(
                status_id=status["id"],
                exe_start_date=format_time(start),
                exe_end_date=format_time(end),
                sort_key=end.timestamp(),
            )
            if "note" in body:
                log["note"] = _text(body, "note", "test log", default="") or ""
            log["props"] = {**log["props"], **props}
            if step_logs is not None:
                self.conn.execute("DELETE FROM refs WHERE owner_id = ?", (log_id,))
                for step in step_logs:
                    step["id"] = self.new_id()
                self.conn.executemany(
                    "INSERT INTO refs (id, kind, project_id, owner_id) VALUES (?, 'test-step-log', ?, ?)",
                    [(step["id"], project_id, log_id) for step in step_logs],
                )
                log["step_logs"] = step_logs
            self._put("test-log", log)
            self._index_properties("test-log", project_id, log_id, log["props"])
            self._follow_latest(project_id, run)
        return self.render_log(log)

    # ------------------------------------------------------------------ automation logs

    def _automation_status(self, project_id: int, raw: Any, what: str) -> Json:
        name = AUTOMATION_STATUS_MAP.get(raw.upper()) if isinstance(raw, str) else None
        status = next((s for s in self._statuses(project_id) if s["name"] == name), None)
        if status is None:
            mapped = ", ".join(sorted(AUTOMATION_STATUS_MAP))
            raise bad(f"{what} {raw!r} is not mapped in the project's automation settings (mapped: {mapped})")
        return status

    def _check_automation_item(self, project_id: int, item: Any, what: str, *, bulk: bool) -> Json:
        """Everything an automation log needs, checked (raises on the first problem)."""
        if not isinstance(item, dict):
            raise bad(f"{what} must be an object")
        name = _name(item, what)
        content = item.get("automation_content")
        if not isinstance(content, str) or not content.strip():
            raise bad(f"{what}.automation_content is required (the test case fingerprint)")
        status = self._automation_status(project_id, item.get("status"), f"{what}.status")
        start, end = self._parse_exe_dates(item, what)
        modules: list[str] = []
        if bulk:
            raw_modules = item.get("module_names")
            if (
                not isinstance(raw_modules, list)
                or not raw_modules
                or not all(isinstance(m, str) and m.strip() for m in raw_modules)
            ):
                raise bad(f"{what}.module_names is required (an array of folder names)")
            modules = list(raw_modules)
        raw_steps = item.get("test_step_logs") or []
        if not isinstance(raw_steps, list):
            raise bad(f"{what}.test_step_logs must be an array")
        steps: list[Json] = []
        for index, step in enumerate(raw_steps):
            where = f"{what}.test_step_logs[{index}]"
            if not isinstance(step, dict):
                raise bad(f"{where} must be an object")
            for key in ("description", "expected_result"):
                if not isinstance(step.get(key), str):
                    raise bad(f"{where}.{key} is required (a string)")
            steps.append(
                {
                    "description": step["description"],
                    "expected_result": step["expected_result"],
                    "actual_result": step.get("actual_result")
                    if isinstance(step.get("actual_result"), str)
                    else "",
                    "status": self._automation_status(project_id, step.get("status"), f"{where}.status"),
                    "status_text": step.get("status"),
                    "order": _int(step.get("order")),
                }
            )
        orders = [s["order"] for s in steps]
        if any(o is not None for o in orders):
            if sorted(o for o in orders if o is not None) != list(range(len(steps))) or None in orders:
                raise bad(
                    f"{what}.test_step_logs: order must be a continuous series starting from 0, got {orders}"
                )
            steps.sort(key=lambda s: s["order"])
        else:
            # "If the order is omitted, Test Steps will be alphabetically sorted".
            steps.sort(key=lambda s: s["description"])
        props, _ = self._parse_properties(
            project_id, "test-runs", item.get("properties"), what, required=False
        )
        case_props, _ = self._parse_properties(
            project_id, "test-cases", item.get("testcase_properties"), f"{what}.testcase", required=False
        )
        return {
            "name": name,
            "content": content,
            "status": status,
            "status_text": item.get("status"),
            "start": start,
            "end": end,
            "modules": modules,
            "steps": steps,
            "props": props,
            "case_props": case_props,
            "note": item.get("note") if isinstance(item.get("note"), str) else "",
            "version_id": item.get("test_case_version_id"),
        }

    def _case_by_content(self, project_id: int, content: str) -> Json | None:
        field = self._field_by_label(project_id, "test-cases", "Automation Content")
        if field is None:
            return None
        for row in self.conn.execute(
            "SELECT object_id FROM prop_index WHERE project_id = ? AND kind = 'test-case' AND field_id = ?"
            " AND value_norm = ? ORDER BY object_id",
            (project_id, field["id"], content.lower()),
        ):
            case = self._get("test-case", row[0], project_id)
            if case is not None and self._latest(case)["props"].get(str(field["id"])) == content:
                return case
        return None

    def _automation_case(self, project_id: int, checked: Json, module_id: int, user_id: int) -> Json:
        """The test case of an automation log: found by its fingerprint, else created (approved 1.0)."""
        case = self._case_by_content(project_id, checked["content"])
        if case is not None:
            return case
        props = dict(checked["case_props"])
        for label, value in (("Automation", "Yes"), ("Type", "Automation")):
            field = self._field_by_label(project_id, "test-cases", label)
            if field is not None:
                props[str(field["id"])] = next(
                    (str(v["value"]) for v in field["allowed_values"] if v["label"] == value), ""
                )
        content_field = self._field_by_label(project_id, "test-cases", "Automation Content")
        if content_field is not None:
            props[str(content_field["id"])] = checked["content"]
        steps = [
            {"description": s["description"], "expected": s["expected_result"], "order": order}
            for order, s in enumerate(checked["steps"], 1)
        ]
        case, _version = self._insert_case(
            project_id,
            name=checked["name"],
            parent_id=module_id,
            props=props,
            description="",
            precondition="",
            steps=steps,
            user_id=user_id,
            approved=True,
        )
        return case

    def _automation_log(self, project_id: int, run: Json, case: Json, checked: Json, user_id: int) -> Json:
        version = (
            self._run_version(project_id, case, checked["version_id"], "automation log")
            if checked["version_id"] is not None
            else self._latest_approved(case["id"]) or self._latest(case)
        )
        step_logs = [
            {
                "test_step_id": version["steps"][i]["id"] if i < len(version["steps"]) else None,
                "status_id": s["status"]["id"],
                "description": s["description"],
                "expected_result": s["expected_result"],
                "actual_result": s["actual_result"],
                "order": i + 1,
                "user_id": user_id,
            }
            for i, s in enumerate(checked["steps"])
        ]
        log = {
            "id": self.new_id(),
            "project_id": project_id,
            "parent_kind": "test-run",
            "parent_id": run["id"],
            "link_id": run["id"],
            "sort_key": checked["end"].timestamp(),
            "test_case_version_id": version["id"],
            "status_id": checked["status"]["id"],
            "exe_start_date": format_time(checked["start"]),
            "exe_end_date": format_time(checked["end"]),
            "note": checked["note"],
            "name": checked["name"],
            "props": checked["props"],
            "user_id": user_id,
            "automation": True,
            "automation_content": checked["content"],
            "created_date": format_time(time.time()),
        }
        return self._insert_log(project_id, run, log, step_logs)

    def _render_automation_log(self, log: Json, checked: Json) -> Json:
        project_id = log["project_id"]
        return {
            "links": [
                {
                    "rel": "self",
                    "href": f"{self.api_url}/projects/{project_id}/test-runs/{log['link_id']}/auto-test-logs/{log['id']}",
                }
            ],
            "id": log["id"],
            "test_case_version_id": log["test_case_version_id"],
            "exe_start_date": log["exe_start_date"],
            "exe_end_date": log["exe_end_date"],
            "note": log["note"],
            "name": log["name"],
            "properties": self.render_properties(project_id, "test-runs", log["props"]),
            "automation_content": checked["content"],
            "status": checked["status_text"],
            "test_step_logs": [
                {
                    "description": s["description"],
                    "expected_result": s["expected_result"],
                    "actual_result": s["actual_result"],
                    "status": s["status_text"],
                    "order": index,
                }
                for index, s in enumerate(checked["steps"])
            ],
        }

    def create_auto_log(
        self, project_id: int, run_id: int, body: Any, user_id: int, *, suite_date: str | None = None
    ) -> Json:
        """``POST .../test-runs/{testRunId}/auto-test-logs``: to the run, or (run 0) to a new or reused one."""
        self._project(project_id)
        checked = self._check_automation_item(project_id, body, "automation log", bulk=False)
        run = self._run(project_id, run_id) if run_id else None
        with self.tx():
            if run is None:
                case = self._automation_case(project_id, checked, self._default_module(project_id), user_id)
                suite_name = AUTOMATION_SUITE if suite_date is None else f"Automation {suite_date}"
                suite = next(
                    (s for s in self._children("test-suite", project_id, 0) if s["name"] == suite_name), None
                ) or self._insert_suite(project_id, "root", 0, suite_name, {}, {})
                run = next(
                    (
                        r
                        for r in self._children("test-run", project_id, suite["id"])
                        if r["link_id"] == case["id"]
                    ),
                    None,
                ) or self._insert_run(
                    project_id,
                    parent_kind="test-suite",
                    parent_id=suite["id"],
                    name=checked["name"],
                    case=case,
                    version=self._latest_approved(case["id"]) or self._latest(case),
                    props={},
                    user_id=user_id,
                    automation=True,
                )
            else:
                case = self._require("test-case", run["link_id"], project_id)
            log = self._automation_log(project_id, run, case, checked, user_id)
        return self._render_automation_log(log, checked)

    # -- the bulk, asynchronous submission -------------------------------------------------------------

    def render_job(self, job: Json) -> Json:
        return {
            "id": job["id"],
            "state": job["state"],
            "type": "AUTOMATION_TEST_LOG",
            "contentType": "application/json",
            "content": job["content"],
        }

    def _job(self, job_id: int) -> Json | None:
        row = self.conn.execute(
            "SELECT id, project_id, state, created, polls, user_id, request, content FROM jobs WHERE id = ?",
            (job_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "project_id", "state", "created", "polls", "user_id", "request", "content")
        return dict(zip(keys, row, strict=True))

    def submit_auto_logs(self, project_id: int, body: Any, user_id: int) -> Json:
        """``POST /projects/{id}/auto-test-logs?type=automation``: queued; the poll answers its state."""
        self._project(project_id)
        body = _require_object(body, "automation request")
        if not isinstance(body.get("test_logs"), list) or not body["test_logs"]:
            raise bad("automation request.test_logs is required (a non-empty array)")
        cycle_ref = body.get("test_cycle")
        if not isinstance(cycle_ref, str | int) or isinstance(cycle_ref, bool) or not str(cycle_ref).strip():
            raise bad("automation request.test_cycle is required (the PID or id of a test cycle)")
        with self.tx():
            job_id = self.new_id()
            self.conn.execute(
                "INSERT INTO jobs (id, project_id, state, created, polls, user_id, request, content)"
                " VALUES (?, ?, ?, ?, 0, ?, ?, '')",
                (job_id, project_id, JOB_WAITING, time.time(), user_id, dumps(body)),
            )
        self._pending_jobs.add(job_id)
        job = self._job(job_id)
        assert job is not None
        return self.render_job(job)

    def poll_job(self, job_id: int) -> Json:
        job = self._job(job_id)
        if job is None:
            raise QTestError(404, f"Queue processing job {job_id} does not exist")
        if job["state"] in (JOB_WAITING, JOB_PROCESSING):
            polls = job["polls"] + 1
            with self.tx():
                self.conn.execute(
                    "UPDATE jobs SET polls = ?, state = ? WHERE id = ?", (polls, JOB_PROCESSING, job_id)
                )
            if self._job_due(job["created"], polls):
                self._process_job(job_id)
            job = self._job(job_id)
            assert job is not None
        return self.render_job(job)

    def _job_due(self, created: float, polls: int) -> bool:
        if polls >= self.queue_polls:
            return True
        return self.queue_delay_s is not None and time.time() - created >= self.queue_delay_s

    def process_due_jobs(self) -> None:
        """Finish the queued submissions whose time has come (called before serving each request)."""
        if not self._pending_jobs:
            return
        for job_id in sorted(self._pending_jobs):
            job = self._job(job_id)
            if job is None or job["state"] not in (JOB_WAITING, JOB_PROCESSING):
                self._pending_jobs.discard(job_id)
            elif self._job_due(job["created"], job["polls"]):
                self._process_job(job_id)

    def _process_job(self, job_id: int) -> None:
        """Apply one submission, all or nothing: SUCCESS with what was made, or FAILED with why."""
        job = self._job(job_id)
        assert job is not None
        self._pending_jobs.discard(job_id)
        project_id, user_id = job["project_id"], job["user_id"]
        request = json.loads(job["request"])
        try:
            with self.tx():
                results = self._apply_bulk(project_id, request, user_id)
                self.conn.execute(
                    "UPDATE jobs SET state = ?, content = ? WHERE id = ?",
                    (JOB_SUCCESS, dumps(results), job_id),
                )
        except Exception as exc:  # a sandbox bug must fail the job, not leave it processing forever
            message = exc.message if isinstance(exc, QTestError) else f"unexpected error: {exc}"
            with self.tx():
                self.conn.execute(
                    "UPDATE jobs SET state = ?, content = ? WHERE id = ?",
                    (JOB_FAILED, dumps({"message": message}), job_id),
                )

    def _apply_bulk(self, project_id: int, request: Json, user_id: int) -> Json:
        if self._get("project", project_id) is None:
            raise bad(f"project {project_id} no longer exists")
        ref = str(request["test_cycle"]).strip()
        cycle = (
            self._get("test-cycle", int(ref), project_id)
            if ref.isdigit()
            else self._by_pid("test-cycle", project_id, ref)
        )
        if cycle is None:
            raise bad(f"test_cycle '{ref}' is not a test cycle of project {project_id}")
        checked = [
            self._check_automation_item(project_id, item, f"test_logs[{index}]", bulk=True)
            for index, item in enumerate(request["test_logs"])
        ]
        created: list[Json] = []
        for item in checked:
            module_id = self._module_path(project_id, item["modules"])
            case = self._automation_case(project_id, item, module_id, user_id)
            # "In Test Execution tree, the first folder will be created as a Test Cycle directly under the
            # parent Test Cycle ... Other folders will be created as sub Test Cycles" (no duplicates).
            parent = cycle["id"]
            for name in item["modules"]:
                match = next(
                    (c for c in self._children("test-cycle", project_id, parent) if c["name"] == name), None
                )
                parent = (
                    match["id"]
                    if match
                    else self._insert_cycle(project_id, "test-cycle", parent, name, {})["id"]
                )
            run = next(
                (r for r in self._children("test-run", project_id, parent) if r["link_id"] == case["id"]),
                None,
            ) or self._insert_run(
                project_id,
                parent_kind="test-cycle",
                parent_id=parent,
                name=item["name"],
                case=case,
                version=self._latest_approved(case["id"]) or self._latest(case),
                props={},
                user_id=user_id,
                automation=True,
            )
            log = self._automation_log(project_id, run, case, item, user_id)
            created.append(
                {
                    "automation_content": item["content"],
                    "test_case_id": case["id"],
                    "test_run_id": run["id"],
                    "test_log_id": log["id"],
                }
            )
        return {"test_cycle_id": cycle["id"], "test_logs": created}

    # ------------------------------------------------------------------ attachments

    def _parse_inline_attachments(self, raw: Any, what: str) -> list[tuple[str, str, bytes]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad(f"{what}.attachments must be an array of {{name, content_type, data}}")
        parsed: list[tuple[str, str, bytes]] = []
        for index, item in enumerate(raw):
            where = f"{what}.attachments[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                raise bad(f"{where}.name is required")
            if not isinstance(item.get("data"), str):
                raise bad(f"{where}.data is required (the file's bytes, base64-encoded)")
            try:
                data = base64.b64decode(item["data"], validate=True)
            except (binascii.Error, ValueError):
                raise bad(f"{where}.data is not valid base64") from None
            if len(data) > self.attachment_max_bytes:
                raise QTestError(
                    413,
                    f"{where} '{item['name']}' is too large ({len(data)} bytes; the limit is {self.attachment_max_bytes})",
                )
            content_type = item.get("content_type") if isinstance(item.get("content_type"), str) else ""
            parsed.append((item["name"], content_type or "application/octet-stream", data))
        return parsed

    def _store_attachments(
        self,
        project_id: int,
        object_type: str,
        object_id: int,
        files: Sequence[tuple[str, str, bytes]],
        user_id: int,
    ) -> list[int]:
        ids = []
        for name, content_type, data in files:
            attachment_id = self.new_id()
            self.conn.execute(
                "INSERT INTO attachments (id, project_id, object_type, object_id, name, content_type, size, sha256,"
                " created_date, author_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    attachment_id,
                    project_id,
                    object_type,
                    object_id,
                    name,
                    content_type,
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    format_time(time.time()),
                    user_id,
                    data,
                ),
            )
            ids.append(attachment_id)
        return ids

    def check_attachment_target(self, project_id: int, object_type: str, object_id: int) -> None:
        """400 for a type that takes no attachments (test runs among them), 404 for a missing object."""
        self._project(project_id)
        if object_type not in ATTACHMENT_TYPES:
            hint = " (attach to the run's test log instead)" if object_type == "test-runs" else ""
            raise bad(
                f"objectType '{object_type}' cannot hold attachments{hint}; valid: {', '.join(ATTACHMENT_TYPES)}"
            )
        if object_type in ("test-steps", "test-step-logs"):
            row = self.conn.execute("SELECT kind, project_id FROM refs WHERE id = ?", (object_id,)).fetchone()
            kind = object_type[:-1]
            if row is None or row[0] != kind or row[1] != project_id:
                raise QTestError(404, f"{LABEL[kind]} {object_id} does not exist in project {project_id}")
            return
        kind = KIND_OF.get(object_type)
        if kind is None:
            # Builds, requirements and defects are not kept by the sandbox, so none exists.
            raise QTestError(404, f"{LABEL[object_type]} {object_id} does not exist in project {project_id}")
        self._require(kind, object_id, project_id)

    def render_attachment(self, row: Sequence[Any]) -> Json:
        (
            attachment_id,
            project_id,
            object_type,
            object_id,
            name,
            content_type,
            _size,
            _sha,
            created,
            author_id,
        ) = row
        author = self.user(author_id) or {}
        url = f"{self.api_url}/projects/{project_id}/{object_type}/{object_id}/attachments/{attachment_id}"
        return {
            "links": [{"rel": "self", "href": url}],
            "name": name,
            "content_type": content_type,
            "id": attachment_id,
            "web_url": url,
            "created_date": created,
            "author": {
                "id": author_id,
                "email": author.get("email", ""),
                "first_name": author.get("first_name", ""),
                "last_name": author.get("last_name", ""),
            },
            "artifact_id": object_id,
        }

    _ATTACHMENT_COLUMNS = (
        "id, project_id, object_type, object_id, name, content_type, size, sha256, created_date, author_id"
    )

    def upload(
        self,
        project_id: int,
        object_type: str,
        object_id: int,
        name: str,
        content_type: str,
        data: bytes,
        user_id: int,
    ) -> Json:
        self.check_attachment_target(project_id, object_type, object_id)
        if len(data) > self.attachment_max_bytes:
            raise QTestError(
                413,
                f"The attachment is too large ({len(data)} bytes; the limit is {self.attachment_max_bytes})",
            )
        with self.tx():
            (attachment_id,) = self._store_attachments(
                project_id, object_type, object_id, [(name, content_type, data)], user_id
            )
        return self.attachment(project_id, object_type, object_id, attachment_id)

    def attachment(self, project_id: int, object_type: str, object_id: int, attachment_id: int) -> Json:
        row = self.conn.execute(
            f"SELECT {self._ATTACHMENT_COLUMNS} FROM attachments WHERE id = ? AND project_id = ?"
            " AND object_type = ? AND object_id = ?",
            (attachment_id, project_id, object_type, object_id),
        ).fetchone()
        if row is None:
            raise QTestError(404, f"Attachment {attachment_id} does not exist on {object_type} {object_id}")
        return self.render_attachment(row)

    def attachments(self, project_id: int, object_type: str, object_id: int) -> list[Json]:
        self.check_attachment_target(project_id, object_type, object_id)
        rows = self.conn.execute(
            f"SELECT {self._ATTACHMENT_COLUMNS} FROM attachments WHERE project_id = ? AND object_type = ?"
            " AND object_id = ? ORDER BY id",
            (project_id, object_type, object_id),
        ).fetchall()
        return [self.render_attachment(row) for row in rows]

    def attachment_content(
        self, project_id: int, object_type: str, object_id: int, attachment_id: int
    ) -> tuple[str, str, bytes]:
        self.check_attachment_target(project_id, object_type, object_id)
        row = self.conn.execute(
            "SELECT name, content_type, data FROM attachments WHERE id = ? AND project_id = ? AND object_type = ?"
            " AND object_id = ?",
            (attachment_id, project_id, object_type, object_id),
        ).fetchone()
        if row is None:
            raise QTestError(404, f"Attachment {attachment_id} does not exist on {object_type} {object_id}")
        return row[0], row[1], bytes(row[2])

    def delete_attachment(
        self, project_id: int, object_type: str, object_id: int, attachment_id: int
    ) -> Json:
        self.attachment(project_id, object_type, object_id, attachment_id)
        with self.tx():
            self.conn.execute("DELETE FROM attachments WHERE id = ?", (attachment_id,))
        return {"message": f"Attachment {attachment_id} was deleted"}

    def search_attachments(
        self,
        project_id: int,
        object_type: str,
        ids: Sequence[int],
        author: int | None,
        page: int,
        page_size: int,
    ) -> tuple[int, list[Json]]:
        self._project(project_id)
        if object_type not in ATTACHMENT_TYPES or object_type == "test-step-logs":
            raise bad(
                f"type must be one of {', '.join(t for t in ATTACHMENT_TYPES if t != 'test-step-logs')}"
            )
        sql = "FROM attachments WHERE project_id = ? AND object_type = ?"
        params: list[Any] = [project_id, object_type]
        if ids:
            sql += f" AND object_id IN ({','.join('?' * len(ids))})"
            params.extend(ids)
        if author is not None:
            sql += " AND author_id = ?"
            params.append(author)
        total = int(self.conn.execute(f"SELECT COUNT(*) {sql}", params).fetchone()[0])
        limit, offset = _page_bounds(page, page_size)
        rows = self.conn.execute(
            f"SELECT {self._ATTACHMENT_COLUMNS} {sql} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset]
        ).fetchall()
        return total, [self.render_attachment(row) for row in rows]

    # ------------------------------------------------------------------ search

    def _criterion(self, project_id: int, kind: str, field: str) -> tuple[str, Any]:
        """How a criterion name maps to an object: ("attr", getter name) or ("prop", field)."""
        name = field.strip().lower()
        attribute = _SEARCH_ATTRIBUTES.get(kind, {}).get(name) or _COMMON_ATTRIBUTES.get(name)
        if attribute is not None:
            return "attr", attribute
        object_type = _PROPERTY_TYPE.get(kind)
        if object_type is not None:
            found = self._field_by_label(project_id, object_type, field.strip())
            if found is None and field.strip().isdigit():
                found = self._field_map(project_id, object_type).get(int(field.strip()))
            if found is not None:
                if found.get("attribute"):
                    return "attr", found["attribute"]
                return "prop", found
        known = sorted({*_COMMON_ATTRIBUTES, *_SEARCH_ATTRIBUTES.get(kind, {})})
        labels = [f["label"] for f in self._fields(project_id, object_type)] if object_type else []
        raise bad(
            f"search: '{field}' is not a criterion of {COLLECTION_OF[kind]} (known: {', '.join(known)}; "
            f"field labels: {', '.join(labels) or 'none'})"
        )

    def _criterion_values(
        self, project_id: int, kind: str, obj: Json, criterion: tuple[str, Any]
    ) -> list[str]:
        how, what = criterion
        if how == "prop":
            # A test case's properties belong to its versions: the latest one is searched.
            props = self._latest(obj)["props"] if kind == "test-case" else obj.get("props", {})
            value = props.get(str(what["id"]), "")
            if value == "":
                return []
            if what["data_type"] in PICKLIST_TYPES or what["data_type"] == USER_LIST:
                choices = {str(v["value"]): v for v in self._allowed_values(what)}
                ids = [str(i) for i in json.loads(value)] if value.startswith("[") else [value]
                out: list[str] = []
                for item in ids:
                    out.append(item)
                    choice = choices.get(item)
                    if choice is not None:
                        out.append(choice["label"])
                    if what["data_type"] == USER_LIST:
                        user = self.user(int(item))
                        if user is not None:
                            out.append(user["username"])
                return out
            return [value]
        if what == "status":
            status = self._status(project_id, obj.get("status_id", 0))
            return [str(obj.get("status_id")), status["name"]] if status else []
        if what == "version":
            version = self._version(obj.get("test_case_version_id") or obj.get("latest_version_id") or 0)
            return [_version_text(version), str(version["id"])] if version else []
        if what in ("description", "precondition", "name") and kind == "test-case":
            return [self._latest(obj)[what]]
        if what == "last_modified_date" and kind == "test-case":
            return [self._latest(obj)["last_modified_date"]]
        if what == "test_case":
            case = self._get("test-case", obj.get("link_id") or 0, project_id)
            return [str(case["id"]), case["pid"], self._latest(case)["name"]] if case else []
        if what == "test_run":
            run = self._get("test-run", obj.get("link_id") or 0, project_id)
            return [str(run["id"]), run["pid"], run["name"]] if run else []
        if what == "target_release_id":
            value = obj.get("target_release_id")
            return [str(value), str(-value)] if value else []
        value = obj.get(what)
        return [] if value is None or value == "" else [str(value)]

    def _indexed_candidates(self, project_id: int, kind: str, conjunction: Sequence[Term]) -> set[int] | None:
        """Ids an ``=`` term allows, looked up in an index; None when no term of the conjunction can."""
        for term in conjunction:
            if term.op != "=" or term.value == "":
                continue
            how, what = self._criterion(project_id, kind, term.field)
            wanted = term.value.lower()
            if how == "prop":
                values = [wanted]
                if what["data_type"] in PICKLIST_TYPES or what["data_type"] == USER_LIST:
                    values = [
                        str(v["value"])
                        for v in self._allowed_values(what)
                        if v["label"].lower() == wanted or str(v["value"]) == wanted
                    ]
                    if what["data_type"] == USER_LIST:
                        values += [str(u["id"]) for u in self._users() if u["username"].lower() == wanted]
                if not values:
                    return set()
                marks = ",".join("?" * len(values))
                return {
                    row[0]
                    for row in self.conn.execute(
                        "SELECT object_id FROM prop_index WHERE project_id = ? AND kind = ? AND field_id = ?"
                        f" AND value_norm IN ({marks})",
                        (project_id, kind, what["id"], *values),
                    )
                }
            if what == "name":
                return {
                    row[0]
                    for row in self.conn.execute(
                        "SELECT id FROM objects WHERE kind = ? AND project_id = ? AND name_norm = ?",
                        (kind, project_id, wanted),
                    )
                }
            if what == "pid":
                found = self._by_pid(kind, project_id, term.value)
                return {found["id"]} if found else set()
            if what == "id":
                return {int(wanted)} if wanted.isdigit() else set()
        return None

    def search(
        self,
        project_id: int,
        body: Any,
        *,
        page: int,
        page_size: int,
        append_steps: bool,
        include_log_properties: bool,
    ) -> tuple[int, list[Json]]:
        self._project(project_id)
        body = _require_object(body, "search")
        object_type = body.get("object_type")
        if object_type not in SEARCH_TYPES:
            raise bad(f"search.object_type must be one of {', '.join(SEARCH_TYPES)}, got {object_type!r}")
        fields = body.get("fields")
        if fields is not None and (
            not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
        ):
            raise bad("search.fields must be an array of field names")
        query_text = body.get("query")
        if query_text is not None and not isinstance(query_text, str):
            raise bad("search.query must be a string")
        try:
            query: Query = parse_query(query_text)
        except QueryError as exc:
            raise bad(f"search.query: {exc}") from None
        kind = KIND_OF.get(object_type)
        if kind is None or kind == "module":
            return 0, []  # requirements, builds and defects: the sandbox keeps none
        criteria = {term.field: self._criterion(project_id, kind, term.field) for c in query for term in c}
        candidates: set[int] | None = set()
        for conjunction in query:
            allowed = self._indexed_candidates(project_id, kind, conjunction) if conjunction else None
            if allowed is None:
                candidates = None
                break
            assert candidates is not None
            candidates |= allowed
        if candidates is None:
            objects = self._select(
                "SELECT body FROM objects WHERE kind = ? AND project_id = ? ORDER BY id", (kind, project_id)
            )
        else:
            objects = [
                o for o in (self._get(kind, oid, project_id) for oid in sorted(candidates)) if o is not None
            ]
        matched = [
            obj
            for obj in objects
            if evaluate(
                query, lambda field, obj=obj: self._criterion_values(project_id, kind, obj, criteria[field])
            )
        ]
        total = len(matched)
        chunk = matched[(page - 1) * page_size : page * page_size]
        items = [self._render_found(kind, obj, append_steps, include_log_properties) for obj in chunk]
        if fields and "*" not in fields:
            wanted = {f.lower() for f in fields} | {"id", "links"}
            items = [{k: v for k, v in item.items() if k.lower() in wanted} for item in items]
        return total, items

    def _render_found(self, kind: str, obj: Json, append_steps: bool, include_log_properties: bool) -> Json:
        if kind == "test-case":
            return self.render_case(obj, steps=append_steps)
        if kind == "test-run":
            return self.render_run(obj)
        if kind == "test-cycle":
            return self.render_cycle(obj)
        if kind == "test-suite":
            return self.render_suite(obj)
        if kind == "release":
            return self.render_release(obj)
        return self.render_log(obj, full=include_log_properties)

    # ------------------------------------------------------------------ admin: counts, dump, reset

    def counts(self, project_id: int | None = None) -> Json:
        projects = [
            p["id"] for p in self._select("SELECT body FROM objects WHERE kind = 'project' ORDER BY id")
        ]
        if project_id is not None:
            self._project(project_id)
            projects = [project_id]
        per_project: dict[str, Json] = {}
        for pid in projects:
            counts: Json = {}
            for collection, kind in KIND_OF.items():
                counts[collection] = self._count(kind, pid)
            counts["test-case-versions"] = int(
                self.conn.execute("SELECT COUNT(*) FROM versions WHERE project_id = ?", (pid,)).fetchone()[0]
            )
            for ref_kind in ("test-step", "test-step-log"):
                counts[f"{ref_kind}s"] = int(
                    self.conn.execute(
                        "SELECT COUNT(*) FROM refs WHERE project_id = ? AND kind = ?", (pid, ref_kind)
                    ).fetchone()[0]
                )
            counts["attachments"] = int(
                self.conn.execute("SELECT COUNT(*) FROM attachments WHERE project_id = ?", (pid,)).fetchone()[
                    0
                ]
            )
            # Test logs that arrived through an automation endpoint (single or bulk).
            counts["automation-test-logs"] = int(
                self.conn.execute(
                    "SELECT COUNT(*) FROM objects WHERE kind = 'test-log' AND project_id = ?"
                    " AND json_extract(body, '$.automation')",
                    (pid,),
                ).fetchone()[0]
            )
            counts["queue-jobs"] = int(
                self.conn.execute("SELECT COUNT(*) FROM jobs WHERE project_id = ?", (pid,)).fetchone()[0]
            )
            per_project[str(pid)] = counts
        return {"projects": len(projects), "per_project": per_project}

    def dump(self, project_id: int) -> Json:
        """Every object of one project as the API shows it (plus parents and all versions), for reconciliation."""
        project = self._project(project_id)

        def rows(kind: str) -> list[Json]:
            return self._select(
                "SELECT body FROM objects WHERE kind = ? AND project_id = ? ORDER BY id", (kind, project_id)
            )

        def parent_of(obj: Json) -> Json:
            return {"type": obj.get("parent_kind"), "id": obj.get("parent_id")}

        cases = []
        for case in rows("test-case"):
            rendered = self.render_case(case, steps=True)
            rendered["versions"] = [self.render_case(case, v, steps=True) for v in self._versions(case["id"])]
            cases.append(rendered)
        attachments = [
            {**self.render_attachment(row[:10]), "object_type": row[2], "size": row[6], "sha256": row[7]}
            for row in self.conn.execute(
                f"SELECT {self._ATTACHMENT_COLUMNS} FROM attachments WHERE project_id = ? ORDER BY id",
                (project_id,),
            )
        ]
        jobs = [
            {**self.render_job(job), "polls": job["polls"]}
            for job in (
                self._job(row[0])
                for row in self.conn.execute(
                    "SELECT id FROM jobs WHERE project_id = ? ORDER BY id", (project_id,)
                )
            )
            if job is not None
        ]
        return {
            "project": self.render_project(project),
            "fields": {t: self.fields(project_id, t, include_inactive=True) for t in FIELD_OBJECT_TYPES},
            "execution_statuses": self.execution_statuses(project_id),
            "modules": [{**self.render_module(m), "_parent": parent_of(m)} for m in rows("module")],
            "test_cases": cases,
            "releases": [self.render_release(r) for r in rows("release")],
            "test_cycles": [{**self.render_cycle(c), "_parent": parent_of(c)} for c in rows("test-cycle")],
            "test_suites": [self.render_suite(s) for s in rows("test-suite")],
            "test_runs": [self.render_run(r) for r in rows("test-run")],
            "test_logs": [self.render_log(log) for log in rows("test-log")],
            "attachments": attachments,
            "queue_jobs": jobs,
        }

    def reset(self) -> None:
        """Delete every project and what it holds; users, tokens and the id sequence stay."""
        with self.tx():
            self.conn.execute("DELETE FROM objects WHERE kind != 'user'")
            for table in ("prop_index", "versions", "refs", "attachments", "jobs", "counters"):
                self.conn.execute(f"DELETE FROM {table}")
        self._fields_cache.clear()
        self._statuses_cache.clear()
        self._pending_jobs.clear()


# Search criteria that are attributes, not properties: criterion name (lower case) → stored key.
_COMMON_ATTRIBUTES: dict[str, str] = {
    "id": "id",
    "pid": "pid",
    "name": "name",
    "created date": "created_date",
    "last modified date": "last_modified_date",
}
_SEARCH_ATTRIBUTES: dict[str, dict[str, str]] = {
    "test-case": {
        "description": "description",
        "precondition": "precondition",
        "module": "parent_id",
        "version": "version",
    },
    "test-run": {"test case": "test_case", "test case version": "version", "parent": "parent_id"},
    "test-cycle": {
        "description": "description",
        "target release": "target_release_id",
        "parent": "parent_id",
    },
    "test-suite": {
        "description": "description",
        "target release": "target_release_id",
        "parent": "parent_id",
    },
    "release": {
        "description": "description",
        "note": "note",
        "start date": "start_date",
        "end date": "end_date",
    },
    "test-log": {
        "status": "status",
        "execution start date": "exe_start_date",
        "execution end date": "exe_end_date",
        "note": "note",
        "test run": "test_run",
        "test case version": "version",
        "submitted by": "submittedBy",
    },
}
# Whose field settings a kind's properties follow (test logs carry test-run fields).
_PROPERTY_TYPE: dict[str, str] = {
    "test-case": "test-cases",
    "test-run": "test-runs",
    "test-suite": "test-suites",
    "release": "releases",
    "test-log": "test-runs",
}
