"""Test cases, their versions (edit, approve) and test steps, including called test cases."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from zephyr_qtest.sandbox.common import parse_iso_datetime
from zephyr_qtest.sandbox.qtest.store.base import (
    Json,
    QTestError,
    StoreBase,
    as_int,
    bad,
    dumps,
    format_time,
    name_field,
    page_bounds,
    require_object,
    text_field,
    version_text,
)


class CasesStore(StoreBase):
    """Test cases, their versions (edit, approve) and test steps, including called test cases."""

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
                "version": version_text(version),
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
            step_id = as_int(item.get("id"))
            if step_id is not None:
                if step_id not in known:
                    raise bad(f"{where}.id {step_id} is not a step of this test case")
                step["previous_id"] = step_id
            called = item.get("called_test_case_id")
            if called is not None:
                called_id = as_int(called)
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
            order = as_int(item.get("order"))
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
        case["sort_key"] = parse_iso_datetime(version["last_modified_date"]).timestamp()  # type: ignore[union-attr]
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
        body = require_object(body, "test case")
        name = name_field(body, "test case")
        assert name is not None
        props, attributes = self._parse_properties(
            project_id, "test-cases", body.get("properties"), "test case", required=True
        )
        parent_id = as_int(body.get("parent_id"))
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
                description=text_field(
                    body, "description", "test case", default=attributes.get("description", "")
                )
                or "",
                precondition=text_field(
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
        limit, offset = page_bounds(page, size)
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
        body = require_object(body, "test step")
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
        body = require_object(body, "test case")
        name = name_field(body, "test case", required=False)
        props, attributes = self._parse_properties(
            project_id, "test-cases", body.get("properties"), "test case", required=False
        )
        latest = self._latest(case)
        steps = None
        if "test_steps" in body and body["test_steps"] is not None:
            steps = self._parse_steps(
                project_id, body["test_steps"], "test case", case["id"], {s["id"]: s for s in latest["steps"]}
            )
        parent_id = as_int(body.get("parent_id"))
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
                    value = text_field(body, key, "test case", default=attributes.get(key))
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
        """Approved major versions plus the last unapproved one after them, oldest first (the vendor's rule:
        the swagger's getVersions, "API returns all approved major test case versions and the last
        unapproved minor version if there is one"; API_NOTES Q-5). A migration replaying a case's history
        relies on it: each replayed version is approved, so the list keeps it."""
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
        body = require_object(body, "test step")
        step = self._parse_steps(project_id, [body], "test step", case["id"], {})[0]
        now = format_time(time.time())
        with self.tx():
            version = self._editable_version(case, now)
            position = as_int(body.get("order"))
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
