"""Test runs: create in a container, list by scope, move, delete."""

from __future__ import annotations

import time
from typing import Any

from zephyr_qtest.sandbox.qtest.store.base import (
    Json,
    StoreBase,
    as_int,
    bad,
    format_time,
    name_field,
    page_bounds,
    require_object,
    version_text,
)

# Which containers may hold what (parentType values of the API).
RUN_PARENTS: tuple[str, ...] = ("root", "release", "test-cycle", "test-suite")


class RunsStore(StoreBase):
    """Test runs: create in a container, list by scope, move, delete."""

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
            out["test_case_version"] = version_text(version)
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
        limit, offset = page_bounds(page, page_size)
        runs = self._select(
            f"SELECT body FROM objects WHERE {condition} ORDER BY id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return total, [self.render_run(r, expand=expand) for r in runs]

    def _run_version(self, project_id: int, case: Json, raw: Any, what: str) -> Json:
        """The version a run (or log) is on: the one named, else the latest approved, else the latest."""
        if raw is not None:
            version_id = as_int(raw)
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
        body = require_object(body, "test run")
        if parent_id is None and parent_type is None:
            # The resource carries camelCase parentId/parentType too; the query wins when both are given.
            parent_id, parent_type = as_int(body.get("parentId")), body.get("parentType")
        kind, container = self._infer_parent(project_id, parent_id, parent_type, RUN_PARENTS, "test run")
        raw_case = body.get("test_case")
        case_id = as_int(raw_case.get("id")) if isinstance(raw_case, dict) else None
        if case_id is None:
            raise bad('test run.test_case is required: {"id": <test case id>}')
        case = self._get("test-case", case_id, project_id)
        if case is None:
            raise bad(f"test run.test_case.id {case_id} is not a test case of project {project_id}")
        version = self._run_version(project_id, case, body.get("test_case_version_id"), "test run")
        props, _ = self._parse_properties(
            project_id, "test-runs", body.get("properties"), "test run", required=True
        )
        name = name_field(body, "test run", required=False) or version["name"]
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
                body = require_object(body, "test run")
                props, _ = self._parse_properties(
                    project_id, "test-runs", body.get("properties"), "test run", required=False
                )
                name = name_field(body, "test run", required=False)
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
