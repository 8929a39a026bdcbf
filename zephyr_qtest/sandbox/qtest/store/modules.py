"""Modules: the test design tree (create, move, rename, delete with ``force``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from zephyr_qtest.sandbox.qtest.store.base import (
    Json,
    StoreBase,
    bad,
    format_time,
    name_field,
    require_object,
    text_field,
)
from zephyr_qtest.sandbox.qtest.template import (
    CREATED_VIA_API_MODULE,
)


class ModulesStore(StoreBase):
    """Modules: the test design tree (create, move, rename, delete with ``force``)."""

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
        body = require_object(body, "module")
        name = name_field(body, "module")
        assert name is not None
        # The parent comes from the ``parentId`` query parameter only: the swagger's createModule takes it
        # there for qTest 6+ ("For older versions, use parent_id in the request body"), and the sandbox
        # is a current site, so a ``parent_id`` in the body is ignored (the module goes under root).
        if parent_id:
            self._module(project_id, parent_id)
        with self.tx():
            module = self._insert_module(
                project_id, name, text_field(body, "description", "module", default="") or "", parent_id or 0
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
                body = require_object(body, "module")
                if "name" in body:
                    module["name"] = name_field(body, "module")
                if "description" in body:
                    module["description"] = text_field(body, "description", "module", default="") or ""
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
