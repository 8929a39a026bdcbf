"""Releases, test cycles and test suites: the containers test runs live in."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from zephyr_qtest.sandbox.common import parse_iso_datetime
from zephyr_qtest.sandbox.qtest.store.base import (
    Json,
    StoreBase,
    as_int,
    bad,
    format_time,
    name_field,
    require_object,
    text_field,
)

# Which containers may hold what (parentType values of the API).
CYCLE_PARENTS: tuple[str, ...] = ("root", "release", "test-cycle")


class CyclesStore(StoreBase):
    """Releases, test cycles and test suites: the containers test runs live in."""

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
            moment = parse_iso_datetime(raw)
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
        body = require_object(body, "release")
        name = name_field(body, "release")
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
                "description": text_field(body, "description", "release", default="") or "",
                "note": text_field(body, "note", "release", default="") or "",
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
        body = require_object(body, "release")
        name = name_field(body, "release", required=False)
        props, _ = self._parse_properties(
            project_id, "releases", body.get("properties"), "release", required=False
        )
        dates = self._dates(body, "release", ("start_date", "end_date"))
        with self.tx():
            if name is not None:
                release["name"] = name
            for key in ("description", "note"):
                if key in body:
                    release[key] = text_field(body, key, "release", default="") or ""
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
        target_release = as_int(body.get("target_release_id"))
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
            "target_build_id": as_int(body.get("target_build_id")),
            "created_date": now,
            "last_modified_date": now,
        }
        self._put("test-cycle", cycle)
        return cycle

    def create_cycle(
        self, project_id: int, body: Any, parent_id: int | None, parent_type: str | None
    ) -> Json:
        self._project(project_id)
        body = require_object(body, "test cycle")
        name = name_field(body, "test cycle")
        assert name is not None
        kind, container = self._infer_parent(project_id, parent_id, parent_type, CYCLE_PARENTS, "test cycle")
        target = as_int(body.get("target_release_id"))
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
                body = require_object(body, "test cycle")
                if "name" in body:
                    cycle["name"] = name_field(body, "test cycle")
                if "description" in body:
                    cycle["description"] = text_field(body, "description", "test cycle", default="") or ""
                for key in ("target_release_id", "target_build_id"):
                    if key in body:
                        cycle[key] = as_int(body[key])
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
            "target_release_id": as_int(body.get("target_release_id")),
            "target_build_id": as_int(body.get("target_build_id")),
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
        body = require_object(body, "test suite")
        name = name_field(body, "test suite")
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
        body = require_object(body, "test suite")
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
                suite["name"] = name_field(body, "test suite")
            if "description" in body:
                suite["description"] = text_field(body, "description", "test suite", default="") or ""
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
